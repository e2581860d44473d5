// Everything one control plane revision needs, in the order it is applied: what the
// program reads (ConfigMaps), who it runs as (ServiceAccount, RBAC), how it is reached and
// run (Service, Deployment, PDB, HPA), then the webhook configurations that send it traffic.
// Pure: spec in, objects out. The Namespace is handled by the reconciler (it may be shared).
import { injectorConfigMap, meshConfigMap, type RevisionSpec } from "./configmaps.ts";
import {
  type ControlPlaneImage,
  clusterRole,
  clusterRoleBinding,
  credentialsRoleBinding,
  deployment,
  role,
  roleBinding,
} from "./control-plane.ts";
import {
  horizontalPodAutoscaler,
  podDisruptionBudget,
  type RevisionRenderOptions,
  service,
  serviceAccount,
  webhookConfigurations,
} from "./revision.ts";

export interface RenderedObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

export function renderRevision(spec: RevisionSpec, options: RevisionRenderOptions & ControlPlaneImage): RenderedObject[] {
  const webhooks = webhookConfigurations(spec, options);
  const names = {
    mutating: [
      ...webhooks.filter((w) => w.kind === "MutatingWebhookConfiguration").map((w) => w.metadata?.name ?? ""),
      ...(options.tagWebhooks?.mutating ?? []),
    ],
    validating: [
      ...webhooks.filter((w) => w.kind === "ValidatingWebhookConfiguration").map((w) => w.metadata?.name ?? ""),
      ...(options.tagWebhooks?.validating ?? []),
    ],
  };
  return [
    meshConfigMap(spec),
    injectorConfigMap(spec),
    serviceAccount(spec),
    role(spec),
    roleBinding(spec),
    clusterRole(spec, names),
    clusterRoleBinding(spec),
    credentialsRoleBinding(spec),
    service(spec),
    deployment(spec, options),
    podDisruptionBudget(spec),
    horizontalPodAutoscaler(spec),
    ...webhooks,
  ] as RenderedObject[];
}
