// The Sidecar resource (networking.istio.io): which services a proxy's configuration holds and
// what it does with destinations it does not know, as upstream's SidecarScope decides it:
// - the Sidecar that applies: in the proxy's namespace, the oldest whose workloadSelector
//   matches the proxy's labels, else the oldest without a selector; else the root namespace's
//   oldest without a selector; else none (every service, the mesh's outbound policy); `./`
//   in its hosts is the proxy's namespace;
// - its egress hosts (`<namespace>/<host>`, `./` for the Sidecar's own namespace, `*/` for any,
//   `~/` for none, hosts with wildcards) select the services whose clusters, listeners and
//   routes the proxy gets;
// - its `outboundTrafficPolicy.mode` overrides the mesh's (REGISTRY_ONLY: unknown destinations
//   go to the BlackHole).
// - a Service or ServiceEntry exported to some namespaces only (`exportTo`, the
//   `networking.istio.io/exportTo` annotation) is in the scope of proxies there only.
// Egress listeners on a given port, ingress listeners, and scoping VirtualServices and
// DestinationRules by egress hosts are not applied yet.
import type { MeshProxy } from "../proxy.ts";
import { isVisible, type MeshService } from "../registry/registry.ts";
import type { PushContext } from "./context.ts";

export interface Sidecar {
  metadata?: { name?: string; namespace?: string; creationTimestamp?: string; resourceVersion?: string };
  spec?: {
    workloadSelector?: { labels?: Record<string, string> };
    egress?: { hosts?: string[]; port?: object; bind?: string; captureMode?: string }[];
    ingress?: object[];
    outboundTrafficPolicy?: { mode?: "REGISTRY_ONLY" | "ALLOW_ANY" };
  };
}

/** What applies to one proxy: the Sidecar (undefined: none), the services it may see, the outbound policy. */
export interface SidecarScope {
  /** `<namespace>/<name>` of the Sidecar, or "" (what caches built from the scope are keyed by). */
  key: string;
  services: MeshService[];
  outboundTrafficPolicy: "ALLOW_ANY" | "REGISTRY_ONLY";
}

const created = (s: Sidecar) =>
  `${s.metadata?.creationTimestamp ?? ""}\n${s.metadata?.namespace ?? ""}\n${s.metadata?.name ?? ""}`;

/** The Sidecar that applies to a proxy (upstream's selection), if any. */
const sortedSidecars = new WeakMap<PushContext, Sidecar[]>();

export function sidecarFor(push: PushContext, proxy: MeshProxy): Sidecar | undefined {
  let all = sortedSidecars.get(push);
  if (!all) {
    all = [...(push.sidecars ?? [])].sort((a, b) => (created(a) < created(b) ? -1 : created(a) > created(b) ? 1 : 0));
    sortedSidecars.set(push, all);
  }
  const own = all.filter((s) => s.metadata?.namespace === proxy.namespace);
  const selected = own.find((s) => {
    const labels = s.spec?.workloadSelector?.labels;
    return labels && Object.keys(labels).length > 0 && Object.entries(labels).every(([k, v]) => proxy.labels[k] === v);
  });
  const unselected = (list: Sidecar[]) => list.find((s) => !s.spec?.workloadSelector?.labels);
  return selected ?? unselected(own) ?? unselected(all.filter((s) => s.metadata?.namespace === push.mesh.rootNamespace));
}

/** `host` (possibly `*.example.com` or `*`) matches `hostname`. */
function hostMatches(host: string, hostname: string): boolean {
  if (host === "*") return true;
  if (host.startsWith("*")) return hostname.endsWith(host.slice(1));
  return host === hostname;
}

/** Whether an egress host entry (`<ns>/<host>`) of a Sidecar in `namespace` selects a service. */
function selects(entry: string, namespace: string, service: MeshService): boolean {
  const slash = entry.indexOf("/");
  const ns = slash < 0 ? "*" : entry.slice(0, slash);
  const host = slash < 0 ? entry : entry.slice(slash + 1);
  if (ns === "~") return false;
  const wanted = ns === "." ? namespace : ns;
  if (wanted !== "*" && wanted !== service.namespace) return false;
  return hostMatches(host, service.hostname) || (service.origin === "Kubernetes" && hostMatches(host, service.name));
}

const scopes = new WeakMap<PushContext, Map<string, SidecarScope>>();
const limited = new WeakMap<PushContext, boolean>();

/** Whether some service is exported to some namespaces only (computed once per push). */
function exportsLimited(push: PushContext): boolean {
  let some = limited.get(push);
  if (some === undefined) {
    some = push.registry.services.some((s) => s.exportTo !== undefined && !s.exportTo.includes("*"));
    limited.set(push, some);
  }
  return some;
}

/** The proxy's Sidecar scope for this push (computed once per Sidecar and push). */
export function sidecarScope(push: PushContext, proxy: MeshProxy): SidecarScope {
  const sidecar = sidecarFor(push, proxy);
  // `./` is the proxy's namespace (a root-namespace Sidecar applies to many).
  const namespace = proxy.namespace;
  const key = sidecar ? `${sidecar.metadata?.namespace}/${sidecar.metadata?.name}@${namespace}` : "";
  let byKey = scopes.get(push);
  if (!byKey) {
    byKey = new Map();
    scopes.set(push, byKey);
  }
  // Services exported to some namespaces only make every namespace's view its own.
  const cacheKey = exportsLimited(push) ? `${key}@${namespace}` : key;
  const cached = byKey.get(cacheKey);
  if (cached) return cached;
  const hosts = (sidecar?.spec?.egress ?? []).flatMap((e) => e.hosts ?? []);
  const visible = exportsLimited(push)
    ? push.registry.services.filter((service) => isVisible(service, namespace))
    : push.registry.services;
  const scope: SidecarScope = {
    key,
    services: sidecar ? visible.filter((service) => hosts.some((entry) => selects(entry, namespace, service))) : visible,
    outboundTrafficPolicy: sidecar?.spec?.outboundTrafficPolicy?.mode ?? push.mesh.outboundTrafficPolicy,
  };
  byKey.set(cacheKey, scope);
  return scope;
}
