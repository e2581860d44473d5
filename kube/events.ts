// Kubernetes Events for notable transitions (a revision became Ready, a reconcile failed),
// so `kubectl describe` and `kubectl get events` tell the story. Events of cluster-scoped
// objects go to the "default" namespace, as Kubernetes records them. Best effort: a failed
// event never fails a reconcile.
import type { KubeObject } from "./apply.ts";
import type { RawClient } from "./raw-client.ts";

export type EventType = "Normal" | "Warning";

export class EventRecorder {
  private readonly client: RawClient;
  private readonly component: string;

  constructor(client: RawClient, component: string) {
    this.client = client;
    this.component = component;
  }

  async record(object: KubeObject, type: EventType, reason: string, message: string): Promise<void> {
    const namespace = object.metadata.namespace ?? "default";
    const now = new Date().toISOString();
    await this.client
      .create(`/api/v1/namespaces/${namespace}/events`, {
        apiVersion: "v1",
        kind: "Event",
        metadata: { generateName: `${object.metadata.name}.`, namespace },
        involvedObject: {
          apiVersion: object.apiVersion,
          kind: object.kind,
          name: object.metadata.name,
          namespace: object.metadata.namespace,
          uid: object.metadata.uid,
        },
        type,
        reason,
        message: message.slice(0, 1024),
        source: { component: this.component },
        reportingComponent: this.component,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      })
      .catch(() => undefined);
  }
}
