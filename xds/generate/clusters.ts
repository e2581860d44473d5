// CDS for a sidecar: an outbound cluster per Service port (EDS; the headless Service's sent to
// the original destination), with automatic mutual TLS towards endpoints labelled
// tlsMode=istio; an inbound cluster per port the proxy's own Services target; and the fixed
// BlackHole, Passthrough and InboundPassthrough clusters. Shapes follow upstream's
// ClusterBuilder; xds/parity compares them with upstream's output.
import {
  type Cluster,
  Cluster_DiscoveryType,
  Cluster_LbPolicy,
  type Cluster_TransportSocketMatch,
} from "../envoy/third_party/envoy/config/cluster/v3/cluster.ts";
import type { TransportSocket } from "../envoy/third_party/envoy/config/core/v3/base.ts";
import {
  ApiConfigSource_ApiType,
  ApiVersion,
  type ConfigSource,
} from "../envoy/third_party/envoy/config/core/v3/config_source.ts";
import { RawBuffer } from "../envoy/third_party/envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.ts";
import {
  SubjectAltNameMatcher_SanType,
  TlsParameters_TlsProtocol,
} from "../envoy/third_party/envoy/extensions/transport_sockets/tls/v3/common.ts";
import type { SdsSecretConfig } from "../envoy/third_party/envoy/extensions/transport_sockets/tls/v3/secret.ts";
import { UpstreamTlsContext } from "../envoy/third_party/envoy/extensions/transport_sockets/tls/v3/tls.ts";
import { HttpProtocolOptions } from "../envoy/third_party/envoy/extensions/upstreams/http/v3/http_protocol_options.ts";
import { TypedStruct } from "../envoy/third_party/udpa/type/v1/typed_struct.ts";
import { pack } from "../envoy/types.ts";
import type { MeshProxy } from "../proxy.ts";
import { isHttp2, isSniffed } from "../registry/protocol.ts";
import type { MeshService, ServicePort } from "../registry/registry.ts";
import {
  BLACKHOLE_CLUSTER,
  INBOUND_PASSTHROUGH_CLUSTER,
  inboundClusterName,
  inboundPorts,
  outboundClusterName,
  PASSTHROUGH_CLUSTER,
  type PushContext,
  SDS_CLUSTER,
  serviceTargets,
} from "./context.ts";

const HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
const MAX = 4294967295;

export const ADS_CONFIG: ConfigSource = { ads: {}, initialFetchTimeout: { seconds: 0 }, resourceApiVersion: ApiVersion.V3 };

export function sdsSecret(name: "default" | "ROOTCA"): SdsSecretConfig {
  return {
    name,
    sdsConfig: {
      apiConfigSource: {
        apiType: ApiConfigSource_ApiType.GRPC,
        setNodeOnFirstMessageOnly: true,
        transportApiVersion: ApiVersion.V3,
        grpcServices: [{ envoyGrpc: { clusterName: SDS_CLUSTER } }],
      },
      initialFetchTimeout: { seconds: 0 },
      resourceApiVersion: ApiVersion.V3,
    },
  };
}

export const RAW_BUFFER: TransportSocket = { name: "envoy.transport_sockets.raw_buffer", typedConfig: pack(RawBuffer, {}) };

/** Istio mutual TLS to a sidecar: our certificate, the mesh root, the peer's SPIFFE identities, Istio's ALPN. */
function istioMutualTls(sni: string, push: PushContext, serviceAccounts: string[], http2: boolean): TransportSocket {
  const td = push.mesh.trustDomain;
  return {
    name: "envoy.transport_sockets.tls",
    typedConfig: pack(UpstreamTlsContext, {
      commonTlsContext: {
        tlsParams: {
          tlsMinimumProtocolVersion: TlsParameters_TlsProtocol.TLSv1_2,
          tlsMaximumProtocolVersion: TlsParameters_TlsProtocol.TLSv1_3,
        },
        tlsCertificateSdsSecretConfigs: [sdsSecret("default")],
        combinedValidationContext: {
          defaultValidationContext: {
            matchTypedSubjectAltNames: serviceAccounts.map((sa) => ({
              sanType: SubjectAltNameMatcher_SanType.URI,
              matcher: { exact: `spiffe://${td}/ns/${sa}` },
            })),
          },
          validationContextSdsSecretConfig: sdsSecret("ROOTCA"),
        },
        alpnProtocols: http2 ? ["istio-peer-exchange", "istio", "h2"] : ["istio-peer-exchange", "istio"],
      },
      sni,
    }),
  };
}

/** HTTP/2 to gRPC and HTTP2 ports; whatever the client spoke to sniffed ones; HTTP/1 otherwise. */
function protocolOptions(port: ServicePort): Cluster["typedExtensionProtocolOptions"] {
  if (isHttp2(port.protocol))
    return { [HTTP_PROTOCOL_OPTIONS]: pack(HttpProtocolOptions, { explicitHttpConfig: { http2ProtocolOptions: {} } }) };
  if (isSniffed(port.protocol))
    return {
      [HTTP_PROTOCOL_OPTIONS]: pack(HttpProtocolOptions, {
        useDownstreamProtocolConfig: { httpProtocolOptions: {}, http2ProtocolOptions: {} },
      }),
    };
  return undefined;
}

/**
 * Istio's metadata exchange on upstream connections (its Envoy's filter, configured through a
 * TypedStruct): only for proxies running Istio's Envoy.
 */
function metadataExchange(proxy: MeshProxy): Cluster["filters"] {
  if (!proxy.istioFilters) return undefined;
  return [
    {
      name: "istio.metadata_exchange",
      typedConfig: pack(TypedStruct, {
        typeUrl: "type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange",
        value: { enable_discovery: true, protocol: "istio-peer-exchange" },
      }),
    },
  ];
}

/** `<name>;`: upstream's delimited stats prefix, so stats tag extraction can split the name off. */
const statName = (name: string) => `${name};`;

const circuitBreakers = {
  thresholds: [{ maxConnections: MAX, maxPendingRequests: MAX, maxRequests: MAX, maxRetries: MAX, trackRemaining: true }],
};

const serviceRef = (s: MeshService) => ({ host: s.hostname, name: s.name, namespace: s.namespace });

/** Inbound and passthrough traffic leaves from 127.0.0.6, which iptables does not send back to Envoy. */
const INBOUND_BIND = { sourceAddress: { address: "127.0.0.6", portValue: 0 } };

function outboundCluster(push: PushContext, proxy: MeshProxy, service: MeshService, port: ServicePort): Cluster {
  const name = outboundClusterName(port.port, service.hostname);
  const headless = service.clusterIp === undefined;
  const cluster: Cluster = {
    name,
    altStatName: statName(name),
    type: headless ? Cluster_DiscoveryType.ORIGINAL_DST : Cluster_DiscoveryType.EDS,
    connectTimeout: { seconds: push.mesh.connectTimeoutSeconds },
    lbPolicy: headless ? Cluster_LbPolicy.CLUSTER_PROVIDED : Cluster_LbPolicy.LEAST_REQUEST,
    circuitBreakers,
    commonLbConfig: {},
    metadata: { filterMetadata: { istio: { services: [serviceRef(service)] } } },
    typedExtensionProtocolOptions: protocolOptions(port),
    filters: metadataExchange(proxy),
  };
  if (!headless) {
    cluster.edsClusterConfig = { edsConfig: ADS_CONFIG, serviceName: name };
    const accounts = serviceAccountsOf(push, service);
    const sni = `outbound_.${port.port}_._.${service.hostname}`;
    const matches: Cluster_TransportSocketMatch[] = [
      {
        name: "tlsMode-istio",
        match: { tlsMode: "istio" },
        transportSocket: istioMutualTls(sni, push, accounts, isHttp2(port.protocol)),
      },
      { name: "tlsMode-disabled", match: {}, transportSocket: RAW_BUFFER },
    ];
    cluster.transportSocketMatches = matches;
  }
  return cluster;
}

/** `<namespace>/sa/<name>` of every ServiceAccount running the Service's endpoints, sorted. */
function serviceAccountsOf(push: PushContext, service: MeshService): string[] {
  const accounts = new Set<string>();
  for (const ep of push.registry.endpoints.get(service.hostname) ?? [])
    if (ep.serviceAccount) accounts.add(`${ep.namespace}/sa/${ep.serviceAccount}`);
  return [...accounts].sort();
}

function inboundCluster(push: PushContext, proxy: MeshProxy, targetPort: number, port: ServicePort): Cluster {
  const name = inboundClusterName(targetPort);
  const services = serviceTargets(push, proxy).filter((s) =>
    (push.registry.endpoints.get(s.hostname) ?? []).some(
      (ep) => ep.port === targetPort && proxy.ipAddresses.includes(ep.address),
    ),
  );
  return {
    name,
    altStatName: statName(name),
    type: Cluster_DiscoveryType.ORIGINAL_DST,
    connectTimeout: { seconds: push.mesh.connectTimeoutSeconds },
    lbPolicy: Cluster_LbPolicy.CLUSTER_PROVIDED,
    circuitBreakers,
    // The one host is the workload itself: never cleaned up.
    cleanupInterval: { seconds: 9223372035 },
    upstreamBindConfig: INBOUND_BIND,
    commonLbConfig: {},
    typedExtensionProtocolOptions: protocolOptions(port),
    metadata: { filterMetadata: { istio: { services: services.map(serviceRef) } } },
  };
}

function passthrough(push: PushContext, name: string): Cluster {
  return {
    name,
    altStatName: statName(PASSTHROUGH_CLUSTER),
    type: Cluster_DiscoveryType.ORIGINAL_DST,
    connectTimeout: { seconds: push.mesh.connectTimeoutSeconds },
    lbPolicy: Cluster_LbPolicy.CLUSTER_PROVIDED,
    circuitBreakers,
    typedExtensionProtocolOptions: {
      [HTTP_PROTOCOL_OPTIONS]: pack(HttpProtocolOptions, {
        commonHttpProtocolOptions: { idleTimeout: { seconds: 300 } },
        useDownstreamProtocolConfig: { httpProtocolOptions: {}, http2ProtocolOptions: {} },
      }),
    },
  };
}

export function sidecarClusters(push: PushContext, proxy: MeshProxy): Cluster[] {
  const clusters: Cluster[] = [];
  for (const service of push.registry.services) {
    if (service.externalName) continue;
    for (const port of service.ports) if (port.protocol !== "UDP") clusters.push(outboundCluster(push, proxy, service, port));
  }
  // Inbound: one per port the proxy's Services send to it (the endpoint's port).
  for (const [targetPort, port] of inboundPorts(push, proxy)) clusters.push(inboundCluster(push, proxy, targetPort, port));
  clusters.push(
    {
      name: BLACKHOLE_CLUSTER,
      altStatName: statName(BLACKHOLE_CLUSTER),
      type: Cluster_DiscoveryType.STATIC,
      connectTimeout: { seconds: push.mesh.connectTimeoutSeconds },
    },
    { ...passthrough(push, PASSTHROUGH_CLUSTER), filters: metadataExchange(proxy) },
    { ...passthrough(push, INBOUND_PASSTHROUGH_CLUSTER), upstreamBindConfig: INBOUND_BIND },
  );
  return clusters;
}
