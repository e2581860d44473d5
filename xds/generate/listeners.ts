// LDS for a sidecar, as upstream lays it out:
// - virtualOutbound (0.0.0.0:15001, where iptables sends outbound connections): hands each
//   connection to the listener of its original destination, else to PassthroughCluster;
// - an outbound listener per Service port: HTTP ports `0.0.0.0_<port>` (routes from RDS
//   `<port>`), TCP ports `<clusterIP>_<port>` (straight to the Service's cluster), ports whose
//   protocol is unknown sniffed (HTTP by ALPN, else TCP);
// - virtualInbound (0.0.0.0:15006, where inbound connections arrive): per port of the proxy's
//   own Services a chain for mutual TLS (Istio's ALPN) and, unless STRICT, one for plaintext,
//   then catch-all chains to InboundPassthroughCluster.
import type { Listener } from "../envoy/third_party/envoy/config/listener/v3/listener.ts";
import type { Filter, FilterChain } from "../envoy/third_party/envoy/config/listener/v3/listener_components.ts";
import { Router } from "../envoy/third_party/envoy/extensions/filters/http/router/v3/router.ts";
import { HttpInspector } from "../envoy/third_party/envoy/extensions/filters/listener/http_inspector/v3/http_inspector.ts";
import { OriginalDst } from "../envoy/third_party/envoy/extensions/filters/listener/original_dst/v3/original_dst.ts";
import { TlsInspector } from "../envoy/third_party/envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.ts";
import {
  HttpConnectionManager,
  HttpConnectionManager_CodecType,
} from "../envoy/third_party/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.ts";
import { TcpProxy } from "../envoy/third_party/envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.ts";
import { DownstreamTlsContext } from "../envoy/third_party/envoy/extensions/transport_sockets/tls/v3/tls.ts";
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
} from "./context.ts";

export type MtlsMode = "STRICT" | "PERMISSIVE" | "DISABLE";

const OUTBOUND = 2;
const INBOUND = 1;
const ISTIO_ALPN = ["istio-peer-exchange", "istio", "istio-http/1.0", "istio-http/1.1", "istio-h2"];
const HTTP_ALPN = ["http/1.1", "h2c"];

function tcpProxy(statPrefix: string, cluster: string): Filter {
  return { name: "envoy.filters.network.tcp_proxy", typedConfig: pack(TcpProxy, { statPrefix, cluster }) };
}

function httpConnectionManager(statPrefix: string, route: { rds: string } | { cluster: string }, inbound: boolean): Filter {
  const routing =
    "rds" in route
      ? { rds: { configSource: ADS_CONFIG, routeConfigName: route.rds } }
      : {
          routeConfig: {
            name: route.cluster,
            validateClusters: false,
            virtualHosts: [
              {
                name: "inbound|http|0",
                domains: ["*"],
                routes: [
                  {
                    name: "default",
                    match: { prefix: "/" },
                    route: {
                      cluster: route.cluster,
                      timeout: { seconds: 0 },
                      maxStreamDuration: { maxStreamDuration: { seconds: 0 }, grpcTimeoutHeaderMax: { seconds: 0 } },
                    },
                    decorator: { operation: `${route.cluster}/*` },
                  },
                ],
              },
            ],
          },
        };
  return {
    name: "envoy.filters.network.http_connection_manager",
    typedConfig: pack(HttpConnectionManager, {
      statPrefix,
      codecType: HttpConnectionManager_CodecType.AUTO,
      ...routing,
      httpFilters: [{ name: "envoy.filters.http.router", typedConfig: pack(Router, {}) }],
      useRemoteAddress: false,
      forwardClientCertDetails: inbound ? 3 /* APPEND_FORWARD */ : undefined,
      setCurrentClientCertDetails: inbound ? { subject: true, dns: true, uri: true } : undefined,
      upgradeConfigs: [{ upgradeType: "websocket" }],
      streamIdleTimeout: { seconds: 0 },
      normalizePath: true,
      pathWithEscapedSlashesAction: 3 /* KEEP_UNCHANGED */,
    }),
  };
}

/** The inbound side's TLS: our certificate, peers verified against the mesh root, Istio's ALPN. */
function inboundTls(): FilterChain["transportSocket"] {
  return {
    name: "envoy.transport_sockets.tls",
    typedConfig: pack(DownstreamTlsContext, {
      commonTlsContext: {
        tlsParams: { tlsMinimumProtocolVersion: 3, tlsMaximumProtocolVersion: 4 },
        alpnProtocols: ["h2", "http/1.1"],
        tlsCertificateSdsSecretConfigs: [sdsSecret("default")],
        combinedValidationContext: { defaultValidationContext: {}, validationContextSdsSecretConfig: sdsSecret("ROOTCA") },
      },
      requireClientCertificate: true,
    }),
  };
}

const listenerFilter = {
  originalDst: { name: "envoy.filters.listener.original_dst", typedConfig: pack(OriginalDst, {}) },
  tls: { name: "envoy.filters.listener.tls_inspector", typedConfig: pack(TlsInspector, {}) },
  http: { name: "envoy.filters.listener.http_inspector", typedConfig: pack(HttpInspector, {}) },
};

function outboundListeners(push: PushContext): Listener[] {
  // One listener per port for HTTP (and sniffed) traffic, one per VIP and port for TCP.
  const httpPorts = new Map<number, MeshService[]>();
  const listeners = new Map<string, Listener>();
  for (const service of push.registry.services) {
    if (service.externalName) continue;
    for (const port of service.ports) {
      if (port.protocol === "UDP") continue;
      if (isHttp(port.protocol) || isSniffed(port.protocol)) {
        httpPorts.set(port.port, [...(httpPorts.get(port.port) ?? []), service]);
        if (!isSniffed(port.protocol) || !service.clusterIp) continue;
      }
      if (!service.clusterIp) continue; // headless TCP: through virtualOutbound's passthrough
      const name = `${service.clusterIp}_${port.port}`;
      if (listeners.has(name) || isSniffed(port.protocol)) continue;
      listeners.set(name, {
        name,
        address: { socketAddress: { address: service.clusterIp, portValue: port.port } },
        bindToPort: false,
        trafficDirection: OUTBOUND,
        filterChains: [
          {
            filters: [
              tcpProxy(outboundClusterName(port.port, service.hostname), outboundClusterName(port.port, service.hostname)),
            ],
          },
        ],
        continueOnListenerFiltersTimeout: true,
      });
    }
  }
  for (const [port, services] of httpPorts) {
    const name = `0.0.0.0_${port}`;
    const sniffed = services.some((s) => s.ports.some((p) => p.port === port && isSniffed(p.protocol)));
    const hcm = httpConnectionManager(`outbound_0.0.0.0_${port}`, { rds: String(port) }, false);
    const only = services.length === 1 ? services[0] : undefined;
    const tcpFallback = only ? outboundClusterName(port, only.hostname) : PASSTHROUGH_CLUSTER;
    listeners.set(name, {
      name,
      address: { socketAddress: { address: "0.0.0.0", portValue: port } },
      bindToPort: false,
      trafficDirection: OUTBOUND,
      listenerFilters: sniffed ? [listenerFilter.http] : [],
      filterChains: sniffed
        ? [
            { name: `${name}-http`, filterChainMatch: { applicationProtocols: HTTP_ALPN }, filters: [hcm] },
            { name: `${name}-tcp`, filters: [tcpProxy(tcpFallback, tcpFallback)] },
          ]
        : [{ filters: [hcm] }],
      continueOnListenerFiltersTimeout: true,
    });
  }
  return [...listeners.values()].sort((a, b) => ((a.name ?? "") < (b.name ?? "") ? -1 : 1));
}

function virtualOutbound(push: PushContext): Listener {
  const cluster = push.mesh.outboundTrafficPolicy === "ALLOW_ANY" ? PASSTHROUGH_CLUSTER : BLACKHOLE_CLUSTER;
  return {
    name: "virtualOutbound",
    address: { socketAddress: { address: "0.0.0.0", portValue: push.mesh.outboundPort } },
    useOriginalDst: true,
    trafficDirection: OUTBOUND,
    filterChains: [{ name: "virtualOutbound-catchall-tcp", filters: [tcpProxy(cluster, cluster)] }],
  };
}

/** Inbound chains for one destination port: mutual TLS and/or plaintext, per the mTLS mode. */
function inboundChains(port: number | undefined, protocol: Protocol, cluster: string, mode: MtlsMode): FilterChain[] {
  const http = isHttp(protocol);
  const sniffed = isSniffed(protocol);
  const label = port === undefined ? "virtualInbound" : `${cluster}`;
  const filters = (httpLike: boolean) =>
    httpLike ? [httpConnectionManager(`inbound_0.0.0.0_${port ?? 0}`, { cluster }, true)] : [tcpProxy(cluster, cluster)];
  const portMatch = port === undefined ? {} : { destinationPort: port };
  const chains: FilterChain[] = [];
  const variants = sniffed ? [true, false] : [http];
  if (mode !== "DISABLE")
    for (const httpLike of variants)
      chains.push({
        name: port === undefined ? `virtualInbound-catchall-${httpLike ? "http" : "tcp"}` : label,
        filterChainMatch: {
          ...portMatch,
          transportProtocol: "tls",
          applicationProtocols: sniffed
            ? httpLike
              ? ["istio-http/1.0", "istio-http/1.1", "istio-h2"]
              : ["istio-peer-exchange", "istio"]
            : ISTIO_ALPN,
        },
        filters: filters(httpLike),
        transportSocket: inboundTls(),
      });
  if (mode !== "STRICT")
    for (const httpLike of variants)
      chains.push({
        name: port === undefined ? `virtualInbound-catchall-${httpLike ? "http" : "tcp"}` : label,
        filterChainMatch: {
          ...portMatch,
          transportProtocol: "raw_buffer",
          ...(sniffed ? { applicationProtocols: httpLike ? HTTP_ALPN : [] } : {}),
        },
        filters: filters(httpLike),
      });
  return chains;
}

function virtualInbound(push: PushContext, proxy: MeshProxy, mode: (port: number) => MtlsMode): Listener {
  const chains: FilterChain[] = [];
  for (const [targetPort, port] of inboundPorts(push, proxy))
    chains.push(...inboundChains(targetPort, port.protocol, inboundClusterName(targetPort), mode(targetPort)));
  chains.push(...inboundChains(undefined, "UnsupportedProtocol", INBOUND_PASSTHROUGH_CLUSTER, mode(0)));
  return {
    name: "virtualInbound",
    address: { socketAddress: { address: "0.0.0.0", portValue: push.mesh.inboundPort } },
    trafficDirection: INBOUND,
    listenerFilters: [listenerFilter.originalDst, listenerFilter.tls, listenerFilter.http],
    listenerFiltersTimeout: { seconds: 0 },
    continueOnListenerFiltersTimeout: true,
    filterChains: chains,
  };
}

/** Every listener a sidecar gets; `mode` is the mTLS mode for an inbound port (PeerAuthentication). */
export function sidecarListeners(
  push: PushContext,
  proxy: MeshProxy,
  mode: (port: number) => MtlsMode = () => "PERMISSIVE",
): Listener[] {
  return [...outboundListeners(push), virtualOutbound(push), virtualInbound(push, proxy, mode)];
}
