// analyze(resources) → messages: the checks `rigger analyze` runs over files or a cluster, and
// istiod's status controller runs over what it watches. Pure: the same objects always give the
// same messages, sorted and without duplicates as istioctl prints them.
//
// Every check sees the objects through one AnalysisContext: the raw objects by kind and the
// push context the xDS server would build from them (xds/generate/from-objects.ts), so "which
// Service is this host" and "which DestinationRule applies here" have one answer in the code.
import { DEFAULT_MESH, type MeshSettings, type PushContext } from "../xds/generate/context.ts";
import { type KubeObject, kindKey, pushContextFromObjects } from "../xds/generate/from-objects.ts";
import { authorizationChecks } from "./analyzers/authorization.ts";
import { destinationRuleChecks } from "./analyzers/destination-rule.ts";
import { gatewayChecks } from "./analyzers/gateway.ts";
import { injectionChecks } from "./analyzers/injection.ts";
import { schemaChecks } from "./analyzers/schema.ts";
import { serviceChecks } from "./analyzers/service.ts";
import { sidecarChecks } from "./analyzers/sidecar.ts";
import { virtualServiceChecks } from "./analyzers/virtual-service.ts";
import { compare } from "./hosts.ts";
import { type Finding, LEVEL_ORDER, type Level } from "./messages.ts";

export type FieldPath = readonly (string | number)[];

/** One object to analyze, and where it came from (a file's document, or nothing for a cluster's). */
export interface AnalysisResource {
  object: KubeObject & Record<string, unknown>;
  origin?: {
    file: string;
    /** The line its document starts at. */
    line: number;
    /** The line of a field in it, when the file has that field. */
    lineOf?: (path: FieldPath) => number | undefined;
  };
}

export interface AnalysisMessage extends Finding {
  /** The object the message is about. */
  resource: { kind: string; apiVersion: string; namespace?: string; name: string };
  /** `<Kind> [<namespace>/]<name>`, istioctl's way of naming it. */
  origin: string;
  /** `<file>:<line>` for objects read from files. */
  reference?: string;
}

export interface AnalysisOptions {
  mesh?: MeshSettings;
  /** Only messages about objects of this namespace (and cluster-scoped ones); unset: every namespace. */
  namespace?: string;
  /**
   * The Kubernetes kinds (`Service.core`, `Pod.core`, `Namespace.core`, `Secret.core`) the input
   * stands for in full; a check that needs one that is not is skipped, as upstream skips an
   * analyzer whose inputs are missing. Unset: all (a cluster's objects).
   */
  runtimeKinds?: ReadonlySet<string>;
  /** The istiod namespace, left out of the injection checks (upstream's istio-system). */
  controlPlaneNamespace?: string;
}

export interface AnalysisContext {
  readonly resources: readonly AnalysisResource[];
  readonly push: PushContext;
  readonly options: AnalysisOptions;
  /** The resources of one `<Kind>.<group>` ("VirtualService.networking.istio.io", "Pod.core"). */
  of(key: string): AnalysisResource[];
  /** Whether the input holds every object of these Kubernetes kinds (checks that need them run only then). */
  has(...keys: string[]): boolean;
  /** One resource by kind, namespace ("" for cluster-scoped) and name. */
  find(key: string, namespace: string, name: string): AnalysisResource | undefined;
  report(resource: AnalysisResource, finding: Finding, path?: FieldPath): void;
}

export type Check = (context: AnalysisContext) => void;

/** Every check, in the order of upstream's analyzer list. */
export const CHECKS: readonly Check[] = [
  authorizationChecks,
  destinationRuleChecks,
  gatewayChecks,
  injectionChecks,
  serviceChecks,
  sidecarChecks,
  virtualServiceChecks,
  schemaChecks,
];

export function namespaceOf(resource: AnalysisResource): string {
  return resource.object.metadata?.namespace ?? "";
}
export function nameOf(resource: AnalysisResource): string {
  return resource.object.metadata?.name ?? "";
}
/** `<namespace>/<name>`, or the name alone for a cluster-scoped object. */
export function fullName(resource: AnalysisResource): string {
  const ns = namespaceOf(resource);
  return ns ? `${ns}/${nameOf(resource)}` : nameOf(resource);
}

/** Namespaces never analyzed, as upstream leaves them out (pkg/kube/inject IgnoredNamespaces). */
export const IGNORED_NAMESPACES = new Set(["kube-system", "kube-public", "kube-node-lease", "local-path-storage"]);
/** An object's annotation naming codes (comma-separated, `*` all) not to report about it. */
export const SUPPRESS_ANNOTATION = "galley.istio.io/analyze-suppress";

/** The kinds (`<Kind>.<group>`) some check reads: others are skipped. */
export function isAnalyzedKind(object: KubeObject): boolean {
  const key = kindKey(object);
  const group = key.slice(key.indexOf(".") + 1);
  return ANALYZED_KINDS.has(key) || group.endsWith("istio.io") || group === "gateway.networking.k8s.io";
}
const ANALYZED_KINDS = new Set([
  "Namespace.core",
  "Pod.core",
  "Service.core",
  "ConfigMap.core",
  "Secret.core",
  "Node.core",
  "EndpointSlice.discovery.k8s.io",
]);

export function analyze(input: readonly AnalysisResource[], options: AnalysisOptions = {}): AnalysisMessage[] {
  const resources = input.filter((r) => {
    const ns = r.object.kind === "Namespace" ? nameOf(r) : namespaceOf(r);
    return !IGNORED_NAMESPACES.has(ns);
  });
  const byKind = new Map<string, AnalysisResource[]>();
  for (const r of resources) {
    const key = kindKey(r.object);
    byKind.set(key, [...(byKind.get(key) ?? []), r]);
  }
  const out: AnalysisMessage[] = [];
  const context: AnalysisContext = {
    resources,
    push: pushContextFromObjects(
      resources.map((r) => r.object),
      options.mesh ?? DEFAULT_MESH,
    ),
    options,
    of: (key) => byKind.get(key) ?? [],
    has: (...keys) => keys.every((k) => options.runtimeKinds?.has(k) ?? true),
    find: (key, namespace, name) => byKind.get(key)?.find((r) => namespaceOf(r) === namespace && nameOf(r) === name),
    report: (resource, finding, path) => {
      if (!suppressed(resource, finding.code, options.namespace)) out.push(messageFor(resource, finding, path));
    },
  };
  for (const check of CHECKS) check(context);
  return sortedUnique(out);
}

/** Left out: another namespace than the one asked about, or a code the object's annotation suppresses. */
function suppressed(resource: AnalysisResource, code: string, namespace: string | undefined): boolean {
  // A Namespace counts as in itself, as upstream's origin says.
  const own = resource.object.kind === "Namespace" ? nameOf(resource) : namespaceOf(resource);
  if (namespace && own && own !== namespace) return true;
  const codes = (resource.object.metadata?.annotations?.[SUPPRESS_ANNOTATION] ?? "").split(",").map((c) => c.trim());
  return codes.includes("*") || codes.includes(code);
}

function messageFor(resource: AnalysisResource, finding: Finding, path?: FieldPath): AnalysisMessage {
  const { object, origin } = resource;
  const namespace = object.metadata?.namespace;
  const name = object.metadata?.name ?? "";
  const line = origin ? ((path && origin.lineOf?.(path)) ?? origin.line) : undefined;
  return {
    ...finding,
    resource: { kind: object.kind ?? "", apiVersion: object.apiVersion ?? "", ...(namespace ? { namespace } : {}), name },
    origin: `${object.kind ?? ""} ${namespace ? `${namespace}/` : ""}${name}`,
    ...(origin ? { reference: /\.json$/.test(origin.file) ? origin.file : `${origin.file}:${line}` } : {}),
  };
}

/** One line as istioctl prints it: `Error [IST0101] (VirtualService default/reviews file.yaml:9) Referenced …`. */
export function formatMessage(m: AnalysisMessage): string {
  return `${m.level} [${m.code}] (${m.origin}${m.reference ? ` ${m.reference}` : ""}) ${m.message}`;
}

/** Errors first, then warnings, then infos; by code, then object (kind, name, namespace); duplicates dropped. */
function sortedUnique(messages: AnalysisMessage[]): AnalysisMessage[] {
  const comparator = (m: AnalysisMessage) => `${m.resource.kind}/${m.resource.name}/${m.resource.namespace ?? ""}`;
  const sorted = [...messages].sort(
    (a, b) =>
      LEVEL_ORDER[a.level] - LEVEL_ORDER[b.level] ||
      compare(a.code, b.code) ||
      compare(comparator(a), comparator(b)) ||
      compare(formatMessage(a), formatMessage(b)),
  );
  return sorted.filter((m, i) => i === 0 || formatMessage(m) !== formatMessage(sorted[i - 1] as AnalysisMessage));
}

export function worstLevel(messages: readonly AnalysisMessage[]): Level | undefined {
  return [...messages].sort((a, b) => LEVEL_ORDER[a.level] - LEVEL_ORDER[b.level])[0]?.level;
}
