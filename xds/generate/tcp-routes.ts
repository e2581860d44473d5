// VirtualService TCP rules on a sidecar's outbound TCP listeners, as upstream's
// buildSidecarOutboundTCPFilterChainOpts: the first rule with a match for this listener port
// and caller (no match: every connection) decides; one destination is a TCP proxy to its
// cluster (with its DestinationRule's TCP settings), several are weighted clusters; the filter
// chain names the VirtualService in its metadata. Matches on destination subnets make chains of
// their own on those address ranges (the service's cluster takes the rest).
// TLS rules (upstream's buildSidecarOutboundTLSFilterChainOpts) on a TLS or HTTPS port: each
// match for this port and caller becomes a filter chain on the SNI names (sorted) and the
// destination subnets it names, to its destinations; a later match with the same SNI names and
// subnets is never reached and left out.
import type { Metadata } from "../envoy/third_party/envoy/config/core/v3/base.ts";
import type { MeshProxy } from "../proxy.ts";
import type { MeshService } from "../registry/registry.ts";
import type { PushContext } from "./context.ts";
import { clusterOf, type TcpRoute, type VirtualService } from "./virtual-service.ts";
import { virtualServiceFor } from "./virtual-service-scope.ts";

type L4Match = NonNullable<TcpRoute["match"]>[number];

/** Upstream's matchTCP for a sidecar (gateway `mesh`); destination subnets are the caller's to match at run time. */
function matches(match: L4Match, listenPort: number, proxy: MeshProxy): boolean {
  if (match.port && match.port !== listenPort) return false;
  if (match.gateways?.length) return match.gateways.includes("mesh");
  if (!Object.entries(match.sourceLabels ?? {}).every(([k, v]) => proxy.labels[k] === v)) return false;
  return !match.sourceNamespace || match.sourceNamespace === proxy.namespace;
}

/** Where one TLS match sends connections: its SNI names and subnets, and the destinations. */
export interface TlsRoute extends TcpDestination {
  serverNames: string[];
  destinationSubnets: string[];
}

type TlsRule = NonNullable<NonNullable<VirtualService["spec"]>["tls"]>[number];

/** The TLS routes the VirtualService of `service` gives this proxy on `listenPort`; none: no TLS rule applies. */
export function tlsRoutes(push: PushContext, proxy: MeshProxy, service: MeshService, listenPort: number): TlsRoute[] {
  const vs = virtualServiceFor(push, service.hostname, proxy.namespace);
  const out: TlsRoute[] = [];
  const seen = new Set<string>();
  for (const rule of vs?.spec?.tls ?? [])
    for (const match of rule.match ?? []) {
      if (!matches(match, listenPort, proxy) || !vs) continue;
      const serverNames = [...(match.sniHosts ?? [])].sort();
      const destinationSubnets = match.destinationSubnets ?? [];
      const key = `${serverNames.join(",")}|${destinationSubnets.join(",")}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ ...destinations(push, vs, rule.route ?? [], listenPort), serverNames, destinationSubnets });
    }
  return out;
}

export interface TcpDestination {
  /** The TCP proxy's clusters: one, or several with weights. */
  clusters: { name: string; weight: number; subset: string; service?: MeshService }[];
  /** `<name>.<namespace>` of the VirtualService, the stat prefix of a weighted proxy. */
  virtualService: string;
  /** The filter chain's metadata (the VirtualService's config path). */
  metadata: Metadata;
}

/** One filter chain a TCP rule makes: for connections to `subnets` (none: any), to the rule's destinations. */
export interface TcpRouteChain {
  destination: TcpDestination;
  subnets: string[];
}

/**
 * The filter chains the VirtualService for `service` gives TCP connections to `listenPort`
 * (upstream's buildSidecarOutboundTCPFilterChainOpts): rules in order; a rule without matches,
 * or with a match for this port and caller naming no subnets, takes every connection left
 * (`complete`); matches naming destination subnets make a chain for those subnets. Not
 * complete: the service's own cluster takes the rest.
 */
export function tcpRoutes(
  push: PushContext,
  proxy: MeshProxy,
  service: MeshService,
  listenPort: number,
): { chains: TcpRouteChain[]; complete: boolean } {
  const vs: VirtualService | undefined = virtualServiceFor(push, service.hostname, proxy.namespace);
  const chains: TcpRouteChain[] = [];
  for (const rule of vs?.spec?.tcp ?? []) {
    if (!vs || !rule.route?.length) continue;
    if (!rule.match?.length) {
      chains.push({ destination: destinations(push, vs, rule.route, listenPort), subnets: [] });
      return { chains, complete: true };
    }
    const subnets: string[] = [];
    for (const match of rule.match) {
      if (!matches(match, listenPort, proxy)) continue;
      if (!match.destinationSubnets?.length) {
        chains.push({ destination: destinations(push, vs, rule.route, listenPort), subnets: [] });
        return { chains, complete: true };
      }
      subnets.push(...match.destinationSubnets);
    }
    if (subnets.length > 0) chains.push({ destination: destinations(push, vs, rule.route, listenPort), subnets });
  }
  return { chains, complete: false };
}

/** Where the VirtualService for `service` sends TCP connections to `listenPort` regardless of address; undefined: nowhere special. */
export function tcpDestination(
  push: PushContext,
  proxy: MeshProxy,
  service: MeshService,
  listenPort: number,
): TcpDestination | undefined {
  const { chains, complete } = tcpRoutes(push, proxy, service, listenPort);
  return complete ? chains[chains.length - 1]?.destination : undefined;
}

/** A TCP or TLS rule's destinations as TCP proxy clusters (weights kept when there are several). */
export function destinations(
  push: PushContext,
  vs: VirtualService,
  route: NonNullable<TcpRoute["route"]> | TlsRule["route"],
  listenPort: number,
): TcpDestination {
  const namespace = vs.metadata?.namespace ?? "default";
  const ctx = {
    namespace,
    domainSuffix: push.registry.domainSuffix,
    lookup: (host: string) => push.registry.byHostname.get(host),
    listenPort,
  };
  const all = route ?? [];
  const routes = all.length === 1 ? all : all.filter((r) => (r.weight ?? 0) > 0);
  return {
    clusters: routes.map((r) => {
      const { cluster, service: target } = clusterOf(r.destination, ctx);
      return { name: cluster, weight: r.weight ?? 0, subset: r.destination?.subset ?? "", service: target };
    }),
    virtualService: `${vs.metadata?.name ?? ""}.${namespace}`,
    metadata: {
      filterMetadata: {
        istio: { config: `/apis/networking.istio.io/v1/namespaces/${namespace}/virtual-service/${vs.metadata?.name ?? ""}` },
      },
    },
  };
}
