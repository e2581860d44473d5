// updateWorkloads, beyond upstream: after a namespace moves to another revision (a tag moved,
// a label changed), restart the Deployments, StatefulSets and DaemonSets whose pods were
// injected by another revision, a batch at a time; the next batch waits until the current one
// is ready (and the configured delay has passed); a batch not ready within 5 minutes pauses the
// migration, and the Istio's status says which workload it waits for. Level-based: every
// reconcile recomputes what is stale from the pods themselves.

import { type MigrationSpec, type MigrationStatus, TAGS_PATH } from "../../api/operator.ts";
import type { KubeObject } from "../../kube/apply.ts";
import type { RawClient } from "../../kube/raw-client.ts";
import { namespaceReference } from "./usage.ts";

export const RESTART_ANNOTATION = "kubectl.kubernetes.io/restartedAt";
const FIELD_MANAGER = "rigger-workload-migration";
const PAUSE_AFTER_MS = 5 * 60 * 1000;

interface Pod extends KubeObject {
  status?: { phase?: string };
}

interface Workload extends KubeObject {
  spec?: { replicas?: number };
  status?: Record<string, number | string | undefined>;
}

/** The revision a namespace asks for now: its tag resolved, or the revision it names. */
export function expectedRevision(labels: Record<string, string>, tags: Map<string, string>): string | undefined {
  const ref = namespaceReference(labels);
  return ref ? (tags.get(ref) ?? ref) : undefined;
}

export function delayMs(duration: string | undefined): number {
  const match = /^(\d+)(s|m)$/.exec(duration ?? "0s");
  return match ? Number(match[1]) * (match[2] === "m" ? 60_000 : 1000) : 0;
}

/** Whether a restarted workload has finished rolling out. */
export function rolledOut(kind: string, w: Workload): boolean {
  const s = w.status ?? {};
  const observed = Number(s.observedGeneration ?? 0) >= Number(w.metadata.generation ?? 0);
  if (kind === "DaemonSet")
    return observed && s.updatedNumberScheduled === s.desiredNumberScheduled && s.numberReady === s.desiredNumberScheduled;
  const replicas = w.spec?.replicas ?? 1;
  const current = kind === "StatefulSet" ? s.currentRevision === s.updateRevision : s.availableReplicas === replicas;
  return (
    observed && s.updatedReplicas === replicas && s.readyReplicas === replicas && current && (s.replicas ?? replicas) === replicas
  );
}

const pathOf = (kind: string, namespace: string, name: string) =>
  `/apis/apps/v1/namespaces/${namespace}/${kind.toLowerCase()}s/${name}`;

/** Kind/namespace/name of the workloads whose unfinished pods were injected by another revision than `revisions` want. */
async function staleWorkloads(client: RawClient, revisions: Set<string>): Promise<string[]> {
  const tags = new Map(
    (await client.get<{ items: { metadata: { name: string }; status?: { istioRevision?: string } }[] }>(TAGS_PATH)).items
      .filter((t) => t.status?.istioRevision)
      .map((t) => [t.metadata.name, t.status?.istioRevision ?? ""]),
  );
  const namespaces = (await client.get<{ items: KubeObject[] }>("/api/v1/namespaces")).items;
  const stale = new Set<string>();
  for (const ns of namespaces) {
    const expected = expectedRevision(ns.metadata.labels ?? {}, tags);
    if (!expected || !revisions.has(expected)) continue;
    const pods = (await client.get<{ items: Pod[] }>(`/api/v1/namespaces/${ns.metadata.name}/pods`)).items;
    for (const pod of pods) {
      const injectedBy = pod.metadata.annotations?.["istio.io/rev"];
      const finished = ["Succeeded", "Failed"].includes(pod.status?.phase ?? "") || pod.metadata.deletionTimestamp;
      if (!injectedBy || injectedBy === expected || finished) continue;
      const owner = pod.metadata.ownerReferences?.find((r) => r.controller);
      if (!owner) continue; // a bare pod: nothing to restart
      if (owner.kind === "ReplicaSet") {
        const rs = await client
          .get<KubeObject>(`/apis/apps/v1/namespaces/${ns.metadata.name}/replicasets/${owner.name}`)
          .catch(() => undefined);
        const deployment = rs?.metadata.ownerReferences?.find((r) => r.controller && r.kind === "Deployment");
        if (deployment) stale.add(`Deployment/${ns.metadata.name}/${deployment.name}`);
      } else if (owner.kind === "StatefulSet" || owner.kind === "DaemonSet") {
        stale.add(`${owner.kind}/${ns.metadata.name}/${owner.name}`);
      }
    }
  }
  return [...stale].sort();
}

/** One step of the migration; the status to report and when to look again. */
export async function migrateWorkloads(
  client: RawClient,
  spec: MigrationSpec | undefined,
  revisions: Set<string>,
  previous: MigrationStatus | undefined,
  now: Date,
): Promise<{ status?: MigrationStatus; requeueAfterMs?: number }> {
  if (!spec?.enabled) return {};
  const restarted = previous?.restarted ?? 0;
  const batch = previous?.batch ?? [];
  if (batch.length > 0) {
    const waiting: string[] = [];
    for (const id of batch) {
      const [kind = "", namespace = "", name = ""] = id.split("/");
      const live = await client.get<Workload>(pathOf(kind, namespace, name)).catch(() => undefined);
      if (live && !rolledOut(kind, live)) waiting.push(id);
    }
    if (waiting.length > 0) {
      const started = Date.parse(previous?.batchStartedAt ?? now.toISOString());
      const paused = now.getTime() - started > PAUSE_AFTER_MS;
      return {
        status: {
          ...(previous as MigrationStatus),
          state: paused ? "Paused" : "InProgress",
          message: paused
            ? `paused: ${waiting.join(", ")} not ready 5 minutes after its restart; fix it and the migration continues`
            : `waiting for ${waiting.join(", ")} to be ready`,
        },
        requeueAfterMs: paused ? 10_000 : 2000,
      };
    }
  }
  const lastReady = batch.length > 0 ? now.toISOString() : previous?.lastBatchReadyAt;
  const stale = await staleWorkloads(client, revisions);
  if (stale.length === 0)
    return {
      status: {
        state: restarted > 0 ? "Complete" : "Idle",
        message: "every workload runs the revision its namespace asks for",
        restarted,
        remaining: 0,
        lastBatchReadyAt: lastReady,
      },
    };
  const wait = lastReady ? Date.parse(lastReady) + delayMs(spec.delayBetweenBatches) - now.getTime() : 0;
  if (wait > 0)
    return {
      status: {
        state: "InProgress",
        message: `next batch in ${Math.ceil(wait / 1000)} s`,
        restarted,
        remaining: stale.length,
        lastBatchReadyAt: lastReady,
      },
      requeueAfterMs: wait,
    };
  const next = stale.slice(0, spec.batchSize ?? 1);
  for (const id of next) {
    const [kind = "", namespace = "", name = ""] = id.split("/");
    await client.apply(
      pathOf(kind, namespace, name),
      {
        apiVersion: "apps/v1",
        kind,
        metadata: { name, namespace },
        spec: { template: { metadata: { annotations: { [RESTART_ANNOTATION]: now.toISOString() } } } },
      },
      FIELD_MANAGER,
    );
  }
  return {
    status: {
      state: "InProgress",
      message: `restarted ${next.join(", ")}`,
      restarted: restarted + next.length,
      remaining: stale.length - next.length,
      batch: next,
      batchStartedAt: now.toISOString(),
      lastBatchReadyAt: lastReady,
    },
    requeueAfterMs: 2000,
  };
}
