// The path every Rigger webhook takes on the local cluster: a MutatingWebhookConfiguration
// whose clientConfig.url points at an HTTPS server on 127.0.0.1. The apiserver calls it
// when a Pod is created, and the JSONPatch it answers is visible on the stored Pod.
import type { V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, expect, test } from "vitest";
import { kubeClients, uniqueName, waitFor } from "./support/kube.ts";
import { startTestWebhookServer, type TestWebhookServer } from "./support/webhook-server.ts";

interface AdmissionReview {
  apiVersion: string;
  kind: string;
  request: { uid: string; kind: { kind: string }; operation: string; namespace: string; dryRun?: boolean; object: V1Pod };
}

const { core, admission } = kubeClients();
const namespace = uniqueName("e2e-webhook");
const otherNamespace = uniqueName("e2e-nowebhook");
const configName = uniqueName("rigger-e2e-smoke");
const seen: AdmissionReview["request"][] = [];
let server: TestWebhookServer;

beforeAll(async () => {
  server = await startTestWebhookServer((app) => {
    app.post("/mutate", async (req) => {
      const review = req.body as AdmissionReview;
      seen.push(review.request);
      const hasLabels = review.request.object.metadata?.labels !== undefined;
      const patch = hasLabels
        ? [{ op: "add", path: "/metadata/labels/rigger.dev~1smoke", value: "patched" }]
        : [{ op: "add", path: "/metadata/labels", value: { "rigger.dev/smoke": "patched" } }];
      return {
        apiVersion: "admission.k8s.io/v1",
        kind: "AdmissionReview",
        response: {
          uid: review.request.uid,
          allowed: true,
          patchType: "JSONPatch",
          patch: Buffer.from(JSON.stringify(patch)).toString("base64"),
        },
      };
    });
  });
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  await core.createNamespace({ body: { metadata: { name: otherNamespace } } });
  await admission.createMutatingWebhookConfiguration({
    body: {
      metadata: { name: configName },
      webhooks: [
        {
          name: "smoke.e2e.rigger.dev",
          clientConfig: { url: `${server.baseUrl}/mutate`, caBundle: server.caBundle },
          rules: [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"] }],
          namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": namespace } },
          admissionReviewVersions: ["v1"],
          sideEffects: "None",
          failurePolicy: "Fail",
          timeoutSeconds: 5,
        },
      ],
    },
  });
});

afterAll(async () => {
  await admission.deleteMutatingWebhookConfiguration({ name: configName });
  await core.deleteNamespace({ name: namespace });
  await core.deleteNamespace({ name: otherNamespace });
  await server?.close();
});

function pod(name: string, ns: string): V1Pod {
  return {
    metadata: { name, namespace: ns, labels: { app: "smoke" } },
    spec: { containers: [{ name: "app", image: "busybox:1.36", command: ["sleep", "3600"] }] },
  };
}

test("the apiserver calls the URL webhook on Pod create and stores the patched Pod", async () => {
  // The apiserver picks up a new webhook configuration asynchronously; dry-run
  // creates (which run mutating webhooks but store nothing) tell when it is live.
  await waitFor("the webhook configuration to take effect", async () => {
    const dry = await core.createNamespacedPod({ namespace, body: pod(uniqueName("probe"), namespace), dryRun: "All" });
    return dry.metadata?.labels?.["rigger.dev/smoke"] === "patched" ? true : undefined;
  });

  await core.createNamespacedPod({ namespace, body: pod("patched", namespace) });
  const stored = await core.readNamespacedPod({ name: "patched", namespace });
  expect(stored.metadata?.labels).toEqual({ app: "smoke", "rigger.dev/smoke": "patched" });

  const request = seen.find((r) => r.object.metadata?.name === "patched" && !r.dryRun);
  expect(request).toBeDefined();
  expect(request?.kind.kind).toBe("Pod");
  expect(request?.operation).toBe("CREATE");
  expect(request?.namespace).toBe(namespace);
  expect(request?.uid).toMatch(/^[0-9a-f-]{36}$/);
});

test("a namespace outside the webhook's namespaceSelector is not sent to the webhook", async () => {
  await core.createNamespacedPod({ namespace: otherNamespace, body: pod("untouched", otherNamespace) });
  const stored = await core.readNamespacedPod({ name: "untouched", namespace: otherNamespace });
  expect(stored.metadata?.labels).toEqual({ app: "smoke" });
  expect(seen.some((r) => r.namespace === otherNamespace)).toBe(false);
});
