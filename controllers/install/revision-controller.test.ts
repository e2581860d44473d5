// The IstioRevision controller, tested by the writes it makes (in-memory client): what a new
// revision writes, nothing when converged, fields the control plane owns left alone, refused
// input leaving everything as it was, and a `default` tag taking over the default validator.
import { describe, expect, test } from "vitest";
import { REVISIONS_PATH, TAGS_PATH } from "../../api/operator.ts";
import { EventRecorder } from "../../kube/events.ts";
import { ApiError } from "../../kube/raw-client.ts";
import { RecordingClient } from "../../kube/recording-client.ts";
import { revisionController } from "./revision-controller.ts";

const ADMISSION = "/apis/admissionregistration.k8s.io/v1";
const IMAGE = "rigger:test";

/** The revision's objects, in the order the controller applies them. */
const objectsOf = (revision: string) => {
  const suffix = revision === "default" ? "" : `-${revision}`;
  const istiod = `istiod${suffix}`;
  const ns = "/api/v1/namespaces/istio-system";
  return [
    `${ns}/configmaps/istio${suffix}`,
    `${ns}/configmaps/istio-sidecar-injector${suffix}`,
    `${ns}/serviceaccounts/istiod${suffix}`,
    `/apis/rbac.authorization.k8s.io/v1/namespaces/istio-system/roles/${istiod}`,
    `/apis/rbac.authorization.k8s.io/v1/namespaces/istio-system/rolebindings/${istiod}`,
    `/apis/rbac.authorization.k8s.io/v1/clusterroles/istiod-clusterrole${suffix}-istio-system`,
    `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/istiod-clusterrole${suffix}-istio-system`,
    `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/istiod-credentials${suffix}-istio-system`,
    `${ns}/services/${istiod}`,
    `/apis/apps/v1/namespaces/istio-system/deployments/${istiod}`,
    `/apis/policy/v1/namespaces/istio-system/poddisruptionbudgets/${istiod}`,
    `/apis/autoscaling/v2/namespaces/istio-system/horizontalpodautoscalers/${istiod}`,
  ];
};

function cluster(revision: string) {
  return new RecordingClient().put(`${REVISIONS_PATH}/${revision}`, {
    apiVersion: "operator.rigger.dev/v1alpha1",
    kind: "IstioRevision",
    metadata: { name: revision, uid: `uid-${revision}`, generation: 1 },
    spec: { namespace: "istio-system", version: "1.27.9", values: {} },
  });
}

const controllerFor = (client: RecordingClient) =>
  revisionController({ client, events: new EventRecorder(client, "rigger-operator"), image: IMAGE });

const statusOf = (client: RecordingClient, revision: string) =>
  (
    client.objects.get(`${REVISIONS_PATH}/${revision}`) as {
      status?: { state?: string; conditions?: { type: string; status: string; reason: string; message: string }[] };
    }
  ).status;
const conditionOf = (client: RecordingClient, revision: string, type: string) =>
  statusOf(client, revision)?.conditions?.find((c) => c.type === type);

describe("revisionController, by its writes", () => {
  test("a new revision: its namespace, dry runs, every object, its status; nothing when run again", async () => {
    const client = cluster("canary");
    const controller = controllerFor(client);
    await controller.reconcile("canary");
    const lines = client.writeLines();
    expect(lines[0]).toBe("create /api/v1/namespaces");
    const webhooks = lines.filter((l) => l.startsWith(`apply ${ADMISSION}/`));
    expect(webhooks).toEqual([
      `apply ${ADMISSION}/mutatingwebhookconfigurations/istio-sidecar-injector-canary`,
      `apply ${ADMISSION}/validatingwebhookconfigurations/istio-validator-canary-istio-system`,
    ]);
    const objects = [...objectsOf("canary"), ...webhooks.map((l) => l.slice("apply ".length))];
    expect(lines).toEqual([
      "create /api/v1/namespaces",
      ...objects.map((p) => `apply-dry-run ${p}`),
      ...objects.map((p) => `apply ${p}`),
      `apply ${REVISIONS_PATH}/canary/status`,
    ]);
    // Every object is owned by the revision (deleting it removes them) and labelled with it.
    for (const path of objects) {
      const meta = (client.objects.get(path) as { metadata: { ownerReferences?: { uid: string }[]; labels?: object } }).metadata;
      expect(meta.ownerReferences?.[0]?.uid, path).toBe("uid-canary");
      expect(meta.labels, path).toMatchObject({ "istio.io/rev": "canary" });
    }
    const deployment = client.objects.get(`/apis/apps/v1/namespaces/istio-system/deployments/istiod-canary`) as {
      spec: { template: { spec: { containers: { image: string }[] } } };
    };
    expect(deployment.spec.template.spec.containers[0]?.image).toBe(IMAGE);
    expect(conditionOf(client, "canary", "Reconciled")).toMatchObject({ status: "True", reason: "Reconciled" });
    expect(conditionOf(client, "canary", "Ready")).toMatchObject({ status: "False", reason: "IstiodNotReady" });

    client.writes.length = 0;
    await controller.reconcile("canary");
    expect(client.writeLines()).toEqual([]);
  });

  test("caBundle and the validators' failurePolicy belong to the control plane: left as it set them", async () => {
    const client = cluster("canary");
    const controller = controllerFor(client);
    await controller.reconcile("canary");
    const validator = `${ADMISSION}/validatingwebhookconfigurations/istio-validator-canary-istio-system`;
    const live = client.objects.get(validator) as { webhooks: { failurePolicy?: string; clientConfig: { caBundle?: string } }[] };
    for (const webhook of live.webhooks) {
      webhook.failurePolicy = "Fail";
      webhook.clientConfig.caBundle = "Q0E=";
    }
    client.put(validator, live);
    client.writes.length = 0;
    await controller.reconcile("canary");
    expect(client.writeLines()).toEqual([]);
    const after = client.objects.get(validator) as typeof live;
    expect(after.webhooks.map((w) => [w.failurePolicy, w.clientConfig.caBundle])).toEqual(
      live.webhooks.map(() => ["Fail", "Q0E="]),
    );
  });

  test("input the apiserver refuses: nothing applied, Reconciled=False Invalid with its message, not retried", async () => {
    const client = cluster("canary");
    const refusing = Object.assign(Object.create(client) as RecordingClient, {
      apply: async (path: string, body: object, manager: string, options?: { dryRun?: boolean }) => {
        if (path.includes("/deployments/"))
          throw new ApiError(
            422,
            "Invalid",
            'Deployment.apps "istiod-canary" is invalid: spec.template.spec.containers[0].resources',
          );
        return client.apply(path, body, manager, options);
      },
    });
    await expect(controllerFor(refusing).reconcile("canary")).resolves.toBeUndefined();
    expect(client.writeLines().filter((l) => l.startsWith("apply /") && !l.includes("/status"))).toEqual([]);
    expect(conditionOf(client, "canary", "Reconciled")).toMatchObject({
      status: "False",
      reason: "Invalid",
      message: expect.stringContaining('"istiod-canary" is invalid'),
    });
    expect(statusOf(client, "canary")?.state).toBe("Invalid");
    // The failure is told as a Warning Event on the revision, once.
    expect(client.writeLines().filter((l) => l === "create /api/v1/namespaces/default/events")).toHaveLength(1);
  });

  test("an apiserver failure: Reconciled=False with the apiserver's reason, and the reconcile is retried", async () => {
    const client = cluster("canary");
    const failing = Object.assign(Object.create(client) as RecordingClient, {
      apply: async (path: string, body: object, manager: string, options?: { dryRun?: boolean }) => {
        if (path.includes("/services/") && !options?.dryRun)
          throw new ApiError(500, "InternalError", "etcdserver: request timed out");
        return client.apply(path, body, manager, options);
      },
    });
    await expect(controllerFor(failing).reconcile("canary")).rejects.toThrow("etcdserver: request timed out");
    expect(conditionOf(client, "canary", "Reconciled")).toMatchObject({ status: "False", reason: "InternalError" });
  });

  test("a `default` tag takes the default validator from the default revision", async () => {
    const client = cluster("default");
    const controller = controllerFor(client);
    await controller.reconcile("default");
    const defaultValidator = `${ADMISSION}/validatingwebhookconfigurations/istiod-default-validator`;
    expect(client.objects.has(defaultValidator)).toBe(true);
    const tagWatch = controller.watches.find((w) => w.path === TAGS_PATH);
    expect(tagWatch?.map("default", { metadata: { name: "default" }, status: { istioRevision: "canary" } }, false)).toEqual([
      "default",
    ]);
    client.writes.length = 0;
    await controller.reconcile("default");
    expect(client.writeLines()).toContain(`delete ${defaultValidator}`);
    expect(client.objects.has(defaultValidator)).toBe(false);
  });

  test("a deleted revision: no writes", async () => {
    const client = new RecordingClient();
    await controllerFor(client).reconcile("gone");
    expect(client.writeLines()).toEqual([]);
  });
});
