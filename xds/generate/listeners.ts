// LDS for a sidecar, in upstream's layout (xds/parity pins it against upstream's output):
// - virtualOutbound (0.0.0.0:15001, where iptables sends outbound connections): hands each
//   connection to the listener of its original destination, else to PassthroughCluster
//   (BlackHoleCluster under REGISTRY_ONLY, and for connections to 15001 itself);
// - outbound HTTP ports: one listener `0.0.0.0_<port>` for every Service on that port, HTTP
//   (sniffed by ALPN) routed by RDS `<port>`, anything else passed through;
// - outbound TCP and sniffed ports: a listener per Service address `<clusterIP>_<port>`, TCP
//   straight to the Service's cluster, sniffed HTTP routed by RDS `<hostname>:<port>`;
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
import { isHttp, isSniffed, type Protocol } from "../registry/protocol.ts";
import type { MeshService } from "../registry/registry.ts";
import { ADS_CONFIG, sdsSecret } from "./clusters.ts";
import {
  BLACKHOLE_CLUSTER,
  INBOUND_PASSTHROUGH_CLUSTER,
  inboundClusterName,
  inboundPorts,
  outboundClusterName,
  PASSTHROUGH_CLUSTER,
  type PushContext,
  serviceTargets,
} from "./context.ts";

export type MtlsMode = "STRICT" | "PERMISSIVE" | "DISABLE";

const HTTP_ALPN = ["http/1.1", "h2c"];
const ISTIO_HTTP_ALPN = ["istio-http/1.0", "istio-http/1.1", "istio-h2"];
const ISTIO_TCP_ALPN = ["istio-peer-exchange", "istio"];
const CONNECT_TIMEOUT = { transportSocketConnectTimeout: { seconds: 15 } };

function tcpProxy(cluster: string, statPrefix = cluster): Filter {
  return { name: "envoy.filters.network.tcp_proxy", typedConfig: pack(TcpProxy, { statPrefix, cluster }) };
}

function typedStruct(typeUrl: string, value: Record<string, unknown>) {
  return pack(TypedStruct, { typeUrl, value });
}

/** Istio's TCP metadata exchange (network filter), for Istio's Envoy only. */
function networkMetadataExchange(proxy: MeshProxy): Filter[] {
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
function httpFilters(proxy: MeshProxy, inbound: boolean): HttpFilter[] {
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

/** Tracing as upstream's default mesh config sets it (1% sampling), tagged with the workload's identity. */
function tracing(proxy: MeshProxy) {
  const dryRun = (tag: string, key: string) => ({
    tag,
    metadata: { kind: { request: {} }, metadataKey: { key: "envoy.filters.http.rbac", path: [{ key }] } },
  });
  const literal = (tag: string, value: string) => ({ tag, literal: { value } });
  return {
    clientSampling: { value: 100 },
    randomSampling: { value: 1 },
    overallSampling: { value: 100 },
    customTags: [
      dryRun("istio.authorization.dry_run.allow_policy.name", "istio_dry_run_allow_shadow_effective_policy_id"),
      dryRun("istio.authorization.dry_run.allow_policy.result", "istio_dry_run_allow_shadow_engine_result"),
      dryRun("istio.authorization.dry_run.deny_policy.name", "istio_dry_run_deny_shadow_effective_policy_id"),
      dryRun("istio.authorization.dry_run.deny_policy.result", "istio_dry_run_deny_shadow_engine_result"),
      literal("istio.canonical_revision", proxy.labels["service.istio.io/canonical-revision"] ?? "latest"),
      literal("istio.canonical_service", proxy.labels["service.istio.io/canonical-name"] ?? "unknown"),
      literal("istio.cluster_id", proxy.clusterId),
      literal("istio.mesh_id", typeof proxy.metadata.MESH_ID === "string" ? proxy.metadata.MESH_ID : "unknown"),
      literal("istio.namespace", proxy.namespace),
    ],
  };
}

function httpConnectionManager(
  proxy: MeshProxy,
  statPrefix: string,
  routing: { rds: string } | { routeConfig: RouteConfiguration },
  inbound: boolean,
): Filter {
  return {
    name: "envoy.filters.network.http_connection_manager",
    typedConfig: pack(HttpConnectionManager, {
      statPrefix: `${statPrefix};`,
      ...("rds" in routing ? { rds: { configSource: ADS_CONFIG, routeConfigName: routing.rds } } : routing),
      httpFilters: httpFilters(proxy, inbound),
      tracing: tracing(proxy),
      ...(inbound ? { serverName: "istio-envoy" } : {}),
      streamIdleTimeout: { seconds: 0 },
      useRemoteAddress: false,
      ...(inbound
        ? {
            forwardClientCertDetails: HttpConnectionManager_ForwardClientCertDetails.APPEND_FORWARD,
            setCurrentClientCertDetails: { subject: true, dns: true, uri: true },
          }
        : {}),
      proxy100Continue: true,
      upgradeConfigs: [{ upgradeType: "websocket" }],
      normalizePath: true,
      pathWithEscapedSlashesAction: HttpConnectionManager_PathWithEscapedSlashesAction.KEEP_UNCHANGED,
      requestIdExtension: { typedConfig: pack(UuidRequestIdConfig, { useRequestIdForTraceSampling: true }) },
    }),
  };
}

/** The inbound side's TLS: our certificate, peers of this trust domain verified against the mesh root. */
function inboundTls(push: PushContext): FilterChain["transportSocket"] {
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
        alpnProtocols: ["h2", "http/1.1"],
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
  for (const service of push.registry.services) {
    if (service.externalName) continue;
    for (const port of service.ports) {
      if (port.protocol === "UDP") continue;
      if (isHttp(port.protocol)) {
        httpPorts.add(port.port);
        continue;
      }
      if (!service.clusterIp) continue; // headless: through virtualOutbound's passthrough
      const cluster = outboundClusterName(port.port, service.hostname);
      const name = `${service.clusterIp}_${port.port}`;
      const address = { socketAddress: { address: service.clusterIp, portValue: port.port } };
      if (isSniffed(port.protocol)) {
        listeners.push({
          name,
          address,
          filterChains: [
            {
              filterChainMatch: { transportProtocol: "raw_buffer", applicationProtocols: HTTP_ALPN },
              filters: [httpConnectionManager(proxy, `outbound_${name}`, { rds: `${service.hostname}:${port.port}` }, false)],
              ...CONNECT_TIMEOUT,
            },
          ],
          defaultFilterChain: { filters: [tcpProxy(cluster)], ...CONNECT_TIMEOUT },
          listenerFilters: [listenerFilter.http],
          ...outboundListenerBase,
        });
      } else {
        listeners.push({
          name,
          address,
          filterChains: [{ filters: [tcpProxy(cluster)], ...CONNECT_TIMEOUT }],
          ...outboundListenerBase,
        });
      }
    }
  }
  for (const port of httpPorts) {
    const name = `0.0.0.0_${port}`;
    listeners.push({
      name,
      address: { socketAddress: { address: "0.0.0.0", portValue: port } },
      filterChains: [
        {
          filterChainMatch: { transportProtocol: "raw_buffer", applicationProtocols: HTTP_ALPN },
          filters: [httpConnectionManager(proxy, `outbound_${name}`, { rds: String(port) }, false)],
          ...CONNECT_TIMEOUT,
        },
      ],
      defaultFilterChain: { filterChainMatch: {}, filters: [tcpProxy(PASSTHROUGH_CLUSTER)], name: "PassthroughFilterChain" },
      listenerFilters: [listenerFilter.http],
      ...outboundListenerBase,
    });
  }
  return listeners;
}

function virtualOutbound(push: PushContext): Listener {
  const cluster = push.mesh.outboundTrafficPolicy === "ALLOW_ANY" ? PASSTHROUGH_CLUSTER : BLACKHOLE_CLUSTER;
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

/** An inbound route configuration sending everything to `cluster`. */
function inboundRoutes(cluster: string, port: number, operation: string): RouteConfiguration {
  return {
    name: cluster,
    virtualHosts: [
      {
        name: `inbound|http|${port}`,
        domains: ["*"],
        routes: [
          {
            name: "default",
            match: { prefix: "/" },
            route: {
              cluster,
              timeout: { seconds: 0 },
              retryPolicy: { retryOn: "reset-before-request", numRetries: 2 },
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

/** The chains for one inbound port (or, without a port, the catch-all ones). */
function inboundChains(
  push: PushContext,
  proxy: MeshProxy,
  target: { port: number; protocol: Protocol; service?: MeshService } | undefined,
  mode: MtlsMode,
): FilterChain[] {
  const cluster = target ? inboundClusterName(target.port) : INBOUND_PASSTHROUGH_CLUSTER;
  const mx = networkMetadataExchange(proxy);
  const http = () =>
    httpConnectionManager(
      proxy,
      target ? `inbound_0.0.0.0_${target.port}` : INBOUND_PASSTHROUGH_CLUSTER,
      {
        routeConfig: inboundRoutes(
          cluster,
          target?.port ?? 0,
          target?.service ? `${target.service.hostname}:${target.port}/*` : `:${target?.port ?? 0}/*`,
        ),
      },
      true,
    );
  const tls = inboundTls(push);
  if (target) {
    const name = `0.0.0.0_${target.port}`;
    const filters = () => [...mx, isHttp(target.protocol) ? http() : tcpProxy(cluster)];
    const chains: FilterChain[] = [];
    if (mode !== "DISABLE")
      chains.push({
        filterChainMatch: {
          destinationPort: target.port,
          transportProtocol: "tls",
          applicationProtocols: ["istio", "istio-peer-exchange", ...ISTIO_HTTP_ALPN],
        },
        filters: filters(),
        transportSocket: tls,
        name,
      });
    if (mode !== "STRICT")
      chains.push({
        filterChainMatch: { destinationPort: target.port, transportProtocol: "raw_buffer" },
        filters: filters(),
        name,
      });
    return chains;
  }
  const catchall: FilterChain[] = [
    {
      filterChainMatch: { destinationPort: push.mesh.inboundPort },
      filters: [...mx, tcpProxy(BLACKHOLE_CLUSTER)],
      name: "virtualInbound-blackhole",
    },
  ];
  if (mode !== "DISABLE")
    catchall.push({
      filterChainMatch: { transportProtocol: "tls", applicationProtocols: ISTIO_HTTP_ALPN },
      filters: [...mx, http()],
      transportSocket: tls,
      name: "virtualInbound-catchall-http",
    });
  if (mode !== "STRICT")
    catchall.push({
      filterChainMatch: { transportProtocol: "raw_buffer", applicationProtocols: HTTP_ALPN },
      filters: [...mx, http()],
      name: "virtualInbound-catchall-http",
    });
  if (mode !== "DISABLE")
    catchall.push({
      filterChainMatch: { transportProtocol: "tls", applicationProtocols: ISTIO_TCP_ALPN },
      filters: [...mx, tcpProxy(INBOUND_PASSTHROUGH_CLUSTER)],
      transportSocket: tls,
      name: "virtualInbound",
    });
  if (mode !== "STRICT")
    catchall.push(
      {
        filterChainMatch: { transportProtocol: "raw_buffer" },
        filters: [...mx, tcpProxy(INBOUND_PASSTHROUGH_CLUSTER)],
        name: "virtualInbound",
      },
      // TLS that is not Istio's (the application's own): passed through as it is.
      {
        filterChainMatch: { transportProtocol: "tls" },
        filters: [...mx, tcpProxy(INBOUND_PASSTHROUGH_CLUSTER)],
        name: "virtualInbound",
      },
    );
  return catchall;
}

function virtualInbound(push: PushContext, proxy: MeshProxy, mode: (port: number) => MtlsMode): Listener {
  const targets = inboundPorts(push, proxy).map(([port, servicePort]) => ({
    port,
    protocol: servicePort.protocol,
    service: serviceTargets(push, proxy).find((s) => s.ports.includes(servicePort)),
  }));
  const chains: FilterChain[] = [
    ...inboundChains(push, proxy, undefined, mode(0)),
    ...targets.flatMap((t) => inboundChains(push, proxy, t, mode(t.port))),
  ];
  // The HTTP inspector runs only where the protocol is not known (ports declared HTTP skip it).
  const knownHttp = targets.filter((t) => isHttp(t.protocol)).map((t) => t.port);
  const range = (port: number) => ({ destinationPortRange: { start: port, end: port + 1 } });
  const skipHttpInspector = [...knownHttp, push.mesh.inboundPort].map(range);
  return {
    name: "virtualInbound",
    address: { socketAddress: { address: "0.0.0.0", portValue: push.mesh.inboundPort } },
    filterChains: chains,
    listenerFilters: [
      listenerFilter.originalDst,
      { ...listenerFilter.tls, filterDisabled: range(push.mesh.inboundPort) },
      {
        ...listenerFilter.http,
        filterDisabled: skipHttpInspector.length === 1 ? skipHttpInspector[0] : { orMatch: { rules: skipHttpInspector } },
      },
    ],
    listenerFiltersTimeout: { seconds: 0 },
    continueOnListenerFiltersTimeout: true,
    trafficDirection: TrafficDirection.INBOUND,
    maxConnectionsToAcceptPerSocketEvent: 1,
  };
}

/** Every listener a sidecar gets; `mode` is the mTLS mode for an inbound port (PeerAuthentication). */
export function sidecarListeners(
  push: PushContext,
  proxy: MeshProxy,
  mode: (port: number) => MtlsMode = () => "PERMISSIVE",
): Listener[] {
  return [...outboundListeners(push, proxy), virtualOutbound(push), virtualInbound(push, proxy, mode)];
}
