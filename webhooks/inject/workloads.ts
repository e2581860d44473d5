// Offline injection of whole manifests, like `istioctl kube-inject`: each document's
// pod (a Pod, or the pod template of a Deployment, StatefulSet, DaemonSet, ReplicaSet,
// ReplicationController, Job or CronJob; List items too) goes through inject(), and
// everything else passes through unchanged.
import type { V1Pod } from "@kubernetes/client-node";
import { type InjectionSettings, inject } from "./inject.ts";

type Obj = Record<string, unknown> & { apiVersion?: string; kind?: string; metadata?: { name?: string; namespace?: string } };

const TEMPLATE_KINDS = new Set([
  "Deployment",
  "StatefulSet",
  "DaemonSet",
  "ReplicaSet",
  "ReplicationController",
  "Job",
  "DeploymentConfig",
]);

export interface WorkloadResult {
  object: unknown;
  /** Why a pod in this document was not injected, for the user to read. */
  warnings: string[];
}

export function injectWorkload(object: unknown, settings: InjectionSettings): WorkloadResult {
  const warnings: string[] = [];
  const out = injectObject(structuredClone(object) as Obj, settings, warnings);
  return { object: out, warnings };
}

function injectObject(obj: Obj, settings: InjectionSettings, warnings: string[]): Obj {
  if (obj === null || typeof obj !== "object") return obj;
  if (obj.kind === "List" && Array.isArray(obj.items)) {
    obj.items = obj.items.map((item) => injectObject(item as Obj, settings, warnings));
    return obj;
  }
  if (obj.kind === "Pod") {
    const result = inject({ pod: obj as V1Pod, offline: true }, settings);
    if (result.kind === "skipped") {
      warnings.push(skipWarning(obj, obj.metadata?.name ?? "", result.reason));
      return obj;
    }
    return result.pod as Obj;
  }
  const template = podTemplate(obj);
  if (!template) return obj;
  const name = obj.metadata?.name ?? "";
  const namespace = obj.metadata?.namespace ?? "";
  const pod: V1Pod = { metadata: { ...(template.metadata ?? {}) }, spec: template.spec };
  pod.metadata ??= {};
  pod.metadata.name ||= name;
  const result = inject(
    {
      pod,
      offline: true,
      workload: { name, namespace, apiVersion: obj.apiVersion ?? "", kind: obj.kind ?? "" },
    },
    settings,
  );
  if (result.kind === "skipped") {
    warnings.push(skipWarning(obj, template.metadata?.name || name, result.reason));
    return obj;
  }
  const metadata = result.pod.metadata ?? {};
  // The pod's name stood in for the template's while injecting; the template keeps its own.
  if (!template.metadata?.name) delete metadata.name;
  template.metadata = metadata;
  template.spec = result.pod.spec;
  return obj;
}

/** The pod template inside a workload object (live reference), or undefined for other kinds. */
function podTemplate(obj: Obj): { metadata?: V1Pod["metadata"]; spec?: V1Pod["spec"] } | undefined {
  const spec = obj.spec as Record<string, unknown> | undefined;
  if (obj.kind === "CronJob") {
    const jobSpec = (spec?.jobTemplate as Record<string, unknown> | undefined)?.spec as Record<string, unknown> | undefined;
    return jobSpec?.template as { metadata?: V1Pod["metadata"]; spec?: V1Pod["spec"] } | undefined;
  }
  if (obj.kind && TEMPLATE_KINDS.has(obj.kind))
    return spec?.template as { metadata?: V1Pod["metadata"]; spec?: V1Pod["spec"] } | undefined;
  return undefined;
}

function skipWarning(obj: Obj, name: string, reason: string): string {
  const namespace = obj.metadata?.namespace;
  const full = namespace ? `${namespace}/${name}` : name;
  return `Skipping injection of ${obj.kind ?? "object"} "${full}": ${reason}`;
}
