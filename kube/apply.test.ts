import { describe, expect, test } from "vitest";
import { contains, HASH_ANNOTATION, objectPath, renderedHash, withRenderedHash } from "./apply.ts";

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
