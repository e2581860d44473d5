// Configuration for proxyless gRPC: a gRPC library (grpc-go, grpc-java, @grpc/grpc-js-xds)
// that speaks xDS itself, through pilot-agent (injection template grpc-agent), asks with node
// metadata GENERATOR=grpc. Unlike Envoy it asks for resources by name, and it understands a
// subset of Envoy's API, so it gets what upstream's grpcgen builds:
// - LDS, client side: for each name `host:port` asked for (a short name is also found as the
//   FQDN in the proxy's namespace), an API listener whose HTTP connection manager takes route
//   configuration `outbound|<port>||<host>` over ADS, with the fault and router filters.
// - LDS, server side: `xds.istio.io/grpc/lds/inbound/<ip>:<port>` for a port the workload
//   serves: one filter chain, mutual TLS when PeerAuthentication is STRICT (or PERMISSIVE with
//   the pod labelled security.istio.io/tlsMode=istio: gRPC cannot take both on one port),
//   certificates from the library's certificate provider instance "default" (the files the
//   agent writes), and an inline route that lets every request through to the server.
// - RDS: the sidecar's virtual hosts for that port (VirtualService routes, weights, faults,
//   retries, timeouts), without the catch-all host.
// - CDS: the clusters asked for, EDS-typed, with a DestinationRule's consistent hash, and
//   mutual TLS only when the rule says ISTIO_MUTUAL (a gRPC client may not have xDS
//   credentials, and a server may be a plain one: upstream does not guess).
// - EDS: the sidecar's load assignments.
// Authorization policies (the RBAC filters upstream adds to inbound chains) wait for
// AuthorizationPolicy support.
import { type Cluster, Cluster_DiscoveryType } from "../envoy/third_party/envoy/config/cluster/v3/cluster.ts";
import type { Listener } from "../envoy/third_party/envoy/config/listener/v3/listener.ts";
import type { RouteConfiguration } from "../envoy/third_party/envoy/config/route/v3/route.ts";
import { HTTPFault } from "../envoy/third_party/envoy/extensions/filters/http/fault/v3/fault.ts";
import { Router } from "../envoy/third_party/envoy/extensions/filters/http/router/v3/router.ts";
import {
  HttpConnectionManager,
  type HttpFilter,
} from "../envoy/third_party/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.ts";
import {
  type CommonTlsContext,
  DownstreamTlsContext,
  UpstreamTlsContext,
} from "../envoy/third_party/envoy/extensions/transport_sockets/tls/v3/tls.ts";
import { pack } from "../envoy/types.ts";
import type { MeshProxy } from "../proxy.ts";
import { isVisible, type MeshService } from "../registry/registry.ts";
import { serviceIdentities, statName } from "./clusters.ts";
import { inboundPorts, outboundClusterName, type PushContext } from "./context.ts";
import { applyConsistentHash, destinationRuleFor, portPolicy, subsetPolicy, type TrafficPolicy } from "./destination-rule.ts";
import { parseClusterName } from "./endpoints.ts";
import { composeMtls, portMode } from "./peer-authentication.ts";
import { serviceVirtualHosts } from "./routes.ts";
import { sidecarScope } from "./sidecar-scope.ts";

/** The names a gRPC server asks for its listeners by (grpc-go's server_listener_resource_name_template). */
export const GRPC_INBOUND_PREFIX = "xds.istio.io/grpc/lds/inbound/";

const ADS = { ads: {} };
const TLS_SOCKET = "envoy.transport_sockets.tls";

/** Our certificate and the mesh root from certificate provider instance "default"; peers checked by `sans`. */
function commonTlsContext(sans: string[]): CommonTlsContext {
  return {
    tlsCertificateCertificateProviderInstance: { instanceName: "default", certificateName: "default" },
    combinedValidationContext: {
      validationContextCertificateProviderInstance: { instanceName: "default", certificateName: "ROOTCA" },
      defaultValidationContext: { matchSubjectAltNames: sans.map((exact) => ({ exact })) },
    },
  };
}

const routerFilter = (): HttpFilter => ({ name: "envoy.filters.http.router", typedConfig: pack(Router, {}) });

/** `host:port`, with an IPv6 host in brackets (Go's net.JoinHostPort). */
const joinHostPort = (host: string, port: string) => (host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`);

/** Go's net.SplitHostPort, enough for listener names: undefined when there is no port. */
function splitHostPort(name: string): { host: string; port: string } | undefined {
  const bracket = /^\[([^\]]+)\]:(\d*)$/.exec(name);
  if (bracket) return { host: bracket[1] ?? "", port: bracket[2] ?? "" };
  const colon = name.lastIndexOf(":");
  if (colon < 0 || name.indexOf(":") !== colon) return undefined;
  return { host: name.slice(0, colon), port: name.slice(colon + 1) };
}

interface ListenerName {
  /** The names the client used (a short one and its FQDN both lead here). */
  requested: Set<string>;
  /** The ports asked for; undefined: every port. */
  ports?: Set<string>;
}

/** The proxy's namespace's FQDN for a short name (`a`, `a.<ns>`, `a.<ns>.svc`), or "". */
function fullName(name: string, proxy: MeshProxy): string {
  if (!name.includes(".")) return `${name}.${proxy.dnsDomain}`;
  for (const suffix of [proxy.namespace, `${proxy.namespace}.svc`]) {
    if (name.endsWith(`.${suffix}`) && proxy.dnsDomain.startsWith(suffix))
      return `${name.slice(0, -(suffix.length + 1))}.${proxy.dnsDomain}`;
  }
  return "";
}

/** What each listener name asks for, by the hostname it names (upstream's newListenerNameFilter). */
function listenerNames(names: Iterable<string>, proxy: MeshProxy): Map<string, ListenerName> {
  const filter = new Map<string, ListenerName>();
  for (const name of names) {
    if (name.startsWith(GRPC_INBOUND_PREFIX)) {
      filter.set(name, { requested: new Set([name]) });
      continue;
    }
    const split = splitHostPort(name);
    const requested = split ? split.host : name;
    const full = fullName(requested, proxy);
    for (const key of full ? [requested, full] : [requested]) {
      const existing = filter.get(key);
      const entry: ListenerName = existing ?? { requested: new Set() };
      entry.requested.add(requested);
      // A name without a port asks for every port, whatever else asked for some.
      if (!split) entry.ports = undefined;
      else if (!existing || entry.ports) entry.ports = (entry.ports ?? new Set()).add(split.port);
      filter.set(key, entry);
    }
  }
  return filter;
}

/** Listeners for the names asked for (every service's ports when none are). */
export function grpcListeners(push: PushContext, proxy: MeshProxy, names: ReadonlySet<string>): Listener[] {
  const filter = listenerNames(names, proxy);
  const out: Listener[] = [];
  for (const service of sidecarScope(push, proxy).services) {
    const match = filter.size === 0 ? { requested: new Set([service.hostname]) } : filter.get(service.hostname);
    if (!match) continue;
    // A listener per name asked for: a client may watch both `a` and `a.ns.svc.cluster.local`.
    for (const host of [...match.requested].sort()) {
      for (const port of service.ports) {
        if (match.ports && !match.ports.has(String(port.port))) continue;
        out.push({
          name: joinHostPort(host, String(port.port)),
          address: { socketAddress: { address: service.clusterIp ?? "0.0.0.0", portValue: port.port } },
          apiListener: {
            apiListener: pack(HttpConnectionManager, {
              httpFilters: [{ name: "envoy.filters.http.fault", typedConfig: pack(HTTPFault, {}) }, routerFilter()],
              rds: { configSource: ADS, routeConfigName: outboundClusterName(port.port, service.hostname) },
            }),
          },
        });
      }
    }
  }
  for (const name of filter.keys()) if (name.startsWith(GRPC_INBOUND_PREFIX)) out.push(...inboundListener(push, proxy, name));
  return out;
}

/** A gRPC server's listener for `xds.istio.io/grpc/lds/inbound/<ip>:<port>`, when the workload serves that port. */
function inboundListener(push: PushContext, proxy: MeshProxy, name: string): Listener[] {
  const split = splitHostPort(name.slice(GRPC_INBOUND_PREFIX.length));
  const port = Number(split?.port);
  if (!split || !Number.isInteger(port) || port <= 0) return [];
  if (!inboundPorts(push, proxy).some(([target]) => target === port)) return [];
  let mode = portMode(composeMtls(push.peerAuthentications, push.mesh.rootNamespace, proxy), port);
  // Clients send mutual TLS to pods labelled for it, and a gRPC server cannot take both.
  if (mode === "PERMISSIVE") mode = proxy.labels["security.istio.io/tlsMode"] === "istio" ? "STRICT" : "DISABLE";
  const strict = mode === "STRICT";
  const suffix = strict ? "mtls" : "plaintext";
  return [
    {
      name,
      address: { socketAddress: { address: split.host, portValue: port } },
      filterChains: [
        {
          name: `inbound-${suffix}`,
          filters: [
            {
              name: `inbound-hcm${suffix}`,
              typedConfig: pack(HttpConnectionManager, {
                routeConfig: {
                  name: "inbound",
                  virtualHosts: [{ domains: ["*"], routes: [{ match: { prefix: "/" }, nonForwardingAction: {} }] }],
                },
                httpFilters: [routerFilter()],
              }),
            },
          ],
          ...(strict
            ? {
                transportSocket: {
                  name: TLS_SOCKET,
                  typedConfig: pack(DownstreamTlsContext, {
                    commonTlsContext: commonTlsContext([]),
                    requireClientCertificate: true,
                  }),
                },
              }
            : {}),
        },
      ],
    },
  ];
}

/** The service a proxy sees by that hostname. */
function visibleService(push: PushContext, proxy: MeshProxy, hostname: string): MeshService | undefined {
  const service = push.registry.byHostname.get(hostname);
  return service && isVisible(service, proxy.namespace) ? service : undefined;
}

/** The clusters asked for: a service port's, and its DestinationRule's subsets'. */
export function grpcClusters(push: PushContext, proxy: MeshProxy, names: ReadonlySet<string>): Cluster[] {
  const groups = new Map<string, Set<string>>();
  for (const name of names) {
    const parsed = parseClusterName(name);
    if (!parsed) continue;
    const key = outboundClusterName(parsed.port, parsed.hostname);
    groups.set(key, (groups.get(key) ?? new Set()).add(name));
  }
  const out: Cluster[] = [];
  for (const [key, asked] of groups) {
    const parsed = parseClusterName(key);
    const service = parsed && visibleService(push, proxy, parsed.hostname);
    if (!parsed || !service?.ports.some((p) => p.port === parsed.port)) continue;
    const applied = destinationRuleFor(push, proxy, service);
    const policy = portPolicy(applied?.trafficPolicy, parsed.port).policy;
    if (asked.has(key)) out.push(edsCluster(push, service, key, policy));
    for (const subset of applied?.subsets ?? []) {
      const name = outboundClusterName(parsed.port, service.hostname, subset.name);
      if (asked.has(name))
        out.push(edsCluster(push, service, name, subsetPolicy(applied?.trafficPolicy, subset.trafficPolicy, parsed.port)));
    }
  }
  return out;
}

function edsCluster(push: PushContext, service: MeshService, name: string, policy: TrafficPolicy | undefined): Cluster {
  const cluster: Cluster = {
    name,
    altStatName: statName(name),
    type: Cluster_DiscoveryType.EDS,
    edsClusterConfig: { serviceName: name, edsConfig: ADS },
  };
  // Only what a DestinationRule asks for: gRPC cannot reach a PERMISSIVE server with mutual TLS.
  if (policy?.tls?.mode === "ISTIO_MUTUAL") {
    cluster.transportSocket = {
      name: TLS_SOCKET,
      typedConfig: pack(UpstreamTlsContext, { commonTlsContext: commonTlsContext(serviceIdentities(push, service)) }),
    };
  }
  applyConsistentHash(cluster, policy?.loadBalancer);
  return cluster;
}

/** Route configurations `outbound|<port>||<host>`: the sidecar's virtual hosts for that port. */
export function grpcRoute(push: PushContext, proxy: MeshProxy, name: string): RouteConfiguration | undefined {
  const parsed = parseClusterName(name);
  if (!parsed?.hostname || !parsed.port) return undefined;
  return { name, virtualHosts: serviceVirtualHosts(push, proxy, parsed.port) };
}
