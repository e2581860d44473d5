// The Istio controller: an Istio resource wants one active IstioRevision (istio.ts says which
// and with what spec); this applies it, owned by the Istio so that deleting the Istio removes
// it and, through it, everything the revision created. Status: the active revision's
// Reconciled and Ready, and counts over the Istio's revisions.

import {
  ISTIO_LABEL,
  ISTIOS_PATH,
  type Istio,
  type IstioRevision,
  type IstioStatus,
  REVISIONS_PATH,
  TAGS_PATH,
} from "../../api/operator.ts";
import { applyIfChanged, getOrUndefined, type KubeObject, objectPath, withRenderedHash, writeStatus } from "../../kube/apply.ts";
import { setCondition } from "../../kube/conditions.ts";
import type { Controller } from "../../kube/controller.ts";
import type { EventRecorder } from "../../kube/events.ts";
import type { RawClient } from "../../kube/raw-client.ts";
import { migrateWorkloads } from "../revisions/workload-migration.ts";
import { desiredRevision, inactiveRevisions, istioStatus } from "./istio.ts";

export function istioController({ client, events }: { client: RawClient; events: EventRecorder }): Controller {
  const known = new Set<string>();
  const reconcile = async (name: string) => {
    const istio = await getOrUndefined<Istio>(client, `${ISTIOS_PATH}/${name}`);
    if (!istio || istio.metadata.deletionTimestamp) {
      known.delete(name);
      return undefined;
    }
    known.add(name);
    let error: string | undefined;
    try {
      const desired = withRenderedHash(desiredRevision(istio));
      const live = await getOrUndefined<KubeObject>(client, objectPath(desired));
      const { wrote } = await applyIfChanged(client, desired, live);
      if (wrote && !live)
        await events.record(istio, "Normal", "RevisionCreated", `created IstioRevision ${desired.metadata.name}`);
    } catch (err) {
      error = (err as Error).message;
    }
    const revisions = await client.get<{ items: IstioRevision[] }>(
      `${REVISIONS_PATH}?labelSelector=${encodeURIComponent(`${ISTIO_LABEL}=${name}`)}`,
    );
    const now = new Date();
    // Prune unused inactive revisions after the grace period (garbage collection takes their objects).
    const inactive = inactiveRevisions(istio, revisions.items, now);
    for (const r of inactive.filter((i) => i.prune)) {
      await client.delete(`${REVISIONS_PATH}/${r.name}`).catch(() => undefined);
      await events.record(istio, "Normal", "RevisionPruned", `IstioRevision ${r.name}: ${r.message}`);
    }
    const remaining = revisions.items.filter((r) => !inactive.some((i) => i.prune && i.name === r.metadata.name));
    let status: IstioStatus = {
      ...istioStatus(istio, remaining, now),
      inactiveRevisions: inactive.filter((i) => !i.prune).map(({ name: n, message, pruneAt }) => ({ name: n, message, pruneAt })),
    };
    // updateWorkloads: restart what runs another revision than its namespace asks for.
    const migration = await migrateWorkloads(
      client,
      istio.spec.updateStrategy?.updateWorkloads,
      new Set(remaining.map((r) => r.metadata.name)),
      istio.status?.workloadMigration,
      now,
    ).catch((err: Error) => ({
      status: {
        ...(istio.status?.workloadMigration ?? { restarted: 0, remaining: 0 }),
        state: "Paused" as const,
        message: `migration failed: ${err.message}`,
      },
      requeueAfterMs: 10_000,
    }));
    if (migration.status) status = { ...status, workloadMigration: migration.status };
    if (error) {
      const conditions = setCondition(
        status.conditions,
        { type: "Reconciled", status: "False", reason: "ReconcileError", message: error },
        now,
      );
      status = { ...status, conditions, state: "ReconcileError" };
    }
    const outcome = await writeStatus(client, istio, istio.status, status);
    if (outcome === "gone") return undefined;
    if (outcome === "written" && error) await events.record(istio, "Warning", "ReconcileError", error);
    if (error) throw new Error(error);
    // Come back when the next unused revision's grace period ends.
    const next = inactive.filter((i) => !i.prune && i.pruneAt).map((i) => Date.parse(i.pruneAt ?? "") - now.getTime());
    if (migration.requeueAfterMs !== undefined) next.push(migration.requeueAfterMs);
    return next.length > 0 ? { requeueAfterMs: Math.max(100, Math.min(...next) + 100) } : undefined;
  };

  return {
    name: "istio",
    reconcile,
    watches: [
      { path: ISTIOS_PATH, map: (key) => [key] },
      // updateWorkloads reacts to tags moving and namespaces relabelled.
      { path: TAGS_PATH, map: () => [...known] },
      { path: "/api/v1/namespaces", map: () => [...known] },
      {
        path: REVISIONS_PATH,
        labelSelector: ISTIO_LABEL,
        map: (_key, object) => {
          const owner = object?.metadata?.labels?.[ISTIO_LABEL];
          return owner ? [owner] : [];
        },
      },
    ],
  };
}
