// Validation on a real cluster: the Istio CRDs installed, `rigger istiod` serving /validate,
// a ValidatingWebhookConfiguration pointing at it by URL, and kubectl as a user runs it.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { loadCorpus } from "../webhooks/validate/testdata/corpus.ts";
import { binaries } from "./cluster/local-cluster.ts";
import { type RunningIstiod, startRiggerIstiod } from "./support/istiod.ts";
import { kubeClients, uniqueName, waitFor } from "./support/kube.ts";

const { core, admission } = kubeClients();
const namespace = uniqueName("validation");
const configName = uniqueName("istio-validator-e2e");
const crds = fileURLToPath(new URL("../crds/istio-api.gen.yaml", import.meta.url));
let istiod: RunningIstiod;

function kubectl(args: string[], input?: string) {
  return spawnSync(binaries.kubectl, ["--kubeconfig", inject("kubeconfig"), ...args], { input, encoding: "utf8" });
}

const virtualService = (name: string, http: string, annotations = "{}") => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}, namespace: ${namespace}, annotations: ${annotations}}
spec:
  hosts: [reviews]
  http: ${http}
`;

beforeAll(async () => {
  // Server-side apply: the largest CRDs exceed the client-side last-applied annotation's limit.
  const applied = kubectl(["apply", "--server-side", "--force-conflicts", "-f", crds]);
  if (applied.status !== 0) throw new Error(`installing the Istio CRDs failed: ${applied.stderr}`);
  const established = kubectl(["wait", "--for=condition=Established", "--timeout=60s", "-f", crds]);
  if (established.status !== 0) throw new Error(`the Istio CRDs were not established: ${established.stderr}`);
  istiod = await startRiggerIstiod("vtest");
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  await admission.createValidatingWebhookConfiguration({
    body: {
      metadata: { name: configName },
      webhooks: [
        {
          name: "rev.validation.istio.io",
          clientConfig: { url: `${istiod.baseUrl}/validate`, caBundle: istiod.caBundle },
          rules: [
            {
              operations: ["CREATE", "UPDATE"],
              apiGroups: ["security.istio.io", "networking.istio.io", "telemetry.istio.io", "extensions.istio.io"],
              apiVersions: ["*"],
              resources: ["*"],
            },
          ],
          namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": namespace } },
          failurePolicy: "Fail",
          sideEffects: "None",
          admissionReviewVersions: ["v1"],
        },
      ],
    },
  });
  // The self-test istiod runs before failing closed: an always-reject object must be denied.
  await waitFor("the validation webhook to reject the always-reject annotation", async () => {
    const probe = virtualService(
      uniqueName("probe"),
      "[{route: [{destination: {host: reviews}}]}]",
      '{"internal.istio.io/webhook-always-reject": "true"}',
    );
    const result = kubectl(["apply", "--dry-run=server", "-f", "-"], probe);
    return result.status !== 0 && result.stderr.includes("denied the request") ? true : undefined;
  });
});

afterAll(async () => {
  await admission.deleteValidatingWebhookConfiguration({ name: configName }).catch(() => undefined);
  await core.deleteNamespace({ name: namespace }).catch(() => undefined);
  await istiod?.stop();
});

describe("kubectl apply against the validating webhook", () => {
  test("an invalid VirtualService is denied with the field path and the reason", () => {
    const result = kubectl(
      ["apply", "-f", "-"],
      virtualService("negative", "[{route: [{destination: {host: reviews}, weight: -15}]}]"),
    );
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('admission webhook "rev.validation.istio.io" denied the request');
    expect(result.stderr).toContain("configuration is invalid: spec.http[0].route[0].weight: weight -15 < 0");
    expect(kubectl(["get", "virtualservice", "negative", "-n", namespace]).status).not.toBe(0);
  });

  test("a valid VirtualService is stored", () => {
    const result = kubectl(
      ["apply", "-f", "-"],
      virtualService(
        "good",
        "[{route: [{destination: {host: reviews, subset: v1}, weight: 90}, {destination: {host: reviews, subset: v2}, weight: 10}]}]",
      ),
    );
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    const stored = kubectl(["get", "vs", "good", "-n", namespace, "-o", "jsonpath={.spec.http[0].route[1].weight}"]);
    expect(stored.stdout).toBe("10");
  });

  test("a warning is printed by kubectl and the object is stored", () => {
    const http =
      "[{route: [{destination: {host: reviews}}]}, {match: [{uri: {prefix: /a}}], route: [{destination: {host: reviews}}]}]";
    const result = kubectl(["apply", "-f", "-"], virtualService("shadowed", http));
    expect(result.status).toBe(0);
    expect(result.stderr).toContain(
      "Warning: spec.http[1]: virtualService rule #1 not used (route without matches defined before)",
    );
  });

  test("a misspelt field is reported, not silently dropped", () => {
    const result = kubectl(["apply", "-f", "-"], virtualService("typo", "[{rout: [{destination: {host: reviews}}]}]"));
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('unknown field "spec.http[0].rout"');
  });
});

describe("the whole corpus through the real apiserver (CRD schemas, then the webhook)", () => {
  const corpus = loadCorpus().filter((c) => c.object.kind !== "Route");
  const inNamespace = (object: Record<string, unknown>) => ({
    ...object,
    metadata: { ...(object.metadata as object), namespace },
  });

  test("every valid and warning case is accepted (server-side dry run)", () => {
    const accepted = corpus.filter((c) => c.expect !== "invalid");
    const list = { apiVersion: "v1", kind: "List", items: accepted.map((c) => inNamespace(c.object)) };
    const result = kubectl(["apply", "--dry-run=server", "-f", "-"], JSON.stringify(list));
    expect(result.stderr.split("\n").filter((l) => l && !l.startsWith("Warning:"))).toEqual([]);
    expect(result.status).toBe(0);
    expect(result.stdout.trim().split("\n")).toHaveLength(accepted.length);
  });

  test.each(corpus.filter((c) => c.expect === "invalid").map((c) => [c.name, c] as const))("%s is refused", (_, c) => {
    const result = kubectl(["apply", "--dry-run=server", "-f", "-"], JSON.stringify(inNamespace(c.object)));
    expect(result.status, result.stdout).not.toBe(0);
  });
});
