// The operator API, operator.rigger.dev/v1alpha1, in one place: its group and version, the
// paths of its collections, the labels and annotations it puts on what it creates, owner
// references, and the TypeScript types of its kinds (Istio, IstioRevision, IstioRevisionTag,
// IstioGateway). crds/operator.ts builds the CRDs' schemas for these kinds, and
// api/operator.test.ts fails when a schema and its type name different fields.
import type { Address } from "../controllers/gateways/gateway-status.ts";
import type { KubeObject, OwnerReference } from "../kube/apply.ts";
import type { Condition } from "../kube/conditions.ts";

export const GROUP = "operator.rigger.dev";
export const VERSION = "v1alpha1";
export const GROUP_VERSION = `${GROUP}/${VERSION}`;

/** The operator API's collections, for reads and watches. */
export const ISTIOS_PATH = `/apis/${GROUP_VERSION}/istios`;
export const REVISIONS_PATH = `/apis/${GROUP_VERSION}/istiorevisions`;
export const TAGS_PATH = `/apis/${GROUP_VERSION}/istiorevisiontags`;
/** IstioGateways are namespaced: all of them, or one. */
export const GATEWAYS_PATH = `/apis/${GROUP_VERSION}/istiogateways`;
export const gatewayPath = (namespace: string, name: string) =>
  `/apis/${GROUP_VERSION}/namespaces/${namespace}/istiogateways/${name}`;

/** Labels on what the operator creates: which Istio, revision, tag or gateway it belongs to. */
export const ISTIO_LABEL = `${GROUP}/istio`;
export const REVISION_LABEL = `${GROUP}/revision`;
export const TAG_LABEL = `${GROUP}/tag`;
export const GATEWAY_LABEL = `${GROUP}/gateway`;
/** On a gateway's pod template: the revision its tag or revision resolved to (moving a tag rolls the pods). */
export const REVISION_ANNOTATION = `${GROUP}/revision`;

/** The reference that makes `owner` the controller of an object (garbage collection follows it). */
export function ownerReference(owner: KubeObject): OwnerReference {
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name: owner.metadata.name,
    uid: owner.metadata.uid ?? "",
    controller: true,
    blockOwnerDeletion: true,
  };
}

export interface IstioSpec {
  version?: string;
  namespace?: string;
  profile?: string;
  values?: Record<string, unknown>;
  updateStrategy?: {
    type?: "InPlace" | "RevisionBased";
    inactiveRevisionDeletionGracePeriodSeconds?: number;
    updateWorkloads?: MigrationSpec;
  };
}

export interface Istio extends KubeObject {
  spec: IstioSpec;
  status?: IstioStatus;
}

export interface IstioRevision extends KubeObject {
  spec: { version?: string; namespace: string; values?: Record<string, unknown> };
  status?: { observedGeneration?: number; conditions?: Condition[]; state?: string };
}

export interface IstioStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  state?: string;
  activeRevisionName?: string;
  revisions?: { total: number; ready: number; inUse: number };
  inactiveRevisions?: { name: string; message: string; pruneAt?: string }[];
  workloadMigration?: MigrationStatus;
}

export interface MigrationSpec {
  enabled?: boolean;
  batchSize?: number;
  delayBetweenBatches?: string;
}

export interface MigrationStatus {
  state: "Idle" | "InProgress" | "Paused" | "Complete";
  message: string;
  restarted: number;
  remaining: number;
  batch?: string[];
  batchStartedAt?: string;
  lastBatchReadyAt?: string;
}

export interface IstioRevisionTag extends KubeObject {
  spec: { targetRef: { kind: "Istio" | "IstioRevision"; name: string } };
  status?: {
    observedGeneration?: number;
    conditions?: Condition[];
    istioRevision?: string;
    istiodNamespace?: string;
    state?: string;
  };
}

export interface ServicePort {
  name: string;
  port: number;
  targetPort?: number;
  protocol?: "TCP" | "UDP";
}

export interface IstioGatewaySpec {
  type?: "ingress" | "egress";
  revision?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  replicas?: number;
  imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
  autoscaling?: { enabled?: boolean; minReplicas?: number; maxReplicas?: number; targetCPUUtilizationPercentage?: number };
  podDisruptionBudget?: { enabled?: boolean; minAvailable?: number };
  service?: {
    type?: "LoadBalancer" | "ClusterIP" | "NodePort";
    ports?: ServicePort[];
    annotations?: Record<string, string>;
    loadBalancerIP?: string;
    externalTrafficPolicy?: "Cluster" | "Local";
  };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}

export interface IstioGatewayStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  state?: string;
  revision?: string;
  replicas?: number;
  readyReplicas?: number;
  addresses?: Address[];
}

export interface IstioGateway extends KubeObject {
  spec: IstioGatewaySpec;
  status?: IstioGatewayStatus;
}

type Fields<T> = Record<keyof Required<T>, true>;

/**
 * Each kind's spec and status fields, as its TypeScript type has them: `satisfies` makes tsc
 * fail when a type gains or loses a field this list does not, and api/operator.test.ts fails
 * when the CRD schema (crds/operator.ts) names different ones.
 */
export const API_FIELDS = {
  Istio: {
    spec: { version: true, namespace: true, profile: true, values: true, updateStrategy: true } satisfies Fields<IstioSpec>,
    status: {
      observedGeneration: true,
      conditions: true,
      state: true,
      activeRevisionName: true,
      revisions: true,
      inactiveRevisions: true,
      workloadMigration: true,
    } satisfies Fields<IstioStatus>,
  },
  IstioRevision: {
    spec: { version: true, namespace: true, values: true } satisfies Fields<IstioRevision["spec"]>,
    status: { observedGeneration: true, conditions: true, state: true } satisfies Fields<NonNullable<IstioRevision["status"]>>,
  },
  IstioRevisionTag: {
    spec: { targetRef: true } satisfies Fields<IstioRevisionTag["spec"]>,
    status: {
      observedGeneration: true,
      conditions: true,
      istioRevision: true,
      istiodNamespace: true,
      state: true,
    } satisfies Fields<NonNullable<IstioRevisionTag["status"]>>,
  },
  IstioGateway: {
    spec: {
      type: true,
      revision: true,
      labels: true,
      annotations: true,
      replicas: true,
      imagePullPolicy: true,
      autoscaling: true,
      podDisruptionBudget: true,
      service: true,
      resources: true,
    } satisfies Fields<IstioGatewaySpec>,
    status: {
      observedGeneration: true,
      conditions: true,
      state: true,
      revision: true,
      replicas: true,
      readyReplicas: true,
      addresses: true,
    } satisfies Fields<IstioGatewayStatus>,
  },
};
