// Findings where users look: `rigger istiod` against the real apiserver writes a VirtualService's
// analysis findings into its status (validationMessages in upstream's form and an Analyzed
// condition with the text) and an Event `kubectl describe` shows; it keeps them current as a
// related object (the DestinationRule) changes, clears them when fixed, and does not write
// again while nothing changes.
import { join } from "node:path";
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import { type ClusterIstiod, startClusterIstiod } from "./support/cluster-istiod.ts";
import { reportMeasurements, uniqueName, waitFor } from "./support/kube.ts";
import { json, kubectl } from "./support/mesh-node.ts";

const ROOT = join(import.meta.dirname, "..");
const NS = uniqueName("rigger-analysis");
const CP_NS = uniqueName("rigger-analysis-cp");
let istiod: ClusterIstiod | undefined;

interface VsStatus {
  metadata: { resourceVersion: string };
  status?: {
    validationMessages?: { level?: string; type?: { code?: string; name?: string } }[];
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
}
const vs = () => json<VsStatus>(["-n", NS, "get", "virtualservice", "reviews", "-o", "json"]);
const analyzed = (v: VsStatus) => v.status?.conditions?.find((c) => c.type === "Analyzed");

const objects = (subset: string) => `
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: ${NS} }
spec: { selector: { app: reviews }, ports: [{ name: http, port: 9080 }] }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: ${NS} }
spec: { host: reviews, subsets: [{ name: v1, labels: { version: v1 } }] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: ${NS} }
spec:
  hosts: [reviews]
  http: [{ route: [{ destination: { host: reviews, subset: ${subset}, port: { number: 9080 } } }] }]
`;

beforeAll(async () => {
  kubectl(["apply", "--server-side", "-f", join(ROOT, "crds/istio-api.gen.yaml")]);
  kubectl(["wait", "--for=condition=Established", "--timeout=60s", "crd/virtualservices.networking.istio.io"]);
  kubectl(["create", "namespace", NS]);
  // A pod of the subset v1 (scheduling-gated: it exists in the API and never runs).
  kubectl(
    ["apply", "-f", "-"],
    `apiVersion: v1
kind: Pod
metadata: { name: reviews-v1, namespace: ${NS}, labels: { app: reviews, version: v1 } }
spec: { schedulingGates: [{ name: rigger.dev/analysis-only }], containers: [{ name: app, image: reviews }] }
`,
  );
  kubectl(["create", "namespace", CP_NS]);
  istiod = await startClusterIstiod(inject("kubeconfig"), CP_NS);
}, 120_000);

afterAll(async () => {
  await istiod?.stop();
  kubectl(["delete", "namespace", NS, CP_NS, "--ignore-not-found", "--wait=false"]);
});

test("a VirtualService's findings in its status and an Event; kept current; cleared when fixed; no write loop", async () => {
  let start = Date.now();
  kubectl(["apply", "-f", "-"], objects("v3"));
  const found = await waitFor("the finding in the VirtualService's status", async () => {
    const v = vs();
    return v.status?.validationMessages?.length ? v : undefined;
  });
  const firstMs = Date.now() - start;
  expect(found.status?.validationMessages).toEqual([
    {
      documentationUrl: "https://istio.io/v1.27/docs/reference/config/analysis/ist0101/",
      level: "ERROR",
      type: { code: "IST0101", name: "ReferencedResourceNotFound" },
    },
  ]);
  expect(analyzed(found)).toMatchObject({
    status: "False",
    reason: "IST0101",
    message: 'Error [IST0101] Referenced host+subset in destinationrule not found: "reviews+v3"',
  });
  // kubectl describe shows the condition and the Event.
  const described = await waitFor("the Event in kubectl describe", async () => {
    const text = kubectl(["-n", NS, "describe", "virtualservice", "reviews"]);
    return text.includes("AnalysisFindings") ? text : undefined;
  });
  expect(described).toContain('IST0101: Referenced host+subset in destinationrule not found: "reviews+v3"');

  // Nothing changes: nothing is written (the resourceVersion stays).
  const version = vs().metadata.resourceVersion;
  await new Promise((r) => setTimeout(r, 6_000));
  expect(vs().metadata.resourceVersion).toBe(version);

  // Fixed in the VirtualService: the findings go.
  start = Date.now();
  kubectl(["apply", "-f", "-"], objects("v1"));
  const cleared = await waitFor("the findings cleared", async () => {
    const v = vs();
    return !v.status?.validationMessages?.length && !analyzed(v) ? v : undefined;
  });
  const clearedMs = Date.now() - start;
  expect(cleared.status?.validationMessages ?? []).toEqual([]);

  // A related object changes (the DestinationRule loses v1): the VirtualService's status follows.
  start = Date.now();
  kubectl([
    "-n",
    NS,
    "patch",
    "destinationrule",
    "reviews",
    "--type=merge",
    "-p",
    '{"spec":{"subsets":[{"name":"v2","labels":{"version":"v2"}}]}}',
  ]);
  const followed = await waitFor("the finding after the DestinationRule changed", async () => {
    const v = vs();
    return analyzed(v)?.message?.includes('"reviews+v1"') ? v : undefined;
  });
  const relatedMs = Date.now() - start;
  expect(followed.status?.validationMessages?.map((m) => m.type?.code)).toEqual(["IST0101"]);
  reportMeasurements("analysis status", {
    "finding in status after apply": `${firstMs} ms`,
    "cleared after the fix": `${clearedMs} ms`,
    "after a related DestinationRule changed": `${relatedMs} ms`,
  });
}, 120_000);
