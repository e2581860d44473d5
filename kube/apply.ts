// Applying desired objects without writing when nothing changed. Each rendered object
// carries a hash of itself in an annotation; an apply is skipped when the live object has
// that hash and still contains every rendered field (nobody edited them). Otherwise it is a
// server-side apply with our field manager that takes the fields back. A converged
// install therefore costs reads only, never writes.
import { createHash } from "node:crypto";
import { ApiError, type RawClient } from "./raw-client.ts";

export const FIELD_MANAGER = "rigger-operator";
export const HASH_ANNOTATION = "operator.rigger.dev/rendered-hash";

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: OwnerReference[];
    resourceVersion?: string;
    uid?: string;
    generation?: number;
    deletionTimestamp?: string;
    creationTimestamp?: string;
  };
  [field: string]: unknown;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** The kinds the operator writes and where they live in the API. */
const RESOURCES: Record<string, string> = {
  ConfigMap: "configmaps",
  Namespace: "namespaces",
  Secret: "secrets",
  Service: "services",
  ServiceAccount: "serviceaccounts",
  Deployment: "deployments",
  PodDisruptionBudget: "poddisruptionbudgets",
  HorizontalPodAutoscaler: "horizontalpodautoscalers",
  Role: "roles",
  RoleBinding: "rolebindings",
  ClusterRole: "clusterroles",
  ClusterRoleBinding: "clusterrolebindings",
  MutatingWebhookConfiguration: "mutatingwebhookconfigurations",
  ValidatingWebhookConfiguration: "validatingwebhookconfigurations",
  Istio: "istios",
  IstioRevision: "istiorevisions",
  IstioRevisionTag: "istiorevisiontags",
  IstioGateway: "istiogateways",
  Gateway: "gateways",
  GatewayClass: "gatewayclasses",
  HTTPRoute: "httproutes",
  GRPCRoute: "grpcroutes",
};

/** The object's URL path: /api/v1/namespaces/ns/configmaps/name, /apis/group/v/kind/name, … */
export function objectPath(obj: Pick<KubeObject, "apiVersion" | "kind" | "metadata">): string {
  const resource = RESOURCES[obj.kind];
  if (!resource) throw new Error(`the operator does not know where ${obj.kind} lives in the API`);
  const prefix = obj.apiVersion.includes("/") ? `/apis/${obj.apiVersion}` : `/api/${obj.apiVersion}`;
  const ns = obj.metadata.namespace ? `/namespaces/${obj.metadata.namespace}` : "";
  return `${prefix}${ns}/${resource}/${obj.metadata.name}`;
}

/** `value` with object keys sorted and undefined fields dropped: equal data, equal JSON. */
export function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === "object")
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => [k, canonical(v)]),
    );
  return value;
}

export function renderedHash(obj: object): string {
  return createHash("sha256")
    .update(JSON.stringify(canonical(obj)))
    .digest("hex")
    .slice(0, 16);
}

/** Whether every field of `desired` is in `live` with the same value (arrays: same length, element-wise). */
export function contains(live: unknown, desired: unknown): boolean {
  if (desired === undefined) return true;
  if (Array.isArray(desired))
    return Array.isArray(live) && live.length === desired.length && desired.every((d, i) => contains(live[i], d));
  if (desired && typeof desired === "object") {
    if (!live || typeof live !== "object" || Array.isArray(live)) return false;
    return Object.entries(desired).every(([k, v]) => contains((live as Record<string, unknown>)[k], v));
  }
  return live === desired;
}

/** `obj` with the hash annotation of its rendered form. */
export function withRenderedHash<T extends KubeObject>(obj: T): T {
  const hash = renderedHash(obj);
  return { ...obj, metadata: { ...obj.metadata, annotations: { ...obj.metadata.annotations, [HASH_ANNOTATION]: hash } } };
}

export async function getOrUndefined<T>(client: RawClient, path: string): Promise<T | undefined> {
  try {
    return await client.get<T>(path);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return undefined;
    throw err;
  }
}

/** Whether `live` already is `desired` (which carries its hash annotation): nothing to apply. */
function isCurrent(desired: KubeObject, live: KubeObject | undefined): live is KubeObject {
  const hash = desired.metadata.annotations?.[HASH_ANNOTATION];
  return Boolean(live && hash && live.metadata.annotations?.[HASH_ANNOTATION] === hash && contains(live, desired));
}

/**
 * Server-side applies `desired` (which carries its hash annotation) unless `live` already has
 * it. Returns the live object and whether a write was made.
 */
export async function applyIfChanged(
  client: RawClient,
  desired: KubeObject,
  live: KubeObject | undefined,
): Promise<{ object: KubeObject; wrote: boolean }> {
  if (isCurrent(desired, live)) return { object: live, wrote: false };
  const object = await client.apply<KubeObject>(objectPath(desired), desired, FIELD_MANAGER);
  return { object, wrote: true };
}

/**
 * Applies `objects` (each carrying its hash annotation) all or nothing: those that changed are
 * first applied as a dry run, and if the apiserver refuses one as invalid (bad input the user
 * can fix: a duplicate port, an unknown Service type) none is applied and its message is
 * returned for the owner's status. A dry run refused because an object it refers to is only
 * created by this batch (404) is not held against it. Other errors throw (retried).
 */
export async function applyAll(client: RawClient, objects: KubeObject[]): Promise<string | undefined> {
  const changed: KubeObject[] = [];
  for (const desired of objects)
    if (!isCurrent(desired, await getOrUndefined<KubeObject>(client, objectPath(desired)))) changed.push(desired);
  for (const desired of changed) {
    try {
      await client.apply(objectPath(desired), desired, FIELD_MANAGER, { dryRun: true });
    } catch (err) {
      // 422/400: invalid; 500 "failed to create typed patch object": server-side apply found the
      // object malformed for its schema (e.g. duplicate list keys) before validation could say so.
      const typedPatch =
        err instanceof ApiError && err.status === 500 && err.message.includes("failed to create typed patch object");
      if (err instanceof ApiError && (err.status === 422 || err.status === 400 || typedPatch))
        return `${desired.kind} ${desired.metadata.name}: ${(err as Error).message.replace(/^PATCH \S+: \d+ \w+: /, "")}`;
      // 404: the object needs one that is applied earlier in this same batch (a RoleBinding's
      // new Role: the apiserver's escalation check reads it), which a dry run did not create.
      // Its real apply comes after that one's.
      if (err instanceof ApiError && err.status === 404) continue;
      throw err;
    }
  }
  for (const desired of changed) await client.apply(objectPath(desired), desired, FIELD_MANAGER);
  return undefined;
}

/**
 * Writes `status` through the status subresource (server-side apply) unless `current` already
 * says the same. Returns "unchanged", "written", or "gone" when the object was deleted meanwhile.
 */
export async function writeStatus(
  client: RawClient,
  object: KubeObject,
  current: unknown,
  status: unknown,
): Promise<"unchanged" | "written" | "gone"> {
  if (JSON.stringify(canonical(current)) === JSON.stringify(canonical(status))) return "unchanged";
  const body = { apiVersion: object.apiVersion, kind: object.kind, metadata: { name: object.metadata.name }, status };
  try {
    await client.apply(`${objectPath(object)}/status`, body, FIELD_MANAGER);
    return "written";
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return "gone";
    throw err;
  }
}
