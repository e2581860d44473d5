// CDS for a sidecar: an outbound cluster per service port, by the service's resolution: EDS
// (STATIC), the original destination (NONE: headless Services, ServiceEntries without
// endpoints), or Envoy's own DNS with the endpoints inline (DNS: STRICT_DNS, DNS_ROUND_ROBIN:
// LOGICAL_DNS); automatic mutual TLS towards endpoints labelled tlsMode=istio, except to
// MESH_EXTERNAL entries; an inbound cluster per port the proxy's own Services target; and the
// fixed BlackHole, Passthrough and InboundPassthrough clusters. Shapes follow upstream's
// ClusterBuilder; xds/parity compares them with upstream's output.
import {
  type Cluster,
  Cluster_DiscoveryType,
  Cluster_DnsLookupFamily,
  Cluster_LbPolicy,
  type Cluster_TransportSocketMatch,
} from "../envoy/third_party/envoy/config/cluster/v3/cluster.ts";
import type { TransportSocket } from "../envoy/third_party/envoy/config/core/v3/base.ts";
import {
  ApiConfigSource_ApiType,
  ApiVersion,
  type ConfigSource,
} from "../envoy/third_party/envoy/config/core/v3/config_source.ts";
import { CaresDnsResolverConfig } from "../envoy/third_party/envoy/extensions/network/dns_resolver/cares/v3/cares_dns_resolver.ts";
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
  servicesServing,
} from "./context.ts";
import {
  type AppliedRule,
  applyTrafficPolicy,
  type ClientTlsSettings,
  configPath,
  defaultThresholds,
  destinationRuleFor,
  portPolicy,
  type Subset,
  subsetPolicy,
} from "./destination-rule.ts";
import { clusterLoadAssignment, istioTlsEndpoint, parseClusterName } from "./endpoints.ts";
import { applyLocality, applyLocalityCluster, changesEndpoints, localityKey, localityPolicy, proxyLocality } from "./locality.ts";
import { type IngressPort, ingressPorts, sidecarScope } from "./sidecar-scope.ts";

const HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

export const ADS_CONFIG: ConfigSource = { ads: {}, initialFetchTimeout: { seconds: 0 }, resourceApiVersion: ApiVersion.V3 };

/** An SDS secret from the agent: `default`, `ROOTCA`, or files it reads (`file-cert:<cert>~<key>`, `file-root:<ca>`). */
export function sdsSecret(name: string): SdsSecretConfig {
  return {
    name,
    sdsConfig: {
      apiConfigSource: {
        apiType: ApiConfigSource_ApiType.GRPC,
        setNodeOnFirstMessageOnly: true,
        transportApiVersion: ApiVersion.V3,
        grpcServices: [{ envoyGrpc: { clusterName: SDS_CLUSTER } }],
      },
      // The workload's own certificate and root: wait for them however long it takes (upstream's choice).
      ...(name === "default" || name === "ROOTCA" ? { initialFetchTimeout: { seconds: 0 } } : {}),
      resourceApiVersion: ApiVersion.V3,
    },
  };
}

export const RAW_BUFFER: TransportSocket = { name: "envoy.transport_sockets.raw_buffer", typedConfig: pack(RawBuffer, {}) };

const TLS_PARAMS = {
  tlsMinimumProtocolVersion: TlsParameters_TlsProtocol.TLSv1_2,
  tlsMaximumProtocolVersion: TlsParameters_TlsProtocol.TLSv1_3,
};

const spiffe = (push: PushContext, accounts: string[]) => accounts.map((sa) => `spiffe://${push.mesh.trustDomain}/ns/${sa}`);

/** Istio mutual TLS to a sidecar: our certificate, the mesh root, the peer's SPIFFE identities, Istio's ALPN. */
function istioMutualTls(sni: string, identities: string[], http2: boolean): TransportSocket {
  return {
    name: "envoy.transport_sockets.tls",
    typedConfig: pack(UpstreamTlsContext, {
      commonTlsContext: {
        tlsParams: TLS_PARAMS,
        tlsCertificateSdsSecretConfigs: [sdsSecret("default")],
        combinedValidationContext: {
          defaultValidationContext: {
            matchTypedSubjectAltNames: identities.map((id) => ({
              sanType: SubjectAltNameMatcher_SanType.URI,
              matcher: { exact: id },
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

/**
 * TLS a DestinationRule originates (SIMPLE, MUTUAL) with files in the proxy's container served
 * by its agent over SDS, as upstream's constructUpstreamTLS; undefined for a `credentialName`,
 * which sidecars do not get (upstream serves those only to gateways and selected workloads).
 */
function originatedTls(tls: ClientTlsSettings, options: HttpProtocolOptions, http2: boolean): TransportSocket | undefined {
  if (tls.credentialName && !tls.credentialName.startsWith("configmap://")) return undefined;
  const mutual = tls.mode === "MUTUAL";
  if (mutual && (!tls.clientCertificate || !tls.privateKey)) return undefined;
  const sans = tls.subjectAltNames ?? [];
  if (!tls.sni) {
    options.upstreamHttpProtocolOptions = {
      ...options.upstreamHttpProtocolOptions,
      autoSni: true,
      ...(sans.length === 0 && !tls.insecureSkipVerify ? { autoSanValidation: true } : {}),
    };
  }
  const context: UpstreamTlsContext = {
    commonTlsContext: {
      tlsParams: TLS_PARAMS,
      ...(mutual ? { tlsCertificateSdsSecretConfigs: [sdsSecret(`file-cert:${tls.clientCertificate}~${tls.privateKey}`)] } : {}),
      ...(tls.insecureSkipVerify
        ? { validationContext: {} }
        : {
            combinedValidationContext: {
              defaultValidationContext: {
                // The user's names, of any SAN type: upstream's (deprecated) untyped matcher.
                matchSubjectAltNames: sans.map((exact) => ({ exact })),
                ...(tls.caCrl ? { crl: { filename: tls.caCrl } } : {}),
              },
              validationContextSdsSecretConfig: sdsSecret(`file-root:${tls.caCertificates || "system"}`),
            },
          }),
      ...(http2 ? { alpnProtocols: ["h2"] } : {}),
    },
    sni: tls.sni ?? "",
  };
  return { name: "envoy.transport_sockets.tls", typedConfig: pack(UpstreamTlsContext, context) };
}

/** HTTP/2 to gRPC and HTTP2 ports; whatever the client spoke to sniffed ones; HTTP/1 otherwise. */
function httpOptions(port: ServicePort): HttpProtocolOptions {
  if (isHttp2(port.protocol)) return { explicitHttpConfig: { http2ProtocolOptions: {} } };
  if (isSniffed(port.protocol)) return { useDownstreamProtocolConfig: { httpProtocolOptions: {}, http2ProtocolOptions: {} } };
  return {};
}

/** The options as the cluster carries them (none when empty). */
function packOptions(options: HttpProtocolOptions): Cluster["typedExtensionProtocolOptions"] {
  if (Object.keys(options).length === 0) return undefined;
  // Envoy requires an upstream protocol once the options are there: HTTP/1 unless one was chosen.
  if (!options.explicitHttpConfig && !options.useDownstreamProtocolConfig && !options.autoConfig)
    options.explicitHttpConfig = { httpProtocolOptions: {} };
  return { [HTTP_PROTOCOL_OPTIONS]: pack(HttpProtocolOptions, options) };
}

const protocolOptions = (port: ServicePort) => packOptions(httpOptions(port));

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
/** A cluster's alt_stat_name: its name and a `;`, upstream's DelimitedStatsPrefix. */
export const statName = (name: string) => `${name};`;

const circuitBreakers = { thresholds: [defaultThresholds()] };

const serviceRef = (s: MeshService) => ({ host: s.hostname, name: s.name, namespace: s.namespace });

/** Inbound and passthrough traffic leaves from 127.0.0.6, which iptables does not send back to Envoy. */
const INBOUND_BIND = { sourceAddress: { address: "127.0.0.6", portValue: 0 } };

const DISCOVERY_TYPE = {
  STATIC: Cluster_DiscoveryType.EDS,
  NONE: Cluster_DiscoveryType.ORIGINAL_DST,
  DNS: Cluster_DiscoveryType.STRICT_DNS,
  DNS_ROUND_ROBIN: Cluster_DiscoveryType.LOGICAL_DNS,
} as const;

/** Upstream's settings for clusters Envoy resolves itself (c-ares, IPv4, a minute, the record's TTL). */
const DNS_SETTINGS: Partial<Cluster> = {
  dnsRefreshRate: { seconds: 60 },
  dnsJitter: { nanos: 100_000_000 },
  respectDnsTtl: true,
  dnsLookupFamily: Cluster_DnsLookupFamily.V4_ONLY,
  typedDnsResolverConfig: {
    name: "envoy.network.dns_resolver.cares",
    typedConfig: pack(CaresDnsResolverConfig, { udpMaxQueries: 100 }),
  },
};

/**
 * The outbound cluster of a service port, or of one subset of it, with the DestinationRule that
 * applies (its traffic policy, the subset's over it) as upstream's ClusterBuilder makes it.
 */
function outboundCluster(
  push: PushContext,
  proxy: MeshProxy,
  service: MeshService,
  port: ServicePort,
  applied?: AppliedRule,
  subset?: Subset,
): Cluster {
  const subsetName = subset?.name ?? "";
  const name = outboundClusterName(port.port, service.hostname, subsetName);
  const istio: Record<string, unknown> = {
    ...(applied ? { config: configPath(applied.rule) } : {}),
    ...(service.meshExternal ? { external: true } : {}),
    services: [serviceRef(service)],
    ...(subset ? { subset: subsetName } : {}),
  };
  const cluster: Cluster = {
    name,
    altStatName: statName(name),
    type: DISCOVERY_TYPE[service.resolution],
    connectTimeout: { seconds: push.mesh.connectTimeoutSeconds },
    lbPolicy: Cluster_LbPolicy.LEAST_REQUEST,
    circuitBreakers,
    commonLbConfig: {},
    metadata: { filterMetadata: { istio } },
    filters: metadataExchange(proxy),
  };
  if (service.resolution === "DNS" || service.resolution === "DNS_ROUND_ROBIN") {
    Object.assign(cluster, DNS_SETTINGS);
    cluster.loadAssignment = clusterLoadAssignment(push, name, subset?.labels);
  }
  const policy = subset
    ? subsetPolicy(applied?.trafficPolicy, subset.trafficPolicy, port.port)
    : portPolicy(applied?.trafficPolicy, port.port).policy;
  const options = httpOptions(port);
  applyTrafficPolicy(cluster, options, policy);
  const locality = localityPolicy(policy, push.mesh.localityLbSetting);
  applyLocalityCluster(cluster, locality);
  // Envoy resolves these names itself: the load assignment in the cluster is ranked here.
  if (cluster.loadAssignment && locality && changesEndpoints(locality))
    cluster.loadAssignment = applyLocality(cluster.loadAssignment, proxyLocality(push, proxy), locality);
  if (cluster.type === Cluster_DiscoveryType.EDS) cluster.edsClusterConfig = { edsConfig: ADS_CONFIG, serviceName: name };
  const http2 = options.explicitHttpConfig?.http2ProtocolOptions !== undefined;
  const sni = `outbound_.${port.port}_.${subsetName}_.${service.hostname}`;
  const tls = policy?.tls;
  if (tls?.mode === "SIMPLE" || tls?.mode === "MUTUAL") {
    cluster.transportSocket = originatedTls(tls, options, http2);
    istio.alpn_override = "false";
  } else if (tls?.mode === "ISTIO_MUTUAL") {
    const identities = tls.subjectAltNames ?? spiffe(push, serviceAccountsOf(push, service));
    cluster.transportSocket = istioMutualTls(tls.sni || sni, identities, http2);
  } else if (!tls && !service.meshExternal) {
    const identities = spiffe(push, serviceAccountsOf(push, service));
    if (cluster.type === Cluster_DiscoveryType.ORIGINAL_DST) {
      // No endpoint metadata to match on at the original destination: mutual TLS when every
      // endpoint of the port takes it (a headless Service of injected pods), else plaintext.
      const endpoints = (push.registry.endpoints.get(service.hostname) ?? []).filter((ep) => ep.servicePortName === port.name);
      if (endpoints.length > 0 && endpoints.every((ep) => istioTlsEndpoint(push, ep)))
        cluster.transportSocket = istioMutualTls(sni, identities, http2);
    } else {
      const matches: Cluster_TransportSocketMatch[] = [
        { name: "tlsMode-istio", match: { tlsMode: "istio" }, transportSocket: istioMutualTls(sni, identities, http2) },
        { name: "tlsMode-disabled", match: {}, transportSocket: RAW_BUFFER },
      ];
      cluster.transportSocketMatches = matches;
    }
  }
  cluster.typedExtensionProtocolOptions = packOptions(options);
  return cluster;
}

/** The SPIFFE identities of the ServiceAccounts running a Service's endpoints (what its clients verify). */
export function serviceIdentities(push: PushContext, service: MeshService): string[] {
  return spiffe(push, serviceAccountsOf(push, service));
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
  const services = servicesServing(push, proxy, targetPort);
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

/** A Sidecar ingress port's cluster: the workload's address as the Sidecar names it. */
function ingressCluster(push: PushContext, proxy: MeshProxy, port: IngressPort): Cluster {
  const services = servicesServing(push, proxy, port.port);
  const name = inboundClusterName(port.port);
  const loopback = port.endpoint.address.startsWith("127.") || port.endpoint.address === "::1";
  return {
    name,
    altStatName: statName(name),
    type: Cluster_DiscoveryType.STATIC,
    connectTimeout: { seconds: push.mesh.connectTimeoutSeconds },
    loadAssignment: {
      clusterName: name,
      endpoints: [
        {
          lbEndpoints: [
            { endpoint: { address: { socketAddress: { address: port.endpoint.address, portValue: port.endpoint.port } } } },
          ],
        },
      ],
    },
    circuitBreakers,
    // To the pod's own address, from 127.0.0.6 so the redirect rules let it through.
    ...(loopback ? {} : { upstreamBindConfig: INBOUND_BIND }),
    commonLbConfig: {},
    typedExtensionProtocolOptions: protocolOptions({ name: "", port: port.port, protocol: port.protocol }),
    ...(services.length > 0 ? { metadata: { filterMetadata: { istio: { services: services.map(serviceRef) } } } } : {}),
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

/**
 * One cluster of a sidecar's CDS, not built yet: `shared` ones (outbound clusters) are the same
 * for every proxy with the same `istioFilters`, so the caller may build each once per push.
 */
export interface ClusterEntry {
  name: string;
  shared: boolean;
  /** What, besides the name and the proxy's Envoy build, a shared cluster depends on (the DestinationRules it applies). */
  cacheKey?: string;
  build: () => Cluster;
}

/** The proxy's clusters; with `only`, just the outbound ones of those names (a partial push). */
export function sidecarClusterEntries(push: PushContext, proxy: MeshProxy, only?: ReadonlySet<string>): ClusterEntry[] {
  const entries = outboundClusterEntries(push, proxy, only);
  if (only) return entries;
  // Inbound: one per port of the Sidecar's ingress listeners, else per port the proxy's Services
  // send to it (the endpoint's port).
  const ingress = ingressPorts(push, proxy);
  if (ingress)
    for (const port of ingress) {
      const name = inboundClusterName(port.port);
      entries.push({ name, shared: false, build: () => ingressCluster(push, proxy, port) });
    }
  else
    for (const [targetPort, port] of inboundPorts(push, proxy)) {
      const name = inboundClusterName(targetPort);
      entries.push({ name, shared: false, build: () => inboundCluster(push, proxy, targetPort, port) });
    }
  for (const cluster of fixedClusters(push, proxy))
    entries.push({ name: cluster.name ?? "", shared: false, build: () => cluster });
  return entries;
}

/** A gateway's clusters: the outbound ones (a gateway has no inbound side) and the BlackHole. */
export function gatewayClusterEntries(push: PushContext, proxy: MeshProxy, only?: ReadonlySet<string>): ClusterEntry[] {
  const entries = outboundClusterEntries(push, proxy, only);
  if (only) return entries;
  const blackHole = blackHoleCluster(push);
  entries.push({ name: BLACKHOLE_CLUSTER, shared: false, build: () => blackHole });
  return entries;
}

/** Every visible service's clusters, per port and subset; with `only`, those of these names. */
function outboundClusterEntries(push: PushContext, proxy: MeshProxy, only?: ReadonlySet<string>): ClusterEntry[] {
  const entries: ClusterEntry[] = [];
  const hosts = only && new Set([...only].map((name) => parseClusterName(name)?.hostname));
  const visible = sidecarScope(push, proxy).services;
  const services = hosts ? visible.filter((s) => hosts.has(s.hostname)) : visible;
  for (const service of services) {
    if (service.externalName) continue;
    const applied = destinationRuleFor(push, proxy, service);
    // Shared between proxies that see the same rules (or none); a cluster that carries its
    // endpoints (DNS) also between proxies of one locality.
    const dns = service.resolution === "DNS" || service.resolution === "DNS_ROUND_ROBIN";
    const rules = `${applied ? applied.from.join(",") : ""}${dns ? `@${localityKey(proxyLocality(push, proxy))}` : ""}`;
    for (const port of service.ports) {
      if (port.protocol === "UDP") continue;
      entries.push({
        name: outboundClusterName(port.port, service.hostname),
        shared: true,
        cacheKey: rules,
        build: () => outboundCluster(push, proxy, service, port, applied),
      });
      for (const subset of applied?.subsets ?? [])
        entries.push({
          name: outboundClusterName(port.port, service.hostname, subset.name ?? ""),
          shared: true,
          cacheKey: rules,
          build: () => outboundCluster(push, proxy, service, port, applied, subset),
        });
    }
  }
  return entries;
}

export function sidecarClusters(push: PushContext, proxy: MeshProxy): Cluster[] {
  return sidecarClusterEntries(push, proxy).map((e) => e.build());
}

const blackHoleCluster = (push: PushContext): Cluster => ({
  name: BLACKHOLE_CLUSTER,
  altStatName: statName(BLACKHOLE_CLUSTER),
  type: Cluster_DiscoveryType.STATIC,
  connectTimeout: { seconds: push.mesh.connectTimeoutSeconds },
});

/** BlackHole, Passthrough and InboundPassthrough. */
function fixedClusters(push: PushContext, proxy: MeshProxy): Cluster[] {
  const clusters: Cluster[] = [];
  clusters.push(
    blackHoleCluster(push),
    { ...passthrough(push, PASSTHROUGH_CLUSTER), filters: metadataExchange(proxy) },
    { ...passthrough(push, INBOUND_PASSTHROUGH_CLUSTER), upstreamBindConfig: INBOUND_BIND },
  );
  return clusters;
}
