// DestinationRules (networking.istio.io): which rule applies to a host for a proxy, and what
// its traffic policy does to the outbound clusters of that host, as upstream decides it:
// - lookup: the rules of the proxy's own namespace, else those the Service's namespace exports
//   to the proxy's, else those the root namespace exports; in each, the most specific host
//   (exact, then the longest wildcard); several rules for one host in one namespace are merged
//   when exported alike (subsets appended, the first subset of a name wins, the oldest rule's
//   traffic policy);
// - a port's `portLevelSettings` replace the rule's policy whole (no field inherited), and a
//   subset's policy overrides the rule's component by component;
// - connection pool (circuit breaker thresholds, connect timeout, HTTP idle timeout, requests
//   per connection, TCP keepalive, HTTP/2 upgrade), outlier detection, load balancer (simple,
//   consistent hash, warm-up) as upstream's applyTrafficPolicy sets them. TLS settings are
//   turned into transport sockets by clusters.ts.
// - a rule with a workloadSelector applies, in its namespace only, to the proxies it selects,
//   ahead of the namespace's rule without one (never exported);
// Locality load balancing: locality.ts.
import type { CircuitBreakers_Thresholds } from "../envoy/third_party/envoy/config/cluster/v3/circuit_breaker.ts";
import type { Cluster, Cluster_SlowStartConfig } from "../envoy/third_party/envoy/config/cluster/v3/cluster.ts";
import { Cluster_DiscoveryType, Cluster_LbPolicy } from "../envoy/third_party/envoy/config/cluster/v3/cluster.ts";
import type { RouteAction_HashPolicy } from "../envoy/third_party/envoy/config/route/v3/route_components.ts";
import type { HttpProtocolOptions } from "../envoy/third_party/envoy/extensions/upstreams/http/v3/http_protocol_options.ts";
import type { MeshService } from "../registry/registry.ts";
import type { PushContext } from "./context.ts";
import { duration } from "./duration.ts";
import { resolveHost, type VirtualService } from "./virtual-service.ts";

export interface ConsistentHash {
  httpHeaderName?: string;
  httpCookie?: { name?: string; path?: string; ttl?: string };
  useSourceIp?: boolean;
  httpQueryParameterName?: string;
  ringHash?: { minimumRingSize?: number | string };
  maglev?: { tableSize?: number | string };
  minimumRingSize?: number | string;
}

export interface LoadBalancerSettings {
  simple?: "UNSPECIFIED" | "LEAST_CONN" | "RANDOM" | "PASSTHROUGH" | "ROUND_ROBIN" | "LEAST_REQUEST";
  consistentHash?: ConsistentHash;
  localityLbSetting?: object;
  warmupDurationSecs?: string;
  warmup?: { duration?: string; minimumPercent?: number; aggression?: number };
}

export interface ConnectionPoolSettings {
  tcp?: {
    maxConnections?: number;
    connectTimeout?: string;
    tcpKeepalive?: { probes?: number; time?: string; interval?: string };
    maxConnectionDuration?: string;
    idleTimeout?: string;
  };
  http?: {
    http1MaxPendingRequests?: number;
    http2MaxRequests?: number;
    maxRequestsPerConnection?: number;
    maxRetries?: number;
    idleTimeout?: string;
    h2UpgradePolicy?: "DEFAULT" | "DO_NOT_UPGRADE" | "UPGRADE";
    useClientProtocol?: boolean;
    maxConcurrentStreams?: number;
  };
}

export interface OutlierDetectionSettings {
  consecutive5xxErrors?: number;
  consecutiveGatewayErrors?: number;
  interval?: string;
  baseEjectionTime?: string;
  maxEjectionPercent?: number;
  minHealthPercent?: number;
  splitExternalLocalOriginErrors?: boolean;
  consecutiveLocalOriginFailures?: number;
}

export interface ClientTlsSettings {
  mode?: "DISABLE" | "SIMPLE" | "MUTUAL" | "ISTIO_MUTUAL";
  clientCertificate?: string;
  privateKey?: string;
  caCertificates?: string;
  credentialName?: string;
  subjectAltNames?: string[];
  sni?: string;
  insecureSkipVerify?: boolean;
  caCrl?: string;
}

export interface TrafficPolicy {
  loadBalancer?: LoadBalancerSettings;
  connectionPool?: ConnectionPoolSettings;
  outlierDetection?: OutlierDetectionSettings;
  tls?: ClientTlsSettings;
  portLevelSettings?: (Omit<TrafficPolicy, "portLevelSettings"> & { port?: { number?: number } })[];
}

export interface Subset {
  name?: string;
  labels?: Record<string, string>;
  trafficPolicy?: TrafficPolicy;
}

export interface DestinationRule {
  apiVersion?: string;
  metadata?: { name?: string; namespace?: string; uid?: string; creationTimestamp?: string; resourceVersion?: string };
  spec?: {
    host?: string;
    trafficPolicy?: TrafficPolicy;
    subsets?: Subset[];
    exportTo?: string[];
    workloadSelector?: { matchLabels?: Record<string, string> };
  };
}

/** The rule for one host as one proxy sees it: possibly several objects merged (upstream's ConsolidatedDestRule). */
export interface AppliedRule {
  /** The first object merged: its name goes in cluster metadata. */
  rule: DestinationRule;
  trafficPolicy?: TrafficPolicy;
  subsets: Subset[];
  /** Every object merged (`<namespace>/<name>`): what a cache entry built from it depends on. */
  from: string[];
  /** The first object's exportTo as written (`.` for a rule with a workloadSelector). */
  exportTo: Set<string>;
  /** The first object's workloadSelector labels, if it has one. */
  selector?: Record<string, string>;
}

/** Who looks a rule up: a proxy's namespace and, for rules with a workloadSelector, its labels. */
export interface RuleViewer {
  namespace: string;
  labels?: Record<string, string>;
}

interface HostIndex {
  exact: Map<string, AppliedRule[]>;
  /** Wildcard hosts, longest first. */
  wildcard: [string, AppliedRule[]][];
}

interface RuleIndex {
  /** A namespace's rules as its own proxies see them (the root namespace's private ones: `rootLocal`). */
  local: Map<string, HostIndex>;
  /** The rules a namespace exports. */
  exported: Map<string, HostIndex>;
  rootLocal: HostIndex;
}

/** Rules with a selector first, then oldest first (upstream's sortConfigBySelectorAndCreationTime). */
const order = (dr: DestinationRule) =>
  `${dr.spec?.workloadSelector ? 0 : 1}\n${dr.metadata?.creationTimestamp ?? ""}\n${dr.metadata?.namespace ?? ""}\n${dr.metadata?.name ?? ""}`;

function emptyHosts(): HostIndex {
  return { exact: new Map(), wildcard: [] };
}

const sameSet = (a: Set<string>, b: Set<string>) => a.size === b.size && [...a].every((x) => b.has(x));
const sameLabels = (a: Record<string, string> = {}, b: Record<string, string> = {}) =>
  Object.keys(a).length === Object.keys(b).length && Object.entries(a).every(([k, v]) => b[k] === v);

/**
 * Adds a rule for `host` to an index as upstream's mergeDestinationRule does: merged (subsets
 * appended, a traffic policy only where there is none) into each earlier entry it may join, and
 * kept as an entry of its own unless one of them has the same exportTo and selector.
 */
function addRule(index: HostIndex, host: string, dr: DestinationRule, exportTo: Set<string>): void {
  const wildcard = host.startsWith("*");
  let entries = wildcard ? index.wildcard.find(([h]) => h === host)?.[1] : index.exact.get(host);
  if (!entries) {
    entries = [];
    if (wildcard) index.wildcard.push([host, entries]);
    else index.exact.set(host, entries);
  }
  const id = `${dr.metadata?.namespace ?? ""}/${dr.metadata?.name ?? ""}`;
  const selector = dr.spec?.workloadSelector?.matchLabels ?? (dr.spec?.workloadSelector ? {} : undefined);
  let separate = true;
  for (const existing of entries) {
    // Upstream's enhanced merge: only rules exported alike merge, or into one exported to fewer.
    if (sameSet(exportTo, existing.exportTo)) separate = false;
    else if (!(existing.exportTo.size > 0 && [...existing.exportTo].every((e) => exportTo.has(e)))) {
      separate = true;
      continue;
    }
    const bothSelect = selector !== undefined && existing.selector !== undefined;
    if (bothSelect && !sameLabels(selector, existing.selector)) {
      separate = true;
      continue;
    }
    if ((selector === undefined && existing.selector === undefined) || bothSelect) separate = false;
    existing.from.push(id);
    const names = new Set(existing.subsets.map((s) => s.name));
    for (const subset of dr.spec?.subsets ?? []) if (!names.has(subset.name)) existing.subsets.push(subset);
    existing.trafficPolicy ??= dr.spec?.trafficPolicy;
  }
  if (separate)
    entries.push({
      rule: dr,
      trafficPolicy: dr.spec?.trafficPolicy,
      subsets: [...(dr.spec?.subsets ?? [])],
      from: [id],
      exportTo,
      ...(selector ? { selector } : {}),
    });
}

function hostMatch(index: HostIndex | undefined, hostname: string): AppliedRule[] | undefined {
  if (!index) return undefined;
  const exact = index.exact.get(hostname);
  if (exact) return exact;
  for (const [host, rules] of index.wildcard) if (host === "*" || hostname.endsWith(host.slice(1))) return rules;
  return undefined;
}

function buildIndex(rules: DestinationRule[], domainSuffix: string, rootNamespace: string): RuleIndex {
  const local = new Map<string, HostIndex>();
  const exported = new Map<string, HostIndex>();
  const rootLocal = emptyHosts();
  const into = (map: Map<string, HostIndex>, namespace: string) => {
    let index = map.get(namespace);
    if (!index) {
      index = emptyHosts();
      map.set(namespace, index);
    }
    return index;
  };
  for (const dr of [...rules].sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0))) {
    const namespace = dr.metadata?.namespace ?? "default";
    const host = resolveHost(dr.spec?.host ?? "", namespace, domainSuffix);
    if (!host) continue;
    // A rule for some workloads is never exported.
    const exportTo = new Set(dr.spec?.workloadSelector ? ["."] : (dr.spec?.exportTo ?? []));
    if (exportTo.size === 0 || exportTo.has("*") || exportTo.has(".") || exportTo.has(namespace))
      addRule(into(local, namespace), host, dr, exportTo);
    const privateOnly = exportTo.size === 1 && (exportTo.has(".") || exportTo.has(namespace));
    if (!privateOnly) addRule(into(exported, namespace), host, dr, exportTo);
    else if (namespace === rootNamespace) addRule(rootLocal, host, dr, exportTo);
  }
  for (const index of [...local.values(), ...exported.values(), rootLocal])
    index.wildcard.sort(([a], [b]) => b.length - a.length);
  return { local, exported, rootLocal };
}

const indexes = new WeakMap<PushContext, RuleIndex>();

function ruleIndex(push: PushContext): RuleIndex {
  let index = indexes.get(push);
  if (!index) {
    index = buildIndex(push.destinationRules ?? [], push.registry.domainSuffix, push.mesh.rootNamespace);
    indexes.set(push, index);
  }
  return index;
}

function exportedFrom(index: RuleIndex, owner: string, hostname: string, client: string): AppliedRule[] | undefined {
  const rules = hostMatch(index.exported.get(owner), hostname)?.filter(
    (r) => r.exportTo.size === 0 || r.exportTo.has("*") || r.exportTo.has(client),
  );
  return rules && rules.length > 0 ? rules : undefined;
}

/** Whether some DestinationRule selects workloads: then what a proxy gets depends on its labels. */
export function rulesSelectWorkloads(push: PushContext): boolean {
  return (push.destinationRules ?? []).some((dr) => dr.spec?.workloadSelector);
}

/**
 * The DestinationRule that applies to `service` for a proxy (upstream's push.destinationRule,
 * then SidecarScope.DestinationRule): the candidates of the proxy's namespace, else those the
 * Service's namespace exports to it, else the root namespace's; of them, the first whose
 * workloadSelector (in the proxy's namespace) matches the proxy's labels, else the last without one.
 */
export function destinationRuleFor(push: PushContext, viewer: RuleViewer, service: MeshService): AppliedRule | undefined {
  const index = ruleIndex(push);
  const root = push.mesh.rootNamespace;
  const { namespace } = viewer;
  const candidates =
    hostMatch(namespace === root ? index.rootLocal : index.local.get(namespace), service.hostname) ??
    exportedFrom(index, service.namespace, service.hostname, namespace) ??
    exportedFrom(index, root, service.hostname, namespace);
  let catchAll: AppliedRule | undefined;
  for (const rule of candidates ?? []) {
    if (!rule.selector) catchAll = rule;
    else if (
      rule.rule.metadata?.namespace === namespace &&
      Object.entries(rule.selector).every(([k, v]) => viewer.labels?.[k] === v)
    )
      return rule;
  }
  return catchAll;
}

/** Every subset name any rule gives a host (for naming what an endpoint change may touch). */
export function subsetNamesOf(push: PushContext, hostname: string): string[] {
  const names = new Set<string>();
  const index = ruleIndex(push);
  for (const hosts of [...index.local.values(), ...index.exported.values(), index.rootLocal])
    for (const rule of hostMatch(hosts, hostname) ?? [])
      for (const subset of rule.subsets) if (subset.name) names.add(subset.name);
  return [...names].sort();
}

/** The policy for one port: its `portLevelSettings` entry whole, else the rule's (upstream's GetPortLevelTrafficPolicy). */
export function portPolicy(
  policy: TrafficPolicy | undefined,
  port: number,
): { policy: TrafficPolicy | undefined; portLevel: boolean } {
  const level = policy?.portLevelSettings?.find((p) => p.port?.number === port);
  if (!level) return { policy, portLevel: false };
  const { port: _port, ...rest } = level;
  return { policy: rest, portLevel: true };
}

/** A subset's policy over the rule's, component by component, for one port (upstream's MergeSubsetTrafficPolicy). */
export function subsetPolicy(rule: TrafficPolicy | undefined, subset: TrafficPolicy | undefined, port: number) {
  const original = portPolicy(rule, port).policy;
  if (!subset) return original;
  const { policy: own, portLevel } = portPolicy(subset, port);
  if (!original) return own;
  const merged: TrafficPolicy = { ...original };
  if (own?.connectionPool || portLevel) merged.connectionPool = own?.connectionPool;
  if (own?.outlierDetection || portLevel) merged.outlierDetection = own?.outlierDetection;
  if (own?.loadBalancer || portLevel) merged.loadBalancer = own?.loadBalancer;
  if (own?.tls || portLevel) merged.tls = own?.tls;
  return merged;
}

/** `/apis/networking.istio.io/<version>/namespaces/<ns>/destination-rule/<name>`, upstream's config metadata. */
export function configPath(dr: DestinationRule): string {
  const version = dr.apiVersion?.split("/")[1] ?? "v1";
  return `/apis/networking.istio.io/${version}/namespaces/${dr.metadata?.namespace ?? ""}/destination-rule/${dr.metadata?.name ?? ""}`;
}

const MAX = 4294967295;

/** Upstream's default circuit breaker thresholds (everything unlimited), a fresh copy. */
export function defaultThresholds(): CircuitBreakers_Thresholds {
  return { maxConnections: MAX, maxPendingRequests: MAX, maxRequests: MAX, maxRetries: MAX, trackRemaining: true };
}

/** Seconds of a duration string, whole (what upstream's keepalive settings keep). */
const wholeSeconds = (value: string | undefined) => {
  const d = duration(value);
  return d ? d.seconds : undefined;
};

/**
 * Connection pool, HTTP/2 upgrade, outlier detection and load balancer of an outbound cluster
 * (upstream's applyTrafficPolicy without TLS). `options` is the cluster's HttpProtocolOptions,
 * changed in place; the caller packs it.
 */
export function applyTrafficPolicy(cluster: Cluster, options: HttpProtocolOptions, policy: TrafficPolicy | undefined): void {
  const pool = policy?.connectionPool ?? {};
  const threshold = defaultThresholds();
  let idleTimeout = duration(pool.http?.idleTimeout);
  const perConnection = pool.http?.maxRequestsPerConnection ?? 0;
  const streams = pool.http?.maxConcurrentStreams ?? 0;
  if ((pool.http?.http2MaxRequests ?? 0) > 0) threshold.maxRequests = pool.http?.http2MaxRequests;
  if ((pool.http?.http1MaxPendingRequests ?? 0) > 0) threshold.maxPendingRequests = pool.http?.http1MaxPendingRequests;
  if ((pool.http?.maxRetries ?? 0) > 0) threshold.maxRetries = pool.http?.maxRetries;
  const connectTimeout = duration(pool.tcp?.connectTimeout);
  if (connectTimeout) cluster.connectTimeout = connectTimeout;
  if ((pool.tcp?.maxConnections ?? 0) > 0) threshold.maxConnections = pool.tcp?.maxConnections;
  const maxDuration = duration(pool.tcp?.maxConnectionDuration);
  idleTimeout ??= duration(pool.tcp?.idleTimeout);
  const keepalive = pool.tcp?.tcpKeepalive;
  if (keepalive) {
    cluster.upstreamConnectionOptions = {
      tcpKeepalive: {
        keepaliveProbes: (keepalive.probes ?? 0) > 0 ? keepalive.probes : undefined,
        keepaliveTime: wholeSeconds(keepalive.time),
        keepaliveInterval: wholeSeconds(keepalive.interval),
      },
    };
  }
  cluster.circuitBreakers = { thresholds: [threshold] };
  if (maxDuration || idleTimeout || perConnection > 0 || streams > 0) {
    options.commonHttpProtocolOptions ??= {};
    if (idleTimeout) options.commonHttpProtocolOptions.idleTimeout = idleTimeout;
    if (perConnection > 0) options.commonHttpProtocolOptions.maxRequestsPerConnection = perConnection;
    if (maxDuration) options.commonHttpProtocolOptions.maxConnectionDuration = maxDuration;
    const h2 = options.explicitHttpConfig?.http2ProtocolOptions;
    if (h2 && streams > 0) h2.maxConcurrentStreams = streams;
  }
  if (pool.http?.useClientProtocol) {
    delete options.explicitHttpConfig;
    options.useDownstreamProtocolConfig = { httpProtocolOptions: {}, http2ProtocolOptions: {} };
  } else if (pool.http?.h2UpgradePolicy === "UPGRADE") {
    // Asked for: HTTP/2 whatever the port's protocol (the mesh default, DO_NOT_UPGRADE, never does).
    delete options.useDownstreamProtocolConfig;
    options.explicitHttpConfig = { http2ProtocolOptions: {} };
  }
  applyOutlierDetection(cluster, policy?.outlierDetection);
  applyLoadBalancer(cluster, policy?.loadBalancer);
}

function applyOutlierDetection(cluster: Cluster, outlier: OutlierDetectionSettings | undefined): void {
  if (!outlier) return;
  const out: NonNullable<Cluster["outlierDetection"]> = { enforcingSuccessRate: 0 };
  if (outlier.consecutive5xxErrors !== undefined) {
    out.consecutive5xx = outlier.consecutive5xxErrors;
    out.enforcingConsecutive5xx = outlier.consecutive5xxErrors > 0 ? 100 : 0;
  }
  if (outlier.consecutiveGatewayErrors !== undefined) {
    out.consecutiveGatewayFailure = outlier.consecutiveGatewayErrors;
    out.enforcingConsecutiveGatewayFailure = outlier.consecutiveGatewayErrors > 0 ? 100 : 0;
  }
  const interval = duration(outlier.interval);
  if (interval) out.interval = interval;
  const base = duration(outlier.baseEjectionTime);
  if (base) out.baseEjectionTime = base;
  if ((outlier.maxEjectionPercent ?? 0) > 0) out.maxEjectionPercent = outlier.maxEjectionPercent;
  if (outlier.splitExternalLocalOriginErrors) {
    out.splitExternalLocalOriginErrors = true;
    if ((outlier.consecutiveLocalOriginFailures ?? 0) > 0) {
      out.consecutiveLocalOriginFailure = outlier.consecutiveLocalOriginFailures;
      out.enforcingConsecutiveLocalOriginFailure = 100;
    }
    out.enforcingLocalOriginSuccessRate = 0;
  }
  cluster.outlierDetection = out;
  // Upstream disables Envoy's panic threshold (50%) unless minHealthPercent says otherwise.
  const min = outlier.minHealthPercent ?? 0;
  if (min >= 0) cluster.commonLbConfig = { ...cluster.commonLbConfig, healthyPanicThreshold: { value: min } };
}

function slowStart(lb: LoadBalancerSettings): Cluster_SlowStartConfig | undefined {
  if (lb.warmup) {
    return {
      slowStartWindow: duration(lb.warmup.duration),
      aggression: { defaultValue: lb.warmup.aggression ?? 1, runtimeKey: "(" },
      minWeightPercent: { value: lb.warmup.minimumPercent ?? 10 },
    };
  }
  const window = duration(lb.warmupDurationSecs);
  return window ? { slowStartWindow: window } : undefined;
}

function applyLoadBalancer(cluster: Cluster, lb: LoadBalancerSettings | undefined): void {
  if (cluster.type === Cluster_DiscoveryType.ORIGINAL_DST) {
    cluster.lbPolicy = Cluster_LbPolicy.CLUSTER_PROVIDED;
    return;
  }
  const warm = lb && slowStart(lb);
  switch (lb?.simple) {
    case "RANDOM":
      cluster.lbPolicy = Cluster_LbPolicy.RANDOM;
      break;
    case "ROUND_ROBIN":
      cluster.lbPolicy = Cluster_LbPolicy.ROUND_ROBIN;
      if (warm) cluster.roundRobinLbConfig = { slowStartConfig: warm };
      break;
    case "PASSTHROUGH":
      cluster.lbPolicy = Cluster_LbPolicy.CLUSTER_PROVIDED;
      cluster.type = Cluster_DiscoveryType.ORIGINAL_DST;
      delete cluster.loadAssignment;
      delete cluster.edsClusterConfig;
      break;
    default:
      // LEAST_REQUEST, LEAST_CONN and unset: upstream's default.
      cluster.lbPolicy = Cluster_LbPolicy.LEAST_REQUEST;
      if (warm) cluster.leastRequestLbConfig = { slowStartConfig: warm };
  }
  applyConsistentHash(cluster, lb);
}

/** A consistent hash's load balancer (ring hash or Maglev), as upstream's ApplyRingHashLoadBalancer. */
export function applyConsistentHash(cluster: Cluster, lb: LoadBalancerSettings | undefined): void {
  const hash = lb?.consistentHash;
  if (!hash) return;
  if (hash.maglev) {
    cluster.lbPolicy = Cluster_LbPolicy.MAGLEV;
    if (Number(hash.maglev.tableSize ?? 0) !== 0) cluster.maglevLbConfig = { tableSize: Number(hash.maglev.tableSize) };
  } else if (hash.ringHash) {
    cluster.lbPolicy = Cluster_LbPolicy.RING_HASH;
    if (Number(hash.ringHash.minimumRingSize ?? 0) !== 0)
      cluster.ringHashLbConfig = { minimumRingSize: Number(hash.ringHash.minimumRingSize) };
  } else {
    cluster.lbPolicy = Cluster_LbPolicy.RING_HASH;
    cluster.ringHashLbConfig = { minimumRingSize: Number(hash.minimumRingSize ?? 0) || 1024 };
  }
}

/** The consistent hash a route to `subset` of `service` on `port` uses (upstream's HashForHTTPDestination). */
export function consistentHashFor(
  push: PushContext,
  viewer: RuleViewer,
  service: MeshService | undefined,
  subset: string,
  port: number | undefined,
): ConsistentHash | undefined {
  const applied = service && destinationRuleFor(push, viewer, service);
  if (!applied) return undefined;
  const levelHash = (policy: TrafficPolicy | undefined) =>
    port === undefined
      ? undefined
      : policy?.portLevelSettings?.find((p) => p.port?.number === port)?.loadBalancer?.consistentHash;
  const own = applied.subsets.find((s) => s.name === subset)?.trafficPolicy;
  return (
    levelHash(own) ??
    own?.loadBalancer?.consistentHash ??
    levelHash(applied.trafficPolicy) ??
    applied.trafficPolicy?.loadBalancer?.consistentHash
  );
}

/** A route's hash policy for a consistent hash (upstream's consistentHashToHashPolicy). */
export function hashPolicy(hash: ConsistentHash | undefined): RouteAction_HashPolicy | undefined {
  if (!hash) return undefined;
  if (hash.httpHeaderName !== undefined) return { header: { headerName: hash.httpHeaderName } };
  if (hash.httpCookie)
    return { cookie: { name: hash.httpCookie.name ?? "", ttl: duration(hash.httpCookie.ttl), path: hash.httpCookie.path ?? "" } };
  if (hash.useSourceIp !== undefined) return { connectionProperties: { sourceIp: hash.useSourceIp } };
  if (hash.httpQueryParameterName !== undefined) return { queryParameter: { name: hash.httpQueryParameterName } };
  return undefined;
}

/**
 * The destinations of a VirtualService that go nowhere, as its own namespace sees them: a host
 * the registry does not have, or a subset no DestinationRule defines. Envoy answers requests
 * routed there with 503 (no cluster), as upstream's; these say why.
 */
export function unresolvedDestinations(push: PushContext, vs: VirtualService): string[] {
  const namespace = vs.metadata?.namespace ?? "default";
  const problems = new Set<string>();
  for (const rule of vs.spec?.http ?? [])
    for (const { destination } of rule.route ?? []) {
      const host = resolveHost(destination?.host ?? "", namespace, push.registry.domainSuffix);
      const service = push.registry.byHostname.get(host);
      if (!service) {
        if (!host.includes("*")) problems.add(`host ${host}: no such service`);
        continue;
      }
      const subset = destination?.subset;
      if (subset && !destinationRuleFor(push, { namespace }, service)?.subsets.some((s) => s.name === subset))
        problems.add(`subset ${subset} of ${host}: no DestinationRule defines it`);
    }
  return [...problems];
}
