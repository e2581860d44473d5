// VirtualServices (networking.istio.io) bound to the mesh (no `gateways`, or `mesh` among them)
// as the HTTP routes of the services they name, in upstream's shapes (TranslateRoute):
// - a host or destination is resolved in the VirtualService's namespace ("reviews" is
//   reviews.<ns>.svc.<domain>); which VirtualService applies to a host, and delegation, are
//   virtual-service-scope.ts;
// - each `http` rule gives one route per `match` (or one matching everything), named
//   `<rule>.<match>`, with the match (uri exact/prefix/regex, headers, method, authority, scheme,
//   query parameters, ignoreUriCase), the destination cluster, or weighted clusters, of the
//   destination's port (else the service's only port, else the listener's), the timeout and
//   the retry policy (the mesh default unless `retries` says otherwise), and the
//   VirtualService's name in the route's metadata.
// Redirects, direct responses, rewrites, faults, mirrors, CORS and header changes: route-actions.ts.
import {
  type Route,
  RouteAction_ClusterNotFoundResponseCode,
  type RouteAction_HashPolicy,
  type RouteMatch,
} from "../envoy/third_party/envoy/config/route/v3/route_components.ts";
import type { StringMatcher } from "../envoy/third_party/envoy/type/matcher/v3/string.ts";
import type { Any } from "../envoy/third_party/google/protobuf/any.ts";
import type { MeshService } from "../registry/registry.ts";
import { outboundClusterName } from "./context.ts";
import { duration } from "./duration.ts";
import { ROUTE_SEMANTICS } from "./gateway-api.ts";
import {
  type CorsPolicySpec,
  corsConfig,
  directResponseAction,
  faultConfig,
  type Headers,
  type HttpDirectResponse,
  type HttpFaultInjection,
  type HttpRedirect,
  mirrorPolicy,
  redirectAction,
  type StringMatch,
  translateHeaders,
} from "./route-actions.ts";

export { duration };

export interface HttpMatchRequest {
  name?: string;
  uri?: StringMatch;
  headers?: Record<string, StringMatch>;
  /** Headers that must not match (Envoy's inverted header matchers). */
  withoutHeaders?: Record<string, StringMatch>;
  method?: StringMatch;
  authority?: StringMatch;
  scheme?: StringMatch;
  queryParams?: Record<string, StringMatch>;
  ignoreUriCase?: boolean;
  port?: number;
  sourceLabels?: Record<string, string>;
  sourceNamespace?: string;
  gateways?: string[];
}

export interface Destination {
  host?: string;
  subset?: string;
  port?: { number?: number };
}

export interface HttpRouteDestination {
  destination?: Destination;
  weight?: number;
  headers?: Headers;
}

export interface HttpRoute {
  name?: string;
  match?: HttpMatchRequest[];
  route?: HttpRouteDestination[];
  timeout?: string;
  retries?: { attempts?: number; perTryTimeout?: string; retryOn?: string };
  redirect?: HttpRedirect;
  rewrite?: { uri?: string; authority?: string; uriRegexRewrite?: { match?: string; rewrite?: string } };
  fault?: HttpFaultInjection;
  mirror?: Destination;
  mirrorPercentage?: { value?: number };
  mirrorPercent?: number;
  mirrors?: { destination?: Destination; percentage?: { value?: number } }[];
  corsPolicy?: CorsPolicySpec;
  headers?: Headers;
  directResponse?: HttpDirectResponse;
  delegate?: { name?: string; namespace?: string };
}

/** A TCP rule: matches on the port, the caller (labels, namespace) and gateways; weighted destinations. */
export interface TcpRoute {
  match?: {
    port?: number;
    sourceLabels?: Record<string, string>;
    sourceNamespace?: string;
    gateways?: string[];
    destinationSubnets?: string[];
  }[];
  route?: { destination?: Destination; weight?: number }[];
}

/** A TLS rule: matches on SNI names, port, destination subnets and the caller; weighted destinations. */
export interface TlsRoute {
  match?: (NonNullable<TcpRoute["match"]>[number] & { sniHosts?: string[] })[];
  route?: { destination?: Destination; weight?: number }[];
}

export interface VirtualService {
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    creationTimestamp?: string;
    annotations?: Record<string, string>;
  };
  spec?: {
    hosts?: string[];
    gateways?: string[];
    exportTo?: string[];
    http?: HttpRoute[];
    tcp?: TcpRoute[];
    tls?: TlsRoute[];
  };
}

/** A host as written in a VirtualService of `namespace`, fully qualified. */
export function resolveHost(host: string, namespace: string, domainSuffix: string): string {
  return host.includes(".") || host.includes("*") ? host : `${host}.${namespace}.svc.${domainSuffix}`;
}

function stringMatcher(m: StringMatch): StringMatcher | undefined {
  if (m.exact !== undefined) return { exact: m.exact };
  if (m.prefix !== undefined) return { prefix: m.prefix };
  if (m.regex !== undefined) return { safeRegex: { regex: m.regex } };
  return undefined;
}

/** Upstream turns a match without a type, or the regex `*` (not RE2), into a presence check. */
const isPresence = (m: StringMatch) =>
  m.regex === "*" || (m.exact === undefined && m.prefix === undefined && m.regex === undefined);

function headerMatcher(name: string, m: StringMatch) {
  return isPresence(m) ? { name, presentMatch: true } : { name, stringMatch: stringMatcher(m) };
}

/**
 * A match as Envoy's. `gatewaySemantics` (routes converted from the Gateway API): a path prefix
 * matches whole path segments (upstream's path_separated_prefix), as the Gateway API requires.
 */
export function routeMatch(match: HttpMatchRequest | undefined, gatewaySemantics = false): RouteMatch {
  const out: RouteMatch = { prefix: "/" };
  if (!match) return out;
  const without = Object.entries(match.withoutHeaders ?? {}).map(([name, m]) => ({
    ...headerMatcher(name, m),
    invertMatch: true,
    // Upstream: a missing header counts as empty, unless the match is a presence check.
    ...(isPresence(m) ? {} : { treatMissingHeaderAsEmpty: true }),
  }));
  const headers = [...Object.entries(match.headers ?? {}).map(([name, m]) => headerMatcher(name, m)), ...without].sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
  );
  if (match.uri) {
    delete out.prefix;
    if (match.uri.exact !== undefined) out.path = match.uri.exact;
    else if (match.uri.prefix !== undefined) {
      if (gatewaySemantics && match.uri.prefix !== "/") out.pathSeparatedPrefix = match.uri.prefix.replace(/\/$/, "");
      else out.prefix = match.uri.prefix;
    } else if (match.uri.regex !== undefined) out.safeRegex = { regex: match.uri.regex };
    else out.prefix = "/";
  }
  out.caseSensitive = !match.ignoreUriCase;
  if (match.method) headers.push(headerMatcher(":method", match.method));
  if (match.authority) headers.push(headerMatcher(":authority", match.authority));
  if (match.scheme) headers.push(headerMatcher(":scheme", match.scheme));
  if (headers.length > 0) out.headers = headers;
  const query = Object.entries(match.queryParams ?? {}).map(([name, m]) =>
    isPresence(m) ? { name, presentMatch: true } : { name, stringMatch: stringMatcher(m) },
  );
  if (query.length > 0) out.queryParameters = query;
  return out;
}

export interface RouteContext {
  namespace: string;
  domainSuffix: string;
  listenPort: number;
  lookup: (hostname: string) => MeshService | undefined;
  /**
   * The mesh's default retry policy (upstream's, unless meshConfig changes it); with a consistent
   * hash, without the predicate that moves retries to other hosts.
   */
  defaultRetry: (hashed?: boolean) => NonNullable<Route["route"]>["retryPolicy"];
  /** The hash policy of a destination's DestinationRule (consistent hash load balancing), if any. */
  hashPolicy?: (service: MeshService | undefined, subset: string, port?: number) => RouteAction_HashPolicy | undefined;
  /** The proxy's labels and namespace, for matches on `sourceLabels` and `sourceNamespace`. */
  proxyLabels?: Record<string, string>;
  proxyNamespace?: string;
  /** For a proxyless gRPC client: timeouts as max_stream_duration, which gRPC reads (not max_grpc_timeout). */
  proxyless?: boolean;
  /** The gateways routed for, `<namespace>/<name>` (a gateway's server); unset: `mesh` (a sidecar). */
  gateways?: ReadonlySet<string>;
}

/** Upstream's GetDestinationCluster, and the destination's hash policy (its DestinationRule's consistent hash). */
function destinationCluster(
  destination: Destination | undefined,
  ctx: RouteContext,
): { cluster: string; hash?: RouteAction_HashPolicy } {
  // Upstream's sidecar routes see a service only through the listener's port: a destination without
  // a port goes to the listener's, whatever ports its service has. A gateway's see the whole
  // service: a service with one port is sent to that port.
  const onPort = (host: string) => {
    const found = ctx.lookup(host);
    return found && { ...found, ports: found.ports.filter((p) => p.port === ctx.listenPort) };
  };
  const { cluster } = clusterOf(destination, ctx.gateways ? ctx : { ...ctx, lookup: onPort });
  const service = ctx.lookup(resolveHost(destination?.host ?? "", ctx.namespace, ctx.domainSuffix));
  const subset = destination?.subset ?? "";
  // Port-level hash settings apply only to a destination that names its port (upstream's portLevelSettingsConsistentHash).
  return { cluster, hash: ctx.hashPolicy?.(service, subset, destination?.port?.number) };
}

/**
 * Upstream's GetDestinationCluster: `outbound|<port>|<subset>|<host>` with the destination's
 * port, else the service's only port, else the listener's; and the service, if known.
 */
export function clusterOf(
  destination: Destination | undefined,
  ctx: Pick<RouteContext, "namespace" | "domainSuffix" | "lookup" | "listenPort">,
): { cluster: string; service?: MeshService } {
  const host = resolveHost(destination?.host ?? "", ctx.namespace, ctx.domainSuffix);
  const service = ctx.lookup(host);
  const target = service?.externalName ?? host;
  let port = ctx.listenPort;
  if (destination?.port?.number) port = destination.port.number;
  else if (service && service.ports.length === 1) port = service.ports[0]?.port ?? port;
  return { cluster: outboundClusterName(port, target, destination?.subset ?? ""), service };
}

/** Upstream's retry.ConvertPolicy. */
function retryPolicy(rule: HttpRoute, ctx: RouteContext, hashed: boolean) {
  const out = ctx.defaultRetry(hashed);
  const retries = rule.retries;
  if (!retries || !out) return out;
  if ((retries.attempts ?? 0) <= 0) return undefined;
  out.numRetries = retries.attempts;
  if (retries.retryOn) {
    const parts = retries.retryOn
      .split(",")
      .map((p) => p.trim())
      .filter(Boolean);
    const codes = parts.filter((p) => /^\d{3}$/.test(p)).map(Number);
    let on = parts.filter((p) => !/^\d{3}$/.test(p)).join(",");
    if (codes.length > 0 && !on.includes("retriable-status-codes")) on += ",retriable-status-codes";
    out.retryOn = on;
    out.retriableStatusCodes = codes.length > 0 ? codes : undefined;
  }
  const perTry = duration(retries.perTryTimeout);
  if (perTry) out.perTryTimeout = perTry;
  return out;
}

/** A VirtualService's gateway reference as `<namespace>/<name>` (upstream's resolveGatewayName); `mesh` stays. */
export function resolveGatewayName(name: string, namespace: string): string {
  if (name === "mesh") return name;
  if (!name.includes("/")) {
    if (!name.includes(".")) return `${namespace}/${name}`;
    // Legacy FQDN form: <name>.<namespace>[.svc.cluster.local].
    const [short = "", ns = ""] = name.split(".");
    return `${ns}/${short}`;
  }
  return name.startsWith("./") ? `${namespace}/${name.slice(2)}` : name;
}

/** Whether a match applies to this proxy (upstream's sourceMatchHTTP): its gateways, or its source labels and namespace. */
function sourceMatches(match: HttpMatchRequest | undefined, ctx: RouteContext): boolean {
  if (!match) return true;
  if (match.gateways?.length) {
    const routedFor = ctx.gateways ?? new Set(["mesh"]);
    return match.gateways.some((g) => routedFor.has(resolveGatewayName(g, ctx.namespace)));
  }
  const labels = ctx.proxyLabels ?? {};
  if (!Object.entries(match.sourceLabels ?? {}).every(([k, v]) => labels[k] === v)) return false;
  return !match.sourceNamespace || match.sourceNamespace === ctx.proxyNamespace;
}

/** The route's action toward its destinations (upstream's applyHTTPRouteDestination). */
function routeAction(
  rule: HttpRoute,
  ctx: RouteContext,
  out: Route,
  authority: string,
  gatewaySemantics: boolean,
): NonNullable<Route["route"]> {
  const timeout = duration(rule.timeout) ?? { seconds: 0 };
  const destinations = (rule.route ?? []).filter((d) => (rule.route?.length ?? 0) === 1 || (d.weight ?? 0) !== 0);
  const targets = destinations.map((d) => ({
    ...destinationCluster(d.destination, ctx),
    weight: d.weight ?? 0,
    headers: d.headers && translateHeaders(d.headers),
  }));
  const hashes = targets.flatMap((t) => (t.hash ? [t.hash] : []));
  // Only a single destination's consistent hash keeps retries on the same host.
  const hashed = (rule.route?.length ?? 0) === 1 && hashes.length > 0;
  const action: NonNullable<Route["route"]> = ctx.proxyless
    ? { timeout, maxStreamDuration: { maxStreamDuration: timeout } }
    : { timeout, maxGrpcTimeout: timeout };
  // The Gateway API: a backend that does not exist answers 500 (not 503).
  if (gatewaySemantics) action.clusterNotFoundResponseCode = RouteAction_ClusterNotFoundResponseCode.INTERNAL_SERVER_ERROR;
  if (rule.rewrite?.uriRegexRewrite)
    action.regexRewrite = {
      pattern: { regex: rule.rewrite.uriRegexRewrite.match ?? "" },
      substitution: rule.rewrite.uriRegexRewrite.rewrite ?? "",
    };
  else if (rule.rewrite?.uri === "/" && gatewaySemantics && out.match?.pathSeparatedPrefix !== undefined)
    // Removing the whole prefix: keep the `/` in front of what remains.
    action.regexRewrite = {
      pattern: { regex: `^${quoteMeta(out.match.pathSeparatedPrefix)}(/?)(.*)` },
      substitution: "/\\2",
    };
  else if (rule.rewrite?.uri) action.prefixRewrite = rule.rewrite.uri;
  const host = rule.rewrite?.authority || authority;
  if (host) action.hostRewriteLiteral = host;
  const mirrors = [
    ...(rule.mirror ? [{ destination: rule.mirror, percent: rule.mirrorPercentage?.value ?? undefined }] : []),
    ...(rule.mirrors ?? []).map((m) => ({ destination: m.destination, percent: m.percentage?.value })),
  ];
  const policies = mirrors.flatMap((m) => {
    const legacy = m === mirrors[0] && rule.mirror && rule.mirrorPercentage === undefined && rule.mirrorPercent !== undefined;
    const percent = legacy ? rule.mirrorPercent : m.percent;
    const policy = m.destination && mirrorPolicy(destinationCluster(m.destination, ctx).cluster, percent, Boolean(legacy));
    return policy ? [policy] : [];
  });
  if (policies.length > 0) action.requestMirrorPolicies = policies;
  if (targets.length === 1) {
    const [only] = targets;
    action.cluster = only?.cluster;
    if (only?.headers) {
      out.requestHeadersToAdd = [...(out.requestHeadersToAdd ?? []), ...only.headers.requestHeadersToAdd];
      out.requestHeadersToRemove = [...(out.requestHeadersToRemove ?? []), ...only.headers.requestHeadersToRemove];
      out.responseHeadersToAdd = [...(out.responseHeadersToAdd ?? []), ...only.headers.responseHeadersToAdd];
      out.responseHeadersToRemove = [...(out.responseHeadersToRemove ?? []), ...only.headers.responseHeadersToRemove];
      if (only.headers.authority && !action.hostRewriteLiteral) action.hostRewriteLiteral = only.headers.authority;
    }
  } else
    action.weightedClusters = {
      clusters: targets.map((t) => ({
        name: t.cluster,
        weight: t.weight,
        ...(t.headers
          ? {
              requestHeadersToAdd: t.headers.requestHeadersToAdd,
              requestHeadersToRemove: t.headers.requestHeadersToRemove,
              responseHeadersToAdd: t.headers.responseHeadersToAdd,
              responseHeadersToRemove: t.headers.responseHeadersToRemove,
              ...(t.headers.authority ? { hostRewriteLiteral: t.headers.authority } : {}),
            }
          : {}),
      })),
    };
  action.retryPolicy = retryPolicy(rule, ctx, hashed);
  if (hashes.length > 0) action.hashPolicy = hashes;
  return action;
}

/** The routes a VirtualService (delegates merged) gives one listener port, in rule order. */
export function virtualServiceRoutes(vs: VirtualService, ctx: RouteContext): Route[] {
  const routes: Route[] = [];
  const name = vs.metadata?.name ?? "";
  const configPath = `/apis/networking.istio.io/v1/namespaces/${vs.metadata?.namespace ?? ""}/virtual-service/${name}`;
  const gatewaySemantics = usesGatewaySemantics(vs);
  for (const rule of vs.spec?.http ?? []) {
    for (const match of rule.match?.length ? rule.match : [undefined]) {
      if (match?.port && match.port !== ctx.listenPort) continue;
      if (!sourceMatches(match, ctx)) continue;
      const out: Route = {
        name: match?.name ? `${rule.name ?? ""}.${match.name}` : (rule.name ?? ""),
        match: routeMatch(match, gatewaySemantics),
        metadata: { filterMetadata: { istio: { config: configPath } } },
      };
      let authority = "";
      if (rule.headers) {
        const headers = translateHeaders(rule.headers);
        out.requestHeadersToAdd = headers.requestHeadersToAdd;
        out.responseHeadersToAdd = headers.responseHeadersToAdd;
        out.requestHeadersToRemove = headers.requestHeadersToRemove;
        out.responseHeadersToRemove = headers.responseHeadersToRemove;
        authority = headers.authority;
      }
      if (rule.redirect) out.redirect = redirectAction(rule.redirect, ctx.listenPort, gatewaySemantics);
      else if (rule.directResponse) out.directResponse = directResponseAction(rule.directResponse);
      else out.route = routeAction(rule, ctx, out, authority, gatewaySemantics);
      out.decorator = { operation: operation(out, name, ctx.listenPort) };
      const perFilter: Record<string, Any> = {};
      const fault = rule.fault && faultConfig(rule.fault);
      if (fault) perFilter["envoy.filters.http.fault"] = fault;
      if (rule.corsPolicy) perFilter["envoy.filters.http.cors"] = corsConfig(rule.corsPolicy);
      if (rule.fault || rule.corsPolicy) out.typedPerFilterConfig = perFilter;
      routes.push(out);
      // Routes match in order: nothing after one that matches everything is ever reached.
      if (catchAll(out.match)) return routes;
    }
    if (!rule.match?.length) break;
  }
  return routes;
}

/** A VirtualService converted from the Gateway API (gateway-api.ts marks them). */
export const usesGatewaySemantics = (vs: VirtualService) => vs.metadata?.annotations?.[ROUTE_SEMANTICS] === "gateway";

/** Go's regexp.QuoteMeta. */
const quoteMeta = (s: string) => s.replace(/[\\.+*?()|[\]{}^$]/g, "\\$&");

/** Upstream's IsCatchAllRoute: every path, no header or query condition. */
function catchAll(m: RouteMatch | undefined): boolean {
  const everyPath = m?.prefix === "/" || m?.pathSeparatedPrefix === "/" || m?.safeRegex?.regex === ".*";
  return everyPath && !m?.headers?.length && !m?.queryParameters?.length && !m?.dynamicMetadata?.length;
}

/** Upstream's GetRouteOperation: `<host>:<port><path>` for one destination, else `<vs>:<listener port><path>`. */
function operation(route: Route, vsName: string, port: number): string {
  const m = route.match ?? {};
  const path = m.path ?? (m.safeRegex ? m.safeRegex.regex : m.prefix !== undefined ? `${m.prefix}*` : "/*");
  const cluster = route.route?.cluster?.split("|");
  if (cluster?.length === 4) return `${cluster[3]}:${cluster[1]}${path}`;
  return `${vsName}:${port}${path}`;
}
