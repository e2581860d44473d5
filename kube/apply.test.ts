import { describe, expect, test } from "vitest";
import { applyAll, contains, HASH_ANNOTATION, objectPath, renderedHash, withRenderedHash } from "./apply.ts";
import { ApiError } from "./raw-client.ts";
import { RecordingClient } from "./recording-client.ts";

describe("where objects live", () => {
  test.each([
    [
      { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "istio", namespace: "istio-system" } },
      "/api/v1/namespaces/istio-system/configmaps/istio",
    ],
    [
      { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "istiod", namespace: "x" } },
      "/apis/apps/v1/namespaces/x/deployments/istiod",
    ],
    [
      { apiVersion: "admissionregistration.k8s.io/v1", kind: "MutatingWebhookConfiguration", metadata: { name: "m" } },
      "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/m",
    ],
  ])("%j → %s", (obj, path) => expect(objectPath(obj)).toBe(path));

  test("an unknown kind is an error naming it", () => {
    expect(() => objectPath({ apiVersion: "v1", kind: "Pod", metadata: { name: "p" } })).toThrow("Pod");
  });
});

describe("skipping writes that change nothing", () => {
  test("the hash ignores key order and undefined fields", () => {
    expect(renderedHash({ a: 1, b: { c: 2, d: undefined } })).toBe(renderedHash({ b: { c: 2 }, a: 1 }));
    expect(renderedHash({ a: 1 })).not.toBe(renderedHash({ a: 2 }));
  });

  test("withRenderedHash annotates without changing the rest", () => {
    const obj = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x", annotations: { keep: "me" } }, data: { k: "v" } };
    const hashed = withRenderedHash(obj);
    expect(hashed.metadata.annotations).toEqual({ keep: "me", [HASH_ANNOTATION]: renderedHash(obj) });
    expect(hashed.data).toEqual({ k: "v" });
  });

  test("contains: the live object may have more fields, never different ones", () => {
    const desired = { spec: { ports: [{ port: 443 }], selector: { app: "istiod" } } };
    expect(
      contains(
        { spec: { ports: [{ port: 443, protocol: "TCP" }], selector: { app: "istiod" }, clusterIP: "10.0.0.1" } },
        desired,
      ),
    ).toBe(true);
    expect(contains({ spec: { ports: [{ port: 443 }], selector: { app: "other" } } }, desired)).toBe(false);
    // A list with an extra or a missing element differs.
    expect(contains({ spec: { ports: [{ port: 443 }, { port: 80 }], selector: { app: "istiod" } } }, desired)).toBe(false);
    expect(contains({ spec: {} }, desired)).toBe(false);
  });
});

describe("applyAll", () => {
  const role = withRenderedHash({
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "Role",
    metadata: { name: "istiod", namespace: "istio-system" },
  });
  const binding = withRenderedHash({
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: { name: "istiod", namespace: "istio-system" },
  });
  const rolePath = "/apis/rbac.authorization.k8s.io/v1/namespaces/istio-system/roles/istiod";

  /** The apiserver's escalation check: a RoleBinding's Role must exist, even for a dry run. */
  function apiserver() {
    const client = new RecordingClient();
    const apply = client.apply.bind(client);
    client.apply = async <T>(path: string, body: object, manager: string, options?: { dryRun?: boolean }): Promise<T> => {
      if (path.includes("/rolebindings/") && !client.objects.has(rolePath))
        throw new ApiError(404, "NotFound", `PATCH ${path}: 404 NotFound: roles.rbac.authorization.k8s.io "istiod" not found`);
      if ((body as { metadata?: { labels?: Record<string, string> } }).metadata?.labels?.bad)
        throw new ApiError(422, "Invalid", `PATCH ${path}: 422 Invalid: metadata.labels: Invalid value`);
      return apply<T>(path, body, manager, options);
    };
    return client;
  }

  test("objects that need one created in the same batch (a Role, then its RoleBinding) are applied in order", async () => {
    const client = apiserver();
    expect(await applyAll(client, [role, binding])).toBeUndefined();
    expect(client.writeLines().filter((l) => !l.startsWith("apply-dry-run"))).toEqual([
      `apply ${rolePath}`,
      "apply /apis/rbac.authorization.k8s.io/v1/namespaces/istio-system/rolebindings/istiod",
    ]);
  });

  test("an invalid object: nothing applied, its message returned", async () => {
    const client = apiserver();
    const bad = withRenderedHash({ ...role, metadata: { ...role.metadata, labels: { bad: "x" } } });
    expect(await applyAll(client, [bad, binding])).toMatch(/^Role istiod: metadata.labels: Invalid value/);
    expect(client.writeLines().filter((l) => !l.startsWith("apply-dry-run"))).toEqual([]);
  });
});
