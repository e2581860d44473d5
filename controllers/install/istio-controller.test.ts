// The Istio controller, tested by the writes it makes (in-memory client): an Istio becomes its
// IstioRevision (with an Event saying so) and a status; run again, it writes nothing.
import { expect, test } from "vitest";
import { ISTIOS_PATH, REVISIONS_PATH } from "../../api/operator.ts";
import { EventRecorder } from "../../kube/events.ts";
import { RecordingClient } from "../../kube/recording-client.ts";
import { istioController } from "./istio-controller.ts";

test("an InPlace Istio: its revision, an Event, its status; nothing when converged", async () => {
  const client = new RecordingClient().put(`${ISTIOS_PATH}/default`, {
    apiVersion: "operator.rigger.dev/v1alpha1",
    kind: "Istio",
    metadata: { name: "default", uid: "uid-istio", generation: 1 },
    spec: { namespace: "istio-system", updateStrategy: { type: "InPlace" } },
  });
  const controller = istioController({ client, events: new EventRecorder(client, "test") });
  await controller.reconcile("default");
  expect(client.writeLines()).toEqual([
    `apply ${REVISIONS_PATH}/default`,
    "create /api/v1/namespaces/default/events",
    `apply ${ISTIOS_PATH}/default/status`,
  ]);
  const revision = client.objects.get(`${REVISIONS_PATH}/default`) as {
    metadata: { ownerReferences?: { kind: string; name: string; controller?: boolean }[] };
    spec: { namespace: string };
  };
  expect(revision.spec.namespace).toBe("istio-system");
  expect(revision.metadata.ownerReferences).toEqual([
    expect.objectContaining({ kind: "Istio", name: "default", controller: true }),
  ]);
  const event = client.writes.find((w) => w.verb === "create")?.body as { reason: string; message: string };
  expect(event).toMatchObject({ reason: "RevisionCreated", message: "created IstioRevision default" });
  client.writes.length = 0;
  await controller.reconcile("default");
  expect(client.writeLines()).toEqual([]);
});

test("a deleted Istio: no writes", async () => {
  const client = new RecordingClient();
  await istioController({ client, events: new EventRecorder(client, "test") }).reconcile("gone");
  expect(client.writes).toEqual([]);
});
