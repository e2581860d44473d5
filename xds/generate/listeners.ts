// LDS for a sidecar, in upstream's layout (xds/parity pins it against upstream's output):
// - virtualOutbound (0.0.0.0:15001, where iptables sends outbound connections): hands each
//   connection to the listener of its original destination, else to PassthroughCluster
//   (BlackHoleCluster under REGISTRY_ONLY, and for connections to 15001 itself);
// - outbound HTTP ports: one listener `0.0.0.0_<port>` for every Service on that port, HTTP
//   (sniffed by ALPN) routed by RDS `<port>`, anything else passed through;
// - outbound TCP and sniffed ports: a listener per Service address `<clusterIP>_<port>`, TCP
//   straight to the Service's cluster, sniffed HTTP routed by RDS `<hostname>:<port>`; for a
//   headless Service, one per ready endpoint `<podIP>_<targetPort>`;
//   a ServiceEntry without addresses binds `0.0.0.0_<port>` instead: TLS ports pick the host by
//   SNI (anything else passed through), TCP ports go to the first such entry's cluster;
// - virtualInbound (0.0.0.0:15006, where inbound connections arrive): per port the proxy's
//   Services target, a chain for Istio mutual TLS and (unless STRICT) one for plaintext; then
//   catch-all chains to InboundPassthroughCluster for other ports.
// Istio's own filters (metadata exchange, the ALPN override) go only to Istio's Envoy.

import { TrafficDirection } from "../envoy/third_party/envoy/config/core/v3/base.ts";
import {
  FilterConfig as AlpnFilter,
  FilterConfig_Protocol,
} from "../envoy/third_party/envoy/config/filter/http/alpn/v2alpha1/config.ts";
import type { Listener } from "../envoy/third_party/envoy/config/listener/v3/listener.ts";
import type { Filter, FilterChain } from "../envoy/third_party/envoy/config/listener/v3/listener_components.ts";
import type { RouteConfiguration } from "../envoy/third_party/envoy/config/route/v3/route.ts";
import { Cors } from "../envoy/third_party/envoy/extensions/filters/http/cors/v3/cors.ts";
import { HTTPFault } from "../envoy/third_party/envoy/extensions/filters/http/fault/v3/fault.ts";
import { FilterConfig as GrpcStats } from "../envoy/third_party/envoy/extensions/filters/http/grpc_stats/v3/config.ts";
import { Router } from "../envoy/third_party/envoy/extensions/filters/http/router/v3/router.ts";
import { HttpInspector } from "../envoy/third_party/envoy/extensions/filters/listener/http_inspector/v3/http_inspector.ts";
import { OriginalDst } from "../envoy/third_party/envoy/extensions/filters/listener/original_dst/v3/original_dst.ts";
import { TlsInspector } from "../envoy/third_party/envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.ts";
import {
  HttpConnectionManager,
  HttpConnectionManager_ForwardClientCertDetails,
  HttpConnectionManager_PathWithEscapedSlashesAction,
  type HttpFilter,
} from "../envoy/third_party/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.ts";
import { TcpProxy } from "../envoy/third_party/envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.ts";
import { UuidRequestIdConfig } from "../envoy/third_party/envoy/extensions/request_id/uuid/v3/uuid.ts";
import { TlsParameters_TlsProtocol } from "../envoy/third_party/envoy/extensions/transport_sockets/tls/v3/common.ts";
import { DownstreamTlsContext } from "../envoy/third_party/envoy/extensions/transport_sockets/tls/v3/tls.ts";
import { TypedStruct } from "../envoy/third_party/udpa/type/v1/typed_struct.ts";
import { pack } from "../envoy/types.ts";
import type { MeshProxy } from "../proxy.ts";
import { isHttp, isHttp2, isSniffed, isTcp, type Protocol } from "../registry/protocol.ts";
import type { MeshService, ServicePort } from "../registry/registry.ts";
import { withAccessLogs } from "./access-log.ts";
import { authorizationFilters } from "./authorization.ts";
import { ADS_CONFIG, sdsSecret } from "./clusters.ts";
import {
  BLACKHOLE_CLUSTER,
  INBOUND_PASSTHROUGH_CLUSTER,
  inboundClusterName,
  inboundPorts,
  outboundClusterName,
  PASSTHROUGH_CLUSTER,
  type PushContext,
  servicesServing,
  serviceTargets,
} from "./context.ts";
import { destinationRuleFor } from "./destination-rule.ts";
import { duration } from "./duration.ts";
import { composeMtls, portMode } from "./peer-authentication.ts";
import { jwtFilter } from "./request-authentication.ts";
import { ingressPorts, sidecarScope } from "./sidecar-scope.ts";
import { type TcpDestination, type TlsRoute, tcpDestination, tcpRoutes, tlsRoutes } from "./tcp-routes.ts";
import { accessLogsFor } from "./telemetry.ts";
import { hcmTracing } from "./tracing.ts";

export type MtlsMode = "STRICT" | "PERMISSIVE" | "DISABLE";

const HTTP_ALPN = ["http/1.1", "h2c"];
const ISTIO_HTTP_ALPN = ["istio-http/1.0", "istio-http/1.1", "istio-h2"];
const ISTIO_TCP_ALPN = ["istio-peer-exchange", "istio"];
export const CONNECT_TIMEOUT = { transportSocketConnectTimeout: { seconds: 15 } };

function tcpFilter(config: TcpProxy): Filter {
  return { name: "envoy.filters.network.tcp_proxy", typedConfig: pack(TcpProxy, config) };
}

function tcpProxy(cluster: string, statPrefix = cluster): Filter {
  return tcpFilter({ statPrefix, cluster });
}

/**
 * A TCP proxy to one cluster, or weighted clusters, with what the DestinationRule of `service`
 * says of TCP connections (idle timeout, longest duration, the source IP as consistent hash,
 * a subset's load balancer over the rule's), as upstream's buildOutboundNetworkFilters*.
 */
function serviceTcpProxy(
  push: PushContext,
  proxy: MeshProxy,
  service: MeshService | undefined,
  target: string | { name: string; weight: number }[],
  subset = "",
  statPrefix = typeof target === "string" ? target : "",
): Filter {
  const applied = service && destinationRuleFor(push, proxy, service);
  const policy = applied?.trafficPolicy;
  const tcp = policy?.connectionPool?.tcp;
  let sourceIp = policy?.loadBalancer?.consistentHash?.useSourceIp ?? false;
  const own = applied?.subsets.find((s) => s.name === subset)?.trafficPolicy?.loadBalancer;
  if (subset && own) sourceIp = own.consistentHash?.useSourceIp ?? false;
  const destination = typeof target === "string" ? { cluster: target } : { weightedClusters: { clusters: target } };
  return tcpFilter({
    statPrefix,
    ...destination,
    idleTimeout: duration(tcp?.idleTimeout),
    maxDownstreamConnectionDuration: duration(tcp?.maxConnectionDuration),
    ...(sourceIp ? { hashPolicy: [{ sourceIp: {} }] } : {}),
  });
}

/** The TCP filter chain of a service port: its VirtualService's TCP rule, else straight to its cluster. */
function outboundTcpChain(
  push: PushContext,
  proxy: MeshProxy,
  service: MeshService,
  port: ServicePort,
  listenPort: number,
): Pick<FilterChain, "filters" | "metadata"> {
  const routed = tcpDestination(push, proxy, service, listenPort);
  if (!routed) return { filters: [serviceTcpProxy(push, proxy, service, outboundClusterName(port.port, service.hostname))] };
  return routedChain(push, proxy, routed);
}

/**
 * The TCP filter chains of a service port's listener: its VirtualService's TCP rules (chains on
 * destination subnets first, as upstream orders them), then the service's cluster for the rest.
 */
function outboundTcpChains(
  push: PushContext,
  proxy: MeshProxy,
  service: MeshService,
  port: ServicePort,
  listenPort: number,
): FilterChain[] {
  const { chains, complete } = tcpRoutes(push, proxy, service, listenPort);
  const out: FilterChain[] = chains.map((c) => {
    const chain = routedChain(push, proxy, c.destination);
    // Upstream names the VirtualService only on chains without a subnet match.
    if (c.subnets.length === 0) return { ...chain, ...CONNECT_TIMEOUT };
    return { filterChainMatch: { prefixRanges: c.subnets.map(cidrRange) }, filters: chain.filters, ...CONNECT_TIMEOUT };
  });
  if (!complete)
    out.push({
      filters: [serviceTcpProxy(push, proxy, service, outboundClusterName(port.port, service.hostname))],
      ...CONNECT_TIMEOUT,
    });
  return out;
}

/** Upstream's layout: beside chains that match, the one matching everything is the listener's default chain. */
function tcpChainsOf(chains: FilterChain[]): Pick<Listener, "filterChains" | "defaultFilterChain"> {
  const last = chains[chains.length - 1];
  if (chains.length > 1 && last && !last.filterChainMatch) return { filterChains: chains.slice(0, -1), defaultFilterChain: last };
  return { filterChains: chains };
}

/** A TCP proxy to where a VirtualService's TCP or TLS rule sends connections. */
export function routedChain(
  push: PushContext,
  proxy: MeshProxy,
  routed: TcpDestination,
): Pick<FilterChain, "filters" | "metadata"> {
  const [first] = routed.clusters;
  if (routed.clusters.length === 1 && first)
    return { filters: [serviceTcpProxy(push, proxy, first.service, first.name, first.subset)], metadata: routed.metadata };
  const weighted = routed.clusters.map(({ name, weight }) => ({ name, weight }));
  return {
    filters: [serviceTcpProxy(push, proxy, first?.service, weighted, "", routed.virtualService)],
    metadata: routed.metadata,
  };
}

/** `10.0.0.0/8` (or a bare address: one host) as Envoy's CIDR range. */
function cidrRange(cidr: string) {
  const [address = "", length] = cidr.split("/");
  return { addressPrefix: address, prefixLen: length === undefined ? (address.includes(":") ? 128 : 32) : Number(length) };
}

/** A filter chain per TLS route: matched on its SNI names and destination subnets. */
function tlsChains(push: PushContext, proxy: MeshProxy, routes: TlsRoute[]): FilterChain[] {
  return routes.map((route) => ({
    filterChainMatch: {
      ...(route.destinationSubnets.length > 0 ? { prefixRanges: route.destinationSubnets.map(cidrRange) } : {}),
      ...(route.serverNames.length > 0 ? { serverNames: route.serverNames } : {}),
    },
    ...routedChain(push, proxy, route),
    ...CONNECT_TIMEOUT,
  }));
}

const isTlsPort = (port: ServicePort) => port.protocol === "TLS" || port.protocol === "HTTPS";

function typedStruct(typeUrl: string, value: Record<string, unknown>) {
  return pack(TypedStruct, { typeUrl, value });
}

/** Istio's TCP metadata exchange (network filter), for Istio's Envoy only. */
export function networkMetadataExchange(proxy: MeshProxy): Filter[] {
  if (!proxy.istioFilters) return [];
  return [
    {
      name: "istio.metadata_exchange",
      typedConfig: typedStruct("type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange", {
        enable_discovery: true,
        protocol: "istio-peer-exchange",
      }),
    },
  ];
}

/** The HTTP filters upstream puts in every sidecar HTTP connection manager, in its order. */
function httpFilters(push: PushContext, proxy: MeshProxy, inbound: boolean, gateway: boolean): HttpFilter[] {
  const filters: HttpFilter[] = [];
  if (proxy.istioFilters)
    filters.push({
      name: "istio.metadata_exchange",
      typedConfig: typedStruct(
        "type.googleapis.com/io.istio.http.peer_metadata.Config",
        inbound
          ? {
              downstream_discovery: [{ istio_headers: {} }, { workload_discovery: {} }],
              downstream_propagation: [{ istio_headers: {} }],
            }
          : {
              upstream_discovery: [{ istio_headers: {} }, { workload_discovery: {} }],
              upstream_propagation: [{ istio_headers: {} }],
            },
      ),
    });
  // Inbound and at gateways (not on a sidecar's way out), after the peer's metadata: CUSTOM
  // authorization, JWT authentication, authorization.
  if (inbound || gateway) {
    const authz = authorizationFilters(push, proxy);
    filters.push(...authz.customHttp, ...jwtFilter(push, proxy), ...authz.http);
  }
  filters.push({
    name: "envoy.filters.http.grpc_stats",
    typedConfig: pack(GrpcStats, { emitFilterState: true, statsForAllMethods: false }),
  });
  if (!inbound && proxy.istioFilters)
    filters.push({
      name: "istio.alpn",
      typedConfig: pack(AlpnFilter, {
        alpnOverride: [
          { upstreamProtocol: FilterConfig_Protocol.HTTP10, alpnOverride: ["istio-http/1.0", "istio", "http/1.0"] },
          { upstreamProtocol: FilterConfig_Protocol.HTTP11, alpnOverride: ["istio-http/1.1", "istio", "http/1.1"] },
          { upstreamProtocol: FilterConfig_Protocol.HTTP2, alpnOverride: ["istio-h2", "istio", "h2"] },
        ],
      }),
    });
  filters.push(
    { name: "envoy.filters.http.fault", typedConfig: pack(HTTPFault, {}) },
    { name: "envoy.filters.http.cors", typedConfig: pack(Cors, {}) },
    { name: "envoy.filters.http.router", typedConfig: pack(Router, {}) },
  );
  return filters;
}

/**
 * An HTTP connection manager: a sidecar's outbound or inbound one, or (`gateway`) a gateway
 * server's, which is outbound in its filters and, as the mesh's edge, uses the client's address
 * and sanitizes the client certificate header (upstream's buildGatewayConnectionManager).
 */
export function httpConnectionManager(
  push: PushContext,
  proxy: MeshProxy,
  statPrefix: string,
  routing: { rds: string } | { routeConfig: RouteConfiguration; http2ProtocolOptions?: object },
  inbound: boolean,
  gateway = false,
): Filter {
  const traced = hcmTracing(push, proxy, inbound);
  return {
    name: "envoy.filters.network.http_connection_manager",
    typedConfig: pack(HttpConnectionManager, {
      statPrefix: `${statPrefix};`,
      ...("rds" in routing ? { rds: { configSource: ADS_CONFIG, routeConfigName: routing.rds } } : routing),
      httpFilters: httpFilters(push, proxy, inbound, gateway),
      ...(traced ? { tracing: traced.tracing } : {}),
      ...(gateway ? { httpProtocolOptions: {} } : {}),
      ...(inbound || gateway ? { serverName: "istio-envoy" } : {}),
      streamIdleTimeout: { seconds: 0 },
      useRemoteAddress: gateway,
      ...(inbound
        ? {
            forwardClientCertDetails: HttpConnectionManager_ForwardClientCertDetails.APPEND_FORWARD,
            setCurrentClientCertDetails: { subject: true, dns: true, uri: true },
          }
        : {}),
      ...(gateway
        ? {
            forwardClientCertDetails: HttpConnectionManager_ForwardClientCertDetails.SANITIZE_SET,
            setCurrentClientCertDetails: { subject: true, cert: true, dns: true, uri: true },
          }
        : {}),
      proxy100Continue: true,
      upgradeConfigs: [{ upgradeType: "websocket" }],
      normalizePath: true,
      pathWithEscapedSlashesAction: HttpConnectionManager_PathWithEscapedSlashesAction.KEEP_UNCHANGED,
      requestIdExtension: {
        typedConfig: pack(UuidRequestIdConfig, { useRequestIdForTraceSampling: traced?.useRequestIdForTraceSampling ?? true }),
      },
    }),
  };
}

/** The inbound side's TLS: our certificate, peers of this trust domain verified against the mesh root. */
function inboundTls(push: PushContext, peerExchange: boolean): FilterChain["transportSocket"] {
  return {
    name: "envoy.transport_sockets.tls",
    typedConfig: pack(DownstreamTlsContext, {
      commonTlsContext: {
        tlsParams: {
          tlsMinimumProtocolVersion: TlsParameters_TlsProtocol.TLSv1_2,
          tlsMaximumProtocolVersion: TlsParameters_TlsProtocol.TLSv1_3,
          cipherSuites: [
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            "ECDHE-RSA-AES256-GCM-SHA384",
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "ECDHE-RSA-AES128-GCM-SHA256",
            "AES256-GCM-SHA384",
            "AES128-GCM-SHA256",
          ],
        },
        tlsCertificateSdsSecretConfigs: [sdsSecret("default")],
        combinedValidationContext: {
          defaultValidationContext: { matchSubjectAltNames: [{ prefix: `spiffe://${push.mesh.trustDomain}/` }] },
          validationContextSdsSecretConfig: sdsSecret("ROOTCA"),
        },
        alpnProtocols: peerExchange ? ["istio-peer-exchange", "h2", "http/1.1"] : ["h2", "http/1.1"],
      },
      requireClientCertificate: true,
    }),
  };
}

const listenerFilter = {
  originalDst: { name: "envoy.filters.listener.original_dst", typedConfig: pack(OriginalDst, {}) },
  tls: { name: "envoy.filters.listener.tls_inspector", typedConfig: pack(TlsInspector, { initialReadBufferSize: 512 }) },
  http: { name: "envoy.filters.listener.http_inspector", typedConfig: pack(HttpInspector, {}) },
};

const outboundListenerBase = {
  listenerFiltersTimeout: { seconds: 0 },
  continueOnListenerFiltersTimeout: true,
  trafficDirection: TrafficDirection.OUTBOUND,
  bindToPort: false,
};

function outboundListeners(push: PushContext, proxy: MeshProxy): Listener[] {
  const httpPorts = new Set<number>();
  const listeners: Listener[] = [];
  const addressless: { service: MeshService; port: ServicePort }[] = [];
  for (const service of sidecarScope(push, proxy).services) {
    if (service.externalName) continue;
    for (const port of service.ports) {
      if (port.protocol === "UDP") continue;
      if (isHttp(port.protocol)) {
        httpPorts.add(port.port);
        continue;
      }
      if (!service.clusterIp) {
        if (service.origin === "ServiceEntry") addressless.push({ service, port });
        else
          for (const ep of headlessEndpoints(push, service, port))
            listeners.push(addressListener(push, proxy, service, port, ep.address, ep.port));
        continue;
      }
      listeners.push(addressListener(push, proxy, service, port, service.clusterIp, port.port));
    }
  }
  listeners.push(...wildcardListeners(push, proxy, addressless, new Set(listeners.map((l) => l.name ?? ""))));
  for (const port of httpPorts) {
    const name = `0.0.0.0_${port}`;
    listeners.push({
      name,
      address: { socketAddress: { address: "0.0.0.0", portValue: port } },
      filterChains: [
        {
          filterChainMatch: { transportProtocol: "raw_buffer", applicationProtocols: HTTP_ALPN },
          filters: [httpConnectionManager(push, proxy, `outbound_${name}`, { rds: String(port) }, false)],
          ...CONNECT_TIMEOUT,
        },
      ],
      defaultFilterChain: passthroughChain(push, proxy),
      listenerFilters: [listenerFilter.http],
      ...outboundListenerBase,
    });
  }
  return listeners;
}

/** `<address>_<port>`: TCP straight to the service port's cluster; sniffed HTTP routed by RDS `<hostname>:<port>`. */
function addressListener(
  push: PushContext,
  proxy: MeshProxy,
  service: MeshService,
  port: ServicePort,
  ip: string,
  number: number,
): Listener {
  const name = `${ip}_${number}`;
  const address = { socketAddress: { address: ip, portValue: number } };
  const tls = isTlsPort(port) ? tlsRoutes(push, proxy, service, number) : [];
  if (tls.length > 0)
    return {
      name,
      address,
      filterChains: tlsChains(push, proxy, tls),
      defaultFilterChain: passthroughChain(push, proxy),
      listenerFilters: [listenerFilter.tls],
      ...outboundListenerBase,
    };
  if (!isSniffed(port.protocol))
    return {
      name,
      address,
      ...tcpChainsOf(outboundTcpChains(push, proxy, service, port, number)),
      ...outboundListenerBase,
    };
  return {
    name,
    address,
    filterChains: [
      {
        filterChainMatch: { transportProtocol: "raw_buffer", applicationProtocols: HTTP_ALPN },
        filters: [httpConnectionManager(push, proxy, `outbound_${name}`, { rds: `${service.hostname}:${port.port}` }, false)],
        ...CONNECT_TIMEOUT,
      },
    ],
    defaultFilterChain: { ...outboundTcpChain(push, proxy, service, port, number), ...CONNECT_TIMEOUT },
    listenerFilters: [listenerFilter.http],
    ...outboundListenerBase,
  };
}

/** A headless Service's ready endpoints for one port: clients dial them directly, so each gets a listener. */
function headlessEndpoints(push: PushContext, service: MeshService, port: ServicePort) {
  return (push.registry.endpoints.get(service.hostname) ?? []).filter((ep) => ep.servicePortName === port.name && ep.ready);
}

/** `0.0.0.0_<port>` listeners for ServiceEntry ports without an address (not for a port an HTTP listener has). */
function wildcardListeners(
  push: PushContext,
  proxy: MeshProxy,
  entries: { service: MeshService; port: ServicePort }[],
  taken: Set<string>,
): Listener[] {
  const byPort = new Map<number, { service: MeshService; port: ServicePort }[]>();
  for (const entry of entries) byPort.set(entry.port.port, [...(byPort.get(entry.port.port) ?? []), entry]);
  const listeners: Listener[] = [];
  for (const [number, list] of [...byPort].sort(([a], [b]) => a - b)) {
    const name = `0.0.0.0_${number}`;
    if (taken.has(name)) continue;
    const address = { socketAddress: { address: "0.0.0.0", portValue: number } };
    const tls = list.filter((e) => isTlsPort(e.port));
    if (tls.length > 0) {
      // Each host's TLS routes, else its own name to its cluster; a match already taken is left out.
      const chains: FilterChain[] = [];
      const taken = new Set<string>();
      for (const { service } of tls) {
        const routes = tlsRoutes(push, proxy, service, number);
        const own =
          routes.length > 0
            ? tlsChains(push, proxy, routes)
            : [
                {
                  filterChainMatch: { serverNames: [service.hostname] },
                  filters: [serviceTcpProxy(push, proxy, service, outboundClusterName(number, service.hostname))],
                  ...CONNECT_TIMEOUT,
                },
              ];
        for (const chain of own) {
          const key = JSON.stringify(chain.filterChainMatch);
          if (taken.has(key)) continue;
          taken.add(key);
          chains.push(chain);
        }
      }
      listeners.push({
        name,
        address,
        filterChains: chains,
        defaultFilterChain: passthroughChain(push, proxy),
        listenerFilters: [listenerFilter.tls],
        ...outboundListenerBase,
      });
      continue;
    }
    const first = list.find((e) => isTcp(e.port.protocol));
    if (!first) continue;
    listeners.push({
      name,
      address,
      filterChains: [
        {
          filters: [serviceTcpProxy(push, proxy, first.service, outboundClusterName(number, first.service.hostname))],
          ...CONNECT_TIMEOUT,
        },
      ],
      ...outboundListenerBase,
    });
  }
  return listeners;
}

/** Where traffic to an unknown destination goes: through (ALLOW_ANY), or the BlackHole (REGISTRY_ONLY). */
function unknownDestinationCluster(push: PushContext, proxy: MeshProxy): string {
  return sidecarScope(push, proxy).outboundTrafficPolicy === "ALLOW_ANY" ? PASSTHROUGH_CLUSTER : BLACKHOLE_CLUSTER;
}

/** A port listener's chain for what is not one of its services. */
function passthroughChain(push: PushContext, proxy: MeshProxy) {
  return { filterChainMatch: {}, filters: [tcpProxy(unknownDestinationCluster(push, proxy))], name: "PassthroughFilterChain" };
}

function virtualOutbound(push: PushContext, proxy: MeshProxy): Listener {
  const cluster = unknownDestinationCluster(push, proxy);
  return {
    name: "virtualOutbound",
    address: { socketAddress: { address: "0.0.0.0", portValue: push.mesh.outboundPort } },
    filterChains: [
      {
        filterChainMatch: { destinationPort: push.mesh.outboundPort },
        filters: [tcpProxy(BLACKHOLE_CLUSTER)],
        name: "virtualOutbound-blackhole",
      },
      { filters: [tcpProxy(cluster)], name: "virtualOutbound-catchall-tcp" },
    ],
    useOriginalDst: true,
    trafficDirection: TrafficDirection.OUTBOUND,
    maxConnectionsToAcceptPerSocketEvent: 1,
  };
}

/** An inbound route configuration sending everything to `cluster` (gRPC: no retries). */
function inboundRoutes(cluster: string, vhostPort: number, operation: string, grpc: boolean): RouteConfiguration {
  return {
    name: cluster,
    virtualHosts: [
      {
        name: `inbound|http|${vhostPort}`,
        domains: ["*"],
        routes: [
          {
            name: "default",
            match: { prefix: "/" },
            route: {
              cluster,
              timeout: { seconds: 0 },
              ...(grpc ? {} : { retryPolicy: { retryOn: "reset-before-request", numRetries: 2 } }),
              maxStreamDuration: { maxStreamDuration: { seconds: 0 }, grpcTimeoutHeaderMax: { seconds: 0 } },
            },
            decorator: { operation },
          },
        ],
      },
    ],
    validateClusters: false,
  };
}

interface InboundTarget {
  port: number;
  protocol: Protocol;
  /** The Service port number the target port serves, and its Service. */
  servicePort?: number;
  service?: MeshService;
  /** The chain's address in its name (`0.0.0.0`, or the pod's for a Sidecar ingress port). */
  bind?: string;
  /** The route's decorator operation, when not `<service host>:<port>/*`. */
  operation?: string;
  /** The chains' metadata (a Sidecar ingress port: the Sidecar). */
  metadata?: FilterChain["metadata"];
}

/**
 * The chains for one inbound port (or, without a target, the catch-all ones) under `mode`:
 * STRICT, mutual TLS only (Istio's ALPN not required); PERMISSIVE, mutual TLS when the client
 * speaks Istio's ALPN and plaintext otherwise; DISABLE, plaintext only.
 */
function inboundChains(push: PushContext, proxy: MeshProxy, target: InboundTarget | undefined, mode: MtlsMode): FilterChain[] {
  const cluster = target ? inboundClusterName(target.port) : INBOUND_PASSTHROUGH_CLUSTER;
  const mx = networkMetadataExchange(proxy);
  // Every inbound TCP chain but the blackhole: the peer's metadata, authorization, the proxy.
  const authorization = authorizationFilters(push, proxy).tcp;
  const tcp = (to: string) => [...mx, ...authorization, tcpProxy(to)];
  const grpc = target ? isHttp2(target.protocol) : false;
  const http = () =>
    httpConnectionManager(
      push,
      proxy,
      target ? `inbound_${target.bind ?? "0.0.0.0"}_${target.port}` : INBOUND_PASSTHROUGH_CLUSTER,
      {
        routeConfig: inboundRoutes(
          cluster,
          target?.servicePort ?? target?.port ?? 0,
          target?.operation ??
            (target?.service ? `${target.service.hostname}:${target.servicePort ?? target.port}/*` : `:${target?.port ?? 0}/*`),
          grpc,
        ),
        ...(grpc ? { http2ProtocolOptions: {} } : {}),
      },
      true,
    );
  // Under STRICT, a TCP chain's TLS offers Istio's peer-exchange ALPN too (the client need not ask for it).
  const tls = (tcpStrict: boolean) => inboundTls(push, tcpStrict);
  if (target) {
    const name = `${target.bind ?? "0.0.0.0"}_${target.port}`;
    const meta = target.metadata ? { metadata: target.metadata } : {};
    const httpPort = isHttp(target.protocol);
    const filters = () => (httpPort ? [...mx, http()] : tcp(cluster));
    const chains: FilterChain[] = [];
    if (mode === "STRICT")
      chains.push({
        filterChainMatch: { destinationPort: target.port, transportProtocol: "tls" },
        filters: filters(),
        transportSocket: tls(!httpPort),
        name,
        ...meta,
      });
    if (mode === "PERMISSIVE")
      chains.push({
        filterChainMatch: {
          destinationPort: target.port,
          transportProtocol: "tls",
          applicationProtocols: ["istio", "istio-peer-exchange", ...ISTIO_HTTP_ALPN],
        },
        filters: filters(),
        transportSocket: tls(false),
        name,
        ...meta,
      });
    if (mode !== "STRICT")
      chains.push({
        filterChainMatch: { destinationPort: target.port, transportProtocol: "raw_buffer" },
        filters: filters(),
        name,
        ...meta,
      });
    return chains;
  }
  const chains: FilterChain[] = [
    {
      filterChainMatch: { destinationPort: push.mesh.inboundPort },
      filters: [...mx, tcpProxy(BLACKHOLE_CLUSTER)],
      name: "virtualInbound-blackhole",
    },
  ];
  if (mode !== "DISABLE")
    chains.push({
      filterChainMatch: { transportProtocol: "tls", applicationProtocols: ISTIO_HTTP_ALPN },
      filters: [...mx, http()],
      transportSocket: tls(false),
      name: "virtualInbound-catchall-http",
    });
  if (mode !== "STRICT")
    chains.push({
      filterChainMatch: { transportProtocol: "raw_buffer", applicationProtocols: HTTP_ALPN },
      filters: [...mx, http()],
      name: "virtualInbound-catchall-http",
    });
  if (mode === "STRICT")
    chains.push({
      filterChainMatch: { transportProtocol: "tls" },
      filters: tcp(INBOUND_PASSTHROUGH_CLUSTER),
      transportSocket: tls(true),
      name: "virtualInbound",
    });
  if (mode === "PERMISSIVE")
    chains.push({
      filterChainMatch: { transportProtocol: "tls", applicationProtocols: ISTIO_TCP_ALPN },
      filters: tcp(INBOUND_PASSTHROUGH_CLUSTER),
      transportSocket: tls(false),
      name: "virtualInbound",
    });
  if (mode !== "STRICT")
    chains.push(
      {
        filterChainMatch: { transportProtocol: "raw_buffer" },
        filters: tcp(INBOUND_PASSTHROUGH_CLUSTER),
        name: "virtualInbound",
      },
      // TLS that is not Istio's (the application's own): passed through as it is.
      {
        filterChainMatch: { transportProtocol: "tls" },
        filters: tcp(INBOUND_PASSTHROUGH_CLUSTER),
        name: "virtualInbound",
      },
    );
  return chains;
}

function virtualInbound(push: PushContext, proxy: MeshProxy, mode: (port: number) => MtlsMode): Listener {
  // The Sidecar's ingress listeners, else the ports the proxy's Services send to it.
  const ingress = ingressPorts(push, proxy);
  const targets: InboundTarget[] = ingress
    ? ingress.map((i) => {
        const [service] = servicesServing(push, proxy, i.port);
        return {
          port: i.port,
          protocol: i.protocol,
          bind: i.bind,
          operation: `${service ? `${service.name}.${service.namespace}` : ""}:${i.port}/*`,
          metadata: { filterMetadata: { istio: { config: i.config } } },
        };
      })
    : inboundPorts(push, proxy).map(([port, servicePort]) => ({
        port,
        protocol: servicePort.protocol,
        servicePort: servicePort.port,
        service: serviceTargets(push, proxy).find((s) => s.ports.includes(servicePort)),
      }));
  const workloadMode = mode(0);
  const chains: FilterChain[] = [
    ...inboundChains(push, proxy, undefined, workloadMode),
    ...targets.flatMap((t) => inboundChains(push, proxy, t, mode(t.port))),
  ];
  const range = (port: number) => ({ destinationPortRange: { start: port, end: port + 1 } });
  const anyOf = (ports: number[]) => {
    const rules = ports.map(range);
    return rules.length === 1 ? rules[0] : { orMatch: { rules } };
  };
  // TLS is never looked for on plaintext-only (DISABLE) ports; HTTP is sniffed only on
  // plaintext chains whose protocol is not declared (not on HTTP or TCP ports, nor STRICT ones).
  const noTls = [...targets.filter((t) => mode(t.port) === "DISABLE").map((t) => t.port), push.mesh.inboundPort];
  const noHttp = [
    ...targets.filter((t) => !isSniffed(t.protocol) || mode(t.port) === "STRICT").map((t) => t.port),
    push.mesh.inboundPort,
  ];
  const sniffs = workloadMode !== "STRICT" || targets.some((t) => isSniffed(t.protocol) && mode(t.port) !== "STRICT");
  return {
    name: "virtualInbound",
    address: { socketAddress: { address: "0.0.0.0", portValue: push.mesh.inboundPort } },
    filterChains: chains,
    listenerFilters: [
      listenerFilter.originalDst,
      { ...listenerFilter.tls, filterDisabled: anyOf(noTls) },
      ...(sniffs ? [{ ...listenerFilter.http, filterDisabled: anyOf(noHttp) }] : []),
    ],
    listenerFiltersTimeout: { seconds: 0 },
    continueOnListenerFiltersTimeout: true,
    trafficDirection: TrafficDirection.INBOUND,
    maxConnectionsToAcceptPerSocketEvent: 1,
  };
}

/** Every listener a sidecar gets; inbound chains follow the PeerAuthentications that apply to it. */
export function sidecarListeners(push: PushContext, proxy: MeshProxy): Listener[] {
  const mtls = composeMtls(push.peerAuthentications, push.mesh.rootNamespace, proxy);
  return withAccessLogs(
    [
      ...outboundListeners(push, proxy),
      virtualOutbound(push, proxy),
      virtualInbound(push, proxy, (port) => portMode(mtls, port)),
    ],
    accessLogsFor(push, proxy, "CLIENT"),
    accessLogsFor(push, proxy, "SERVER"),
  );
}
