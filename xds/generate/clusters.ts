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
import { ApiVersion, type ConfigSource } from "../envoy/third_party/envoy/config/core/v3/config_source.ts";
import { RawBuffer } from "../envoy/third_party/envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.ts";
import { SubjectAltNameMatcher_SanType } from "../envoy/third_party/envoy/extensions/transport_sockets/tls/v3/common.ts";
import type { SdsSecretConfig } from "../envoy/third_party/envoy/extensions/transport_sockets/tls/v3/secret.ts";
import { UpstreamTlsContext } from "../envoy/third_party/envoy/extensions/transport_sockets/tls/v3/tls.ts";
import { HttpProtocolOptions } from "../envoy/third_party/envoy/extensions/upstreams/http/v3/http_protocol_options.ts";
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
} from "./context.ts";

const HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
const MAX = 4294967295;

export const ADS_CONFIG: ConfigSource = { ads: {}, initialFetchTimeout: { seconds: 0 }, resourceApiVersion: ApiVersion.V3 };

export function sdsSecret(name: "default" | "ROOTCA"): SdsSecretConfig {
  return {
    name,
    sdsConfig: {
      apiConfigSource: {
        apiType: 2 /* GRPC */,
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
        tlsParams: { tlsMinimumProtocolVersion: 3 /* TLSv1_2 */, tlsMaximumProtocolVersion: 4 /* TLSv1_3 */ },
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

function protocolOptions(port: ServicePort): Cluster["typedExtensionProtocolOptions"] {
  const common = { commonHttpProtocolOptions: { idleTimeout: { seconds: 3600 } } };
  if (isHttp2(port.protocol))
    return {
      [HTTP_PROTOCOL_OPTIONS]: pack(HttpProtocolOptions, {
        ...common,
        explicitHttpConfig: { http2ProtocolOptions: { maxConcurrentStreams: 1073741824 } },
      }),
    };
  if (isSniffed(port.protocol))
    return {
      [HTTP_PROTOCOL_OPTIONS]: pack(HttpProtocolOptions, {
        ...common,
        useDownstreamProtocolConfig: { httpProtocolOptions: {}, http2ProtocolOptions: { maxConcurrentStreams: 1073741824 } },
      }),
    };
  return undefined;
}

const circuitBreakers = {
  thresholds: [{ maxConnections: MAX, maxPendingRequests: MAX, maxRequests: MAX, maxRetries: MAX, trackRemaining: true }],
};

function outboundCluster(push: PushContext, service: MeshService, port: ServicePort): Cluster {
  const name = outboundClusterName(port.port, service.hostname);
  const headless = service.clusterIp === undefined;
  const cluster: Cluster = {
    name,
    type: headless ? Cluster_DiscoveryType.ORIGINAL_DST : Cluster_DiscoveryType.EDS,
    connectTimeout: { seconds: push.mesh.connectTimeoutSeconds },
    lbPolicy: headless ? Cluster_LbPolicy.CLUSTER_PROVIDED : Cluster_LbPolicy.LEAST_REQUEST,
    circuitBreakers,
    commonLbConfig: {},
    metadata: {
      filterMetadata: {
        istio: {
          services: [{ host: service.hostname, name: service.name, namespace: service.namespace }],
          default_original_port: port.port,
        },
      },
    },
    typedExtensionProtocolOptions: protocolOptions(port),
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

function passthrough(push: PushContext, name: string): Cluster {
  return {
    name,
    type: Cluster_DiscoveryType.ORIGINAL_DST,
    connectTimeout: { seconds: push.mesh.connectTimeoutSeconds },
    lbPolicy: Cluster_LbPolicy.CLUSTER_PROVIDED,
    circuitBreakers,
    typedExtensionProtocolOptions: {
      [HTTP_PROTOCOL_OPTIONS]: pack(HttpProtocolOptions, {
        commonHttpProtocolOptions: { idleTimeout: { seconds: 3600 } },
        useDownstreamProtocolConfig: { httpProtocolOptions: {}, http2ProtocolOptions: {} },
      }),
    },
  };
}

export function sidecarClusters(push: PushContext, proxy: MeshProxy): Cluster[] {
  const clusters: Cluster[] = [];
  for (const service of push.registry.services) {
    if (service.externalName) continue;
    for (const port of service.ports) if (port.protocol !== "UDP") clusters.push(outboundCluster(push, service, port));
  }
  // Inbound: one per port the proxy's Services send to it (the endpoint's port).
  for (const [targetPort, port] of inboundPorts(push, proxy)) {
    clusters.push({
      ...passthrough(push, inboundClusterName(targetPort)),
      typedExtensionProtocolOptions: protocolOptions(port),
      upstreamBindConfig: { sourceAddress: { address: "127.0.0.6", portValue: 0 } },
      metadata: { filterMetadata: { istio: { services: [] } } },
    });
  }
  clusters.push(
    { name: BLACKHOLE_CLUSTER, type: Cluster_DiscoveryType.STATIC, connectTimeout: { seconds: push.mesh.connectTimeoutSeconds } },
    passthrough(push, PASSTHROUGH_CLUSTER),
    {
      ...passthrough(push, INBOUND_PASSTHROUGH_CLUSTER),
      upstreamBindConfig: { sourceAddress: { address: "127.0.0.6", portValue: 0 } },
    },
  );
  return clusters;
}
