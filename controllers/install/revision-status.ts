// An IstioRevision's status from what the reconciler observed. Pure, table-tested.
//   Reconciled  every object applied (False: the error's reason, e.g. Invalid or ReconcileError)
//   Ready       the istiod Deployment's pods are ready, and a local control plane serves
//   InUse       namespaces point at the revision (istio.io/rev, or istio-injection=enabled
//               for the default revision); the first few are named in the message
import { type Condition, condition, setCondition } from "../../kube/conditions.ts";

export interface RevisionObservation {
  generation?: number;
  previous?: Condition[];
  /** Set when applying failed. */
  error?: string;
  /** The condition reason for `error` (default ReconcileError; Invalid when the apiserver refused the input). */
  errorReason?: string;
  deployment?: { name: string; replicas?: number; readyReplicas?: number };
  /** Local mode: whether the revision's istiod process serves, and where it logs. */
  local?: { serving: boolean; logFile: string };
  namespacesUsing: string[];
  /** Tags pointing at the revision. */
  tagsUsing?: string[];
  /** Unfinished pods injected by it (or labelled for it), namespace/name. */
  podsUsing?: string[];
}

export interface RevisionStatus {
  observedGeneration?: number;
  conditions: Condition[];
  state: string;
}

function readiness(o: RevisionObservation): Omit<Condition, "type"> {
  if (o.error) return { status: "False", reason: o.errorReason ?? "ReconcileError", message: "objects could not be applied" };
  const d = o.deployment;
  if (!d) return { status: "False", reason: "IstiodNotReady", message: "the istiod Deployment does not exist yet" };
  const replicas = d.replicas ?? 0;
  const ready = d.readyReplicas ?? 0;
  if (replicas === 0) return { status: "False", reason: "IstiodNotReady", message: `Deployment ${d.name} is scaled to zero` };
  if (ready < replicas)
    return { status: "False", reason: "IstiodNotReady", message: `${ready}/${replicas} pods of Deployment ${d.name} are ready` };
  if (o.local && !o.local.serving)
    return {
      status: "False",
      reason: "ControlPlaneNotServing",
      message: `the local istiod process is not serving yet; see ${o.local.logFile}`,
    };
  return { status: "True", reason: "Healthy", message: `${ready}/${replicas} pods of Deployment ${d.name} are ready` };
}

/** "3 namespace(s) (a, b, c)": a count and the first few names. */
function listed(what: string, names: string[]): string | undefined {
  if (names.length === 0) return undefined;
  const more = names.length > 5 ? `, and ${names.length - 5} more` : "";
  return `${names.length} ${what}(s) (${names.slice(0, 5).join(", ")}${more})`;
}

/** InUse from what refers to a revision or tag; `nothing` is the message when nothing does. */
export function usageCondition(
  refs: { tags?: string[]; namespaces: string[]; pods?: string[] },
  nothing: string,
): Omit<Condition, "type"> {
  const parts = [listed("tag", refs.tags ?? []), listed("namespace", refs.namespaces), listed("pod", refs.pods ?? [])].filter(
    Boolean,
  );
  if (parts.length === 0) return { status: "False", reason: "NotReferencedByAnything", message: nothing };
  return { status: "True", reason: "ReferencedByWorkloads", message: `used by ${parts.join(", ")}` };
}

export function revisionStatus(o: RevisionObservation, now: Date): RevisionStatus {
  let conditions = setCondition(
    o.previous,
    o.error
      ? { type: "Reconciled", status: "False", reason: o.errorReason ?? "ReconcileError", message: o.error }
      : { type: "Reconciled", status: "True", reason: "Reconciled", message: "every object of the revision is applied" },
    now,
  );
  conditions = setCondition(conditions, { type: "Ready", ...readiness(o) }, now);
  const inUse = usageCondition(
    { tags: o.tagsUsing, namespaces: o.namespacesUsing, pods: o.podsUsing },
    "no tag, namespace or running pod refers to this revision",
  );
  conditions = setCondition(conditions, { type: "InUse", ...inUse }, now);
  const ready = condition(conditions, "Ready");
  return {
    observedGeneration: o.generation,
    conditions,
    state: o.error
      ? (o.errorReason ?? "ReconcileError")
      : ready?.status === "True"
        ? "Healthy"
        : (ready?.reason ?? "Reconciling"),
  };
}
