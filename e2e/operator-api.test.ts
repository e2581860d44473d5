// The operator API's CRDs on the real apiserver: defaults, enums, the immutable namespace
// (a CEL transition rule) and the printer columns kubectl shows; and the objects the
// revision renderer produces, which the apiserver must accept.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import { renderRevision } from "../controllers/install/render.ts";
import { binaries } from "./cluster/local-cluster.ts";
import { uniqueName } from "./support/kube.ts";

const crds = fileURLToPath(new URL("../crds/operator.gen.yaml", import.meta.url));
const name = uniqueName("istio");

function kubectl(args: string[], input?: string) {
  return spawnSync(binaries.kubectl, ["--kubeconfig", inject("kubeconfig"), ...args], { input, encoding: "utf8" });
}

const istio = (spec: string) => `apiVersion: operator.rigger.dev/v1alpha1
kind: Istio
metadata: {name: ${name}}
spec: ${spec}
`;

beforeAll(() => {
  const applied = kubectl(["apply", "--server-side", "--force-conflicts", "-f", crds]);
  if (applied.status !== 0) throw new Error(`installing the operator CRDs failed: ${applied.stderr}`);
  const established = kubectl(["wait", "--for=condition=Established", "--timeout=60s", "-f", crds]);
  if (established.status !== 0) throw new Error(established.stderr);
});

afterAll(() => {
  kubectl(["delete", "istio", name, "--ignore-not-found"]);
});

test("an Istio gets its defaults", () => {
  const created = kubectl(["apply", "-f", "-"], istio("{updateStrategy: {}}"));
  expect(created.stderr).toBe("");
  const spec = JSON.parse(kubectl(["get", "istio", name, "-o", "jsonpath={.spec}"]).stdout);
  expect(spec).toEqual({
    namespace: "istio-system",
    profile: "default",
    updateStrategy: { type: "InPlace", inactiveRevisionDeletionGracePeriodSeconds: 30 },
  });
});

test("the namespace cannot change once set", () => {
  const result = kubectl(["apply", "-f", "-"], istio("{namespace: istio-other}"));
  expect(result.status).not.toBe(0);
  expect(result.stderr).toContain("namespace is immutable; create a new Istio resource instead");
});

test("bad values are refused with the field and the allowed values", () => {
  const result = kubectl(
    ["apply", "--dry-run=server", "-f", "-"],
    istio("{profile: huge, values: {sidecarInjectorWebhook: {policy: sometimes}}}"),
  );
  expect(result.status).not.toBe(0);
  expect(result.stderr).toContain('spec.profile: Unsupported value: "huge"');
  expect(result.stderr).toContain('spec.values.sidecarInjectorWebhook.policy: Unsupported value: "sometimes"');
  const tag = kubectl(
    ["apply", "--dry-run=server", "-f", "-"],
    "apiVersion: operator.rigger.dev/v1alpha1\nkind: IstioRevisionTag\nmetadata: {name: prod-stable}\nspec: {targetRef: {kind: Deployment, name: x}}\n",
  );
  expect(tag.stderr).toContain('spec.targetRef.kind: Unsupported value: "Deployment"');
});

test("kubectl get shows the printer columns", () => {
  const header = kubectl(["get", "istio", name]).stdout.split("\n")[0] ?? "";
  expect(header.split(/\s{2,}/)).toEqual(["NAME", "REVISIONS", "READY", "IN USE", "ACTIVE REVISION", "STATUS", "VERSION", "AGE"]);
});

test("a revision's rendered objects are accepted by the apiserver (server-side dry run)", () => {
  const namespace = uniqueName("rigger-render");
  expect(kubectl(["create", "namespace", namespace]).status).toBe(0);
  try {
    const spec = { name: "canary", namespace };
    // External URL form: even a dry run should not hand the local apiserver a Service-backed webhook.
    const objects = renderRevision(spec, { isDefault: false, externalUrl: "https://127.0.0.1:15017", image: "rigger:test" });
    const result = kubectl(
      ["apply", "--dry-run=server", "-f", "-"],
      JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }),
    );
    expect(result.stderr).toBe("");
    expect(result.stdout.trim().split("\n")).toHaveLength(objects.length);
  } finally {
    kubectl(["delete", "namespace", namespace, "--wait=false"]);
  }
});
