// The Istio resource's pure logic: which IstioRevision it wants (name, spec, ownership)
// and what its status says given the revisions that exist.
//   InPlace:       one revision named like the Istio ("default" → istiod, istio-injection=enabled)
//   RevisionBased: one per version, <name>-<version with dashes>, older ones kept for pruning

import {
  GROUP_VERSION,
  ISTIO_LABEL,
  type Istio,
  type IstioRevision,
  type IstioStatus,
  ownerReference,
} from "../../api/operator.ts";
import { condition, setCondition } from "../../kube/conditions.ts";
import { versions } from "../../versions.ts";
import { deepMerge } from "../../webhooks/inject/config.ts";
import { MANAGED_BY } from "./configmaps.ts";

/** Values a profile starts from; the user's values are merged over them. */
export function profileValues(profile: string | undefined): Record<string, unknown> {
  switch (profile) {
    case "demo":
      return {
        meshConfig: { accessLogFile: "/dev/stdout" },
        pilot: { resources: { requests: { cpu: "10m", memory: "100Mi" } } },
      };
    case "minimal":
    case "remote":
    case "default":
    case undefined:
      return {};
    default:
      throw new Error(`spec.profile ${profile} is not one of default, minimal, demo, remote`);
  }
}

export function activeRevisionName(istio: Istio): string {
  if (istio.spec.updateStrategy?.type !== "RevisionBased") return istio.metadata.name;
  const version = istio.spec.version || versions.istio;
  return `${istio.metadata.name}-v${version.replaceAll(".", "-")}`;
}

/** The IstioRevision an Istio wants now. */
export function desiredRevision(istio: Istio): IstioRevision {
  const values = deepMerge(profileValues(istio.spec.profile), istio.spec.values ?? {}) as Record<string, unknown>;
  return {
    apiVersion: GROUP_VERSION,
    kind: "IstioRevision",
    metadata: {
      name: activeRevisionName(istio),
      labels: { [ISTIO_LABEL]: istio.metadata.name, ...MANAGED_BY },
      ownerReferences: [ownerReference(istio)],
    },
    spec: {
      version: istio.spec.version || versions.istio,
      namespace: istio.spec.namespace || "istio-system",
      values,
    },
  };
}

/** The Istio's status: its active revision's Reconciled and Ready, and counts over all its revisions. */
export function istioStatus(istio: Istio, revisions: IstioRevision[], now: Date): IstioStatus {
  const activeName = activeRevisionName(istio);
  const active = revisions.find((r) => r.metadata.name === activeName);
  const isTrue = (r: IstioRevision, type: string) => condition(r.status?.conditions, type)?.status === "True";
  let conditions = istio.status?.conditions;
  const copy = (type: string, missingReason: string) => {
    const source = active ? condition(active.status?.conditions, type) : undefined;
    conditions = setCondition(
      conditions,
      source && active?.status?.observedGeneration === active?.metadata.generation
        ? { type, status: source.status, reason: source.reason, message: source.message }
        : {
            type,
            status: "False",
            reason: active ? "RevisionNotReconciled" : missingReason,
            message: active
              ? `IstioRevision ${activeName} has not been reconciled yet`
              : `IstioRevision ${activeName} does not exist yet`,
          },
      now,
    );
  };
  copy("Reconciled", "ActiveRevisionNotFound");
  copy("Ready", "ActiveRevisionNotFound");
  const ready = condition(conditions, "Ready");
  const reconciled = condition(conditions, "Reconciled");
  return {
    observedGeneration: istio.metadata.generation,
    conditions,
    state:
      ready?.status === "True"
        ? "Healthy"
        : reconciled?.status === "False"
          ? reconciled.reason
          : (ready?.reason ?? "Reconciling"),
    activeRevisionName: activeName,
    revisions: {
      total: revisions.length,
      ready: revisions.filter((r) => isTrue(r, "Ready")).length,
      inUse: revisions.filter((r) => isTrue(r, "InUse")).length,
    },
  };
}

export interface InactiveRevision {
  name: string;
  /** Why it is kept, or that it is being pruned. */
  message: string;
  /** When it will be pruned if nothing uses it meanwhile. */
  pruneAt?: string;
  prune: boolean;
}

/**
 * What happens to the Istio's revisions that are not the active one: a revision unused
 * (InUse False) for the grace period is pruned; one in use, or whose use is unknown, is kept.
 */
export function inactiveRevisions(istio: Istio, revisions: IstioRevision[], now: Date): InactiveRevision[] {
  const active = activeRevisionName(istio);
  const graceMs = (istio.spec.updateStrategy?.inactiveRevisionDeletionGracePeriodSeconds ?? 30) * 1000;
  return revisions
    .filter((r) => r.metadata.name !== active)
    .map((r) => {
      const inUse = condition(r.status?.conditions, "InUse");
      if (inUse?.status !== "False" || !inUse.lastTransitionTime)
        return { name: r.metadata.name, prune: false, message: `kept: ${inUse?.message ?? "its use is not known yet"}` };
      const pruneAt = new Date(Date.parse(inUse.lastTransitionTime) + graceMs);
      const prune = pruneAt.getTime() <= now.getTime();
      return {
        name: r.metadata.name,
        prune,
        pruneAt: pruneAt.toISOString(),
        message: prune
          ? `pruned: unused since ${inUse.lastTransitionTime}`
          : `unused since ${inUse.lastTransitionTime}; pruned at ${pruneAt.toISOString()} unless used again`,
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}
