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
// - an egress listener with a port gives the proxy its services on that port only;
// - ingress listeners replace the inbound ports the proxy's Services would give it: each port
//   goes to its `defaultEndpoint` (127.0.0.1:PORT, or 0.0.0.0:PORT for the pod's address).
// Egress `bind` and `captureMode`, ingress `bind`, `captureMode`, `tls` and unix sockets, and
// scoping VirtualServices and DestinationRules by egress hosts are not applied yet.
import type { MeshProxy } from "../proxy.ts";
import { type Protocol, parseProtocol } from "../registry/protocol.ts";
import { isVisible, type MeshService } from "../registry/registry.ts";
import { oldestFirst, type PushContext } from "./context.ts";

export interface SidecarPort {
  number?: number;
  protocol?: string;
  name?: string;
}

export interface SidecarIngress {
  port?: SidecarPort;
  /** Where the workload listens: `127.0.0.1:PORT`, `0.0.0.0:PORT` (the pod's address) or `unix://...`. */
  defaultEndpoint?: string;
  bind?: string;
  captureMode?: string;
}

export interface Sidecar {
  metadata?: { name?: string; namespace?: string; creationTimestamp?: string; resourceVersion?: string };
  spec?: {
    workloadSelector?: { labels?: Record<string, string> };
    egress?: { hosts?: string[]; port?: SidecarPort; bind?: string; captureMode?: string }[];
    ingress?: SidecarIngress[];
    outboundTrafficPolicy?: { mode?: "REGISTRY_ONLY" | "ALLOW_ANY" };
  };
}

/** What applies to one proxy: the Sidecar (undefined: none), the services it may see, the outbound policy. */
export interface SidecarScope {
  /** `<namespace>/<name>` of the Sidecar, or "" (what caches built from the scope are keyed by). */
  key: string;
  /** The services the proxy sees; an egress listener with a port gives its services that port only. */
  services: MeshService[];
  outboundTrafficPolicy: "ALLOW_ANY" | "REGISTRY_ONLY";
  /** The Sidecar's ingress listeners (none: inbound ports come from the proxy's Services). */
  ingress: SidecarIngress[];
}

/** The Sidecar that applies to a proxy (upstream's selection), if any. */
const sortedSidecars = new WeakMap<PushContext, Sidecar[]>();

export function sidecarFor(push: PushContext, proxy: MeshProxy): Sidecar | undefined {
  // Gateways see every service exported to their namespace: Sidecars are for sidecars.
  if (proxy.type === "router") return undefined;
  let all = sortedSidecars.get(push);
  if (!all) {
    all = [...(push.sidecars ?? [])].sort(oldestFirst);
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

/**
 * The services a Sidecar's egress listeners select, in registry order: a listener with a port
 * contributes its services with that port only; a service several listeners select has the
 * ports of all of them.
 */
function egressServices(sidecar: Sidecar, namespace: string, visible: MeshService[]): MeshService[] {
  const ports = new Map<string, Set<number> | "all">();
  // No egress listeners: every host (upstream's default egress `*/*`), e.g. a Sidecar that only sets
  // outboundTrafficPolicy.
  const listeners = sidecar.spec?.egress?.length ? sidecar.spec.egress : [{ hosts: ["*/*"] }];
  for (const egress of listeners as NonNullable<NonNullable<Sidecar["spec"]>["egress"]>) {
    const number = egress.port?.number;
    for (const service of visible) {
      if (!(egress.hosts ?? []).some((entry) => selects(entry, namespace, service))) continue;
      const had = ports.get(service.hostname);
      if (!number || had === "all") {
        ports.set(service.hostname, "all");
        continue;
      }
      if (!service.ports.some((p) => p.port === number)) continue;
      ports.set(service.hostname, new Set([...(had ?? []), number]));
    }
  }
  return visible.flatMap((service) => {
    const wanted = ports.get(service.hostname);
    if (!wanted) return [];
    return wanted === "all" ? [service] : [{ ...service, ports: service.ports.filter((p) => wanted.has(p.port)) }];
  });
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
  const visible = exportsLimited(push)
    ? push.registry.services.filter((service) => isVisible(service, namespace))
    : push.registry.services;
  const scope: SidecarScope = {
    key,
    services: sidecar ? egressServices(sidecar, namespace, visible) : visible,
    outboundTrafficPolicy: sidecar?.spec?.outboundTrafficPolicy?.mode ?? push.mesh.outboundTrafficPolicy,
    ingress: (sidecar?.spec?.ingress ?? []).filter((i) => i.port?.number),
  };
  byKey.set(cacheKey, scope);
  return scope;
}

/** One inbound port of a Sidecar's ingress listeners, and where the workload takes it. */
export interface IngressPort {
  port: number;
  protocol: Protocol;
  /** The workload's address and port (`0.0.0.0` in the Sidecar: the pod's own address). */
  endpoint: { address: string; port: number };
  /** The filter chain's name prefix: the pod's address. */
  bind: string;
  /** The Sidecar's config path (the chains' metadata). */
  config: string;
}

/** The proxy's Sidecar ingress ports (undefined: it has none, its Services decide). */
export function ingressPorts(push: PushContext, proxy: MeshProxy): IngressPort[] | undefined {
  const ingress = sidecarScope(push, proxy).ingress;
  const sidecar = sidecarFor(push, proxy);
  if (ingress.length === 0 || !sidecar) return undefined;
  const config = `/apis/networking.istio.io/v1/namespaces/${sidecar.metadata?.namespace ?? ""}/sidecar/${sidecar.metadata?.name ?? ""}`;
  const ip = proxy.ipAddresses[0] ?? "0.0.0.0";
  return ingress.flatMap((i) => {
    const m = /^(.*):(\d+)$/.exec(i.defaultEndpoint ?? "");
    const port = i.port?.number ?? 0;
    // Unix domain sockets are not served yet.
    if (!m || m[1]?.startsWith("unix")) return [];
    const address = m[1] === "0.0.0.0" ? ip : (m[1] ?? "");
    return [
      { port, protocol: parseProtocol(i.port?.protocol ?? ""), endpoint: { address, port: Number(m[2]) }, bind: ip, config },
    ];
  });
}
