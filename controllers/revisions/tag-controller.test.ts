// The IstioRevisionTag controller, tested by the writes it makes: objects in an in-memory
// client, one reconcile, the writes recorded; then the same reconcile again, which must write
// nothing (a converged tag is left alone).
import { describe, expect, test } from "vitest";
import { REVISIONS_PATH, TAGS_PATH } from "../../api/operator.ts";
import { RecordingClient } from "../../kube/recording-client.ts";
import { injectorConfigurationName } from "../../webhooks/inject/webhook-configuration.ts";
import { validatorConfigurationName } from "../../webhooks/validate/webhook-configuration.ts";
import { tagController } from "./tag-controller.ts";

const ADMISSION = "/apis/admissionregistration.k8s.io/v1";
const meta = (name: string, created = "2026-01-01T00:00:00Z") => ({ name, uid: `uid-${name}`, creationTimestamp: created });

function cluster(target: { kind: string; name: string }, revision?: { webhooks: boolean }) {
  const client = new RecordingClient();
  client.put(`${TAGS_PATH}/prod`, {
    apiVersion: "operator.rigger.dev/v1alpha1",
    kind: "IstioRevisionTag",
    metadata: meta("prod", "2026-02-01T00:00:00Z"),
    spec: { targetRef: target },
  });
  client.put("/api/v1/namespaces/app", {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name: "app", labels: { "istio.io/rev": "prod" } },
  });
  client.put("/api/v1/namespaces/other", { apiVersion: "v1", kind: "Namespace", metadata: { name: "other" } });
  if (revision) {
    client.put(`${REVISIONS_PATH}/canary`, {
      apiVersion: "operator.rigger.dev/v1alpha1",
      kind: "IstioRevision",
      metadata: meta("canary"),
      spec: { namespace: "istio-system", version: "1.27.9" },
      status: { conditions: [{ type: "Ready", status: "True", reason: "Healthy", message: "istiod-canary is available" }] },
    });
  }
  if (revision?.webhooks) {
    const clientConfig = (path: string) => ({
      service: { name: "istiod-canary", namespace: "istio-system", path },
      caBundle: "Q0E=",
    });
    const mwc = injectorConfigurationName({ revision: "canary", namespace: "istio-system" });
    const vwc = validatorConfigurationName("canary", "istio-system");
    client.put(`${ADMISSION}/mutatingwebhookconfigurations/${mwc}`, {
      kind: "MutatingWebhookConfiguration",
      metadata: { name: mwc },
      webhooks: [{ name: "rev.namespace.sidecar-injector.istio.io", clientConfig: clientConfig("/inject") }],
    });
    client.put(`${ADMISSION}/validatingwebhookconfigurations/${vwc}`, {
      kind: "ValidatingWebhookConfiguration",
      metadata: { name: vwc },
      webhooks: [{ name: "rev.validation.istio.io", clientConfig: clientConfig("/validate") }],
    });
  }
  return client;
}

const statusOf = (client: RecordingClient) =>
  (
    client.objects.get(`${TAGS_PATH}/prod`) as {
      status?: { conditions?: { type: string; status: string; reason: string; message: string }[]; state?: string };
    }
  ).status;
const condition = (client: RecordingClient, type: string) => {
  const c = statusOf(client)?.conditions?.find((x) => x.type === type);
  return c && { status: c.status, reason: c.reason, message: c.message };
};

describe("tagController, by its writes", () => {
  test.each([
    {
      name: "an Istio target that does not exist: only the status, saying so",
      target: { kind: "Istio", name: "nope" },
      revision: undefined,
      writes: [`apply ${TAGS_PATH}/prod/status`],
      reconciled: { status: "False", reason: "TargetNotFound", message: "Istio nope does not exist" },
      requeue: undefined,
    },
    {
      name: "a revision without webhook configurations yet: the status, and a retry in a second",
      target: { kind: "IstioRevision", name: "canary" },
      revision: { webhooks: false },
      writes: [`apply ${TAGS_PATH}/prod/status`],
      reconciled: {
        status: "False",
        reason: "TargetNotReconciled",
        message: "IstioRevision canary has no webhook configurations yet",
      },
      requeue: { requeueAfterMs: 1000 },
    },
    {
      name: "a ready revision: the tag's webhook (then seeded with the target's caBundle), its Service, then the status",
      target: { kind: "IstioRevision", name: "canary" },
      revision: { webhooks: true },
      writes: [
        `apply ${ADMISSION}/mutatingwebhookconfigurations/istio-revision-tag-prod`,
        `apply ${ADMISSION}/mutatingwebhookconfigurations/istio-revision-tag-prod`,
        // (a tag other than "default" has no validator of its own, as upstream's)
        "apply /api/v1/namespaces/istio-system/services/istiod-revision-tag-prod",
        `apply ${TAGS_PATH}/prod/status`,
      ],
      reconciled: { status: "True", reason: "Reconciled", message: "tag prod points at IstioRevision canary" },
      requeue: undefined,
    },
  ])("$name", async ({ target, revision, writes, reconciled, requeue }) => {
    const client = cluster(target, revision);
    const controller = tagController({ client });
    expect(await controller.reconcile("prod")).toEqual(requeue);
    expect(client.writeLines()).toEqual(writes);
    expect(condition(client, "Reconciled")).toEqual(reconciled);
    expect(condition(client, "InUse")).toMatchObject({ status: "True" });
    expect(condition(client, "InUse")?.message).toContain("app");
    // Converged: the same reconcile again writes nothing.
    client.writes.length = 0;
    await controller.reconcile("prod");
    expect(client.writeLines()).toEqual([]);
  });

  test("a deleted tag: no writes at all", async () => {
    const client = new RecordingClient();
    expect(await tagController({ client }).reconcile("gone")).toBeUndefined();
    expect(client.writes).toEqual([]);
  });
});
