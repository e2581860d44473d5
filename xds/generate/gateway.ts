// Gateways (router proxies): the Istio Gateways that select a gateway pod become its listeners,
// and the VirtualServices bound to those Gateways its routes, as upstream's MergeGateways
// (pilot/pkg/model/gateway.go) and gateway listener and route builders decide them.
//
// - Selection: every Gateway whose `selector` labels the pod has (none: every gateway pod),
//   oldest first. A server's port is the gateway Service's port: the listener binds the
//   Service's targetPort for it (the first of the pod's Services with that port), else the port
//   itself.
// - Merging: plain-text servers on one port share a listener; HTTP ones share the route
//   configuration `http.<port>`. A server that conflicts with the port's first (another protocol
//   on the same bind, or a second TLS server with the same hosts) is left out, with why.
// - Routes: for each server, the VirtualServices bound to its Gateway (`gateways` naming it as
//   `<namespace>/<name>` or a short name in the VirtualService's namespace) and visible to the
//   gateway's namespace (exportTo), whose hosts meet the server's (`<namespace>/<host>` limits a
//   server host to that namespace's VirtualServices), a virtual host per host in common; a match
//   naming gateways applies only on those. `httpsRedirect` makes a server's hosts require TLS.
//   Hosts with the same routes share one virtual host; none at all: a 404 virtual host.
//
// - HTTPS servers terminated here (SIMPLE, MUTUAL, OPTIONAL_MUTUAL with a `credentialName`): a
//   filter chain each on the port's listener, matched by SNI, with the server's TLS settings and
//   its certificate by SDS (gateway-secrets.ts), routes from `https.<port>.<name>.<gateway>.<ns>`.
//
// Not yet: TLS passthrough, ISTIO_MUTUAL, TLS and TCP servers: they are merged (so they conflict
// as upstream's would) but get no filter chain, and istiod says so.
import { TrafficDirection } from "../envoy/third_party/envoy/config/core/v3/base.ts";
import { ApiVersion } from "../envoy/third_party/envoy/config/core/v3/config_source.ts";
import type { Listener } from "../envoy/third_party/envoy/config/listener/v3/listener.ts";
import type { FilterChain } from "../envoy/third_party/envoy/config/listener/v3/listener_components.ts";
import type { RouteConfiguration } from "../envoy/third_party/envoy/config/route/v3/route.ts";
import {
  type Route,
  type VirtualHost,
  VirtualHost_TlsRequirementType,
} from "../envoy/third_party/envoy/config/route/v3/route_components.ts";
import { TlsInspector } from "../envoy/third_party/envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.ts";
import { TlsParameters_TlsProtocol } from "../envoy/third_party/envoy/extensions/transport_sockets/tls/v3/common.ts";
import { DownstreamTlsContext } from "../envoy/third_party/envoy/extensions/transport_sockets/tls/v3/tls.ts";
import { pack } from "../envoy/types.ts";
import type { MeshProxy } from "../proxy.ts";
import { isHttp, type Protocol, parseProtocol } from "../registry/protocol.ts";
import { withAccessLogs } from "./access-log.ts";
import { oldestFirst, type PushContext, serviceTargets } from "./context.ts";
import { credentialsReady } from "./gateway-secrets.ts";
import { CONNECT_TIMEOUT, httpConnectionManager } from "./listeners.ts";
import { gatewayRouteContext } from "./routes.ts";
import { accessLogsFor } from "./telemetry.ts";
import { resolveHost, type VirtualService, virtualServiceRoutes } from "./virtual-service.ts";
import { gatewayVirtualServices } from "./virtual-service-scope.ts";

export interface ServerTls {
  httpsRedirect?: boolean;
  mode?: string;
  credentialName?: string;
  [field: string]: unknown;
}

export interface GatewayServer {
  port?: { number?: number; name?: string; protocol?: string; targetPort?: number };
  hosts?: string[];
  bind?: string;
  name?: string;
  tls?: ServerTls;
}

export interface IstioGateway {
  metadata?: { name?: string; namespace?: string; creationTimestamp?: string; annotations?: Record<string, string> };
  spec?: { selector?: Record<string, string>; servers?: GatewayServer[] };
}

const protocolOf = (s: GatewayServer): Protocol => parseProtocol(s.port?.protocol ?? "");
/** TLS passed through by SNI (an unset mode is PASSTHROUGH, the enum's zero). */
const isPassthrough = (s: GatewayServer) =>
  s.tls !== undefined && ["PASSTHROUGH", "AUTO_PASSTHROUGH"].includes(String(s.tls.mode ?? "PASSTHROUGH"));
/** TLS on a non-HTTP port (an HTTP server's `tls` is only its httpsRedirect). */
const isTlsServer = (s: GatewayServer) => s.tls !== undefined && !isHttp(protocolOf(s));
/** HTTP, or HTTPS terminated here. */
const isHttpServer = (s: GatewayServer) => isHttp(protocolOf(s)) || (protocolOf(s) === "HTTPS" && !isPassthrough(s));

/** `./host` → `<namespace>/host`; `*\/host` → `host`; `*\/*` → every host (upstream's sanitizeServerHostNamespace). */
function sanitizeHosts(server: GatewayServer, namespace: string): GatewayServer {
  const hosts: string[] = [];
  for (const h of server.hosts ?? []) {
    const slash = h.indexOf("/");
    if (slash < 0) hosts.push(h);
    else if (h.slice(0, slash) === ".") hosts.push(`${namespace}/${h.slice(slash + 1)}`);
    else if (h.slice(0, slash) === "*") {
      if (h.slice(slash + 1) === "*") return { ...server, hosts: ["*"] };
      hosts.push(h.slice(slash + 1));
    } else hosts.push(h);
  }
  return { ...server, hosts };
}

/** The Gateways selecting a gateway pod, oldest first. */
export function gatewaysFor(push: PushContext, proxy: MeshProxy): IstioGateway[] {
  return (push.gateways ?? [])
    .filter((g) => Object.entries(g.spec?.selector ?? {}).every(([k, v]) => proxy.labels[k] === v))
    .sort(oldestFirst);
}

/** Service port → the pod's port for it, over the pod's Services (upstream's resolvePorts, legacy selection). */
function resolvePort(push: PushContext, proxy: MeshProxy, number: number): number {
  const endpoints = proxy.ipAddresses.flatMap((ip) => push.registry.workloadPorts.get(ip) ?? []);
  for (const service of serviceTargets(push, proxy))
    for (const ep of endpoints) {
      if (ep.hostname !== service.hostname) continue;
      const port = service.ports.find((p) => p.name === ep.servicePortName);
      if (port?.port === number) return ep.port;
    }
  return number;
}

/** One server of a Gateway, as merged: which Gateway, and its route configuration's name. */
export interface MergedServer {
  server: GatewayServer;
  /** `<namespace>/<name>` of its Gateway. */
  gateway: string;
  /** The port the listener binds (the Service's targetPort). */
  port: number;
  routeName: string;
}

export interface MergedPort {
  number: number;
  protocol: Protocol;
  bind: string;
  servers: MergedServer[];
  routeName: string;
}

export interface MergedGateway {
  /** The listeners' ports, in the order their first server came. */
  ports: MergedPort[];
  byRouteName: Map<string, MergedServer[]>;
  /** Servers left out, with why. */
  problems: string[];
}

/** `http.<port>` for HTTP servers, `https.<port>.<port name>.<gateway>.<namespace>` for HTTPS terminated here; else none. */
function routeNameOf(server: GatewayServer, port: number, gateway: IstioGateway): string {
  const bind = server.bind ? `.${server.bind}` : "";
  const p = protocolOf(server);
  if (isHttp(p)) return `http.${port}${bind}`;
  if (p === "HTTPS" && !isPassthrough(server))
    return `https.${server.port?.number}.${server.port?.name}.${gateway.metadata?.name}.${gateway.metadata?.namespace}${bind}`;
  return "";
}

const canMerge = (current: Protocol, next: Protocol) => (isHttp(current) || current === next) && isHttp(next);

const mergedCache = new WeakMap<PushContext, Map<string, MergedGateway | undefined>>();

/** The servers of the Gateways selecting a gateway pod, merged by port (upstream's mergeGateways). */
export function mergeGateways(push: PushContext, proxy: MeshProxy): MergedGateway | undefined {
  let byProxy = mergedCache.get(push);
  if (!byProxy) {
    byProxy = new Map();
    mergedCache.set(push, byProxy);
  }
  const key = `${proxy.id}@${proxy.ipAddresses.join(",")}`;
  if (byProxy.has(key)) return byProxy.get(key);
  const gateways = gatewaysFor(push, proxy);
  const merged = gateways.length > 0 ? merge(push, proxy, gateways) : undefined;
  byProxy.set(key, merged);
  return merged;
}

function merge(push: PushContext, proxy: MeshProxy, gateways: IstioGateway[]): MergedGateway {
  const ports: MergedPort[] = [];
  const byKey = new Map<string, MergedPort>();
  const plainText = new Map<number, MergedPort>();
  const nonPlainTextBinds = new Map<number, Set<string>>();
  const tlsHostsByPort = new Map<number, Map<string, string>>();
  const byRouteName = new Map<string, MergedServer[]>();
  const problems: string[] = [];
  const portKey = (number: number, protocol: Protocol, bind: string) => `${number}|${protocol}|${bind}`;
  const add = (entry: MergedServer, protocol: Protocol, bind: string) => {
    const k = portKey(entry.port, protocol, bind);
    const existing = byKey.get(k);
    if (existing) existing.servers.push(entry);
    else {
      const port = { number: entry.port, protocol, bind, servers: [entry], routeName: entry.routeName };
      byKey.set(k, port);
      ports.push(port);
    }
  };
  const addPlainText = (entry: MergedServer, protocol: Protocol, bind: string) => {
    const port: MergedPort = { number: entry.port, protocol, bind, servers: [entry], routeName: entry.routeName };
    if (!isTlsServer(entry.server)) plainText.set(entry.port, port);
    if (isHttpServer(entry.server)) byRouteName.set(entry.routeName, [entry]);
    byKey.set(portKey(entry.port, protocol, bind), port);
    ports.push(port);
  };
  const gatewayPorts = new Set<number>();
  for (const gateway of gateways) {
    const namespace = gateway.metadata?.namespace ?? "";
    const name = `${namespace}/${gateway.metadata?.name ?? ""}`;
    for (const raw of gateway.spec?.servers ?? []) {
      if (!raw.port?.number) {
        problems.push(`${name}: a server without a port is left out`);
        continue;
      }
      const server = sanitizeHosts(raw, namespace);
      const resolved = resolvePort(push, proxy, raw.port.number);
      const routeName = routeNameOf(server, resolved, gateway);
      const protocol = protocolOf(server);
      const bind = server.bind ?? "";
      const entry: MergedServer = { server, gateway: name, port: resolved, routeName };
      const where = `${name} port ${raw.port.name ?? ""} ${resolved} ${raw.port.protocol ?? ""}`;
      if (server.tls) {
        const known = tlsHostsByPort.get(resolved) ?? new Map<string, string>();
        tlsHostsByPort.set(resolved, known);
        const duplicates = (server.hosts ?? []).filter((h) => known.get(h) === bind);
        if (duplicates.length > 0) {
          problems.push(`${where}: left out, hosts ${duplicates.join(", ")} are already served on this port`);
          continue;
        }
        for (const h of server.hosts ?? []) known.set(h, bind);
      }
      if (!gatewayPorts.has(resolved)) {
        gatewayPorts.add(resolved);
        addPlainText(entry, protocol, bind);
        continue;
      }
      const current = plainText.get(resolved);
      if (current) {
        if (!canMerge(protocol, current.protocol) && current.bind === bind) {
          problems.push(`${where}: left out, it conflicts with the ${current.protocol} server already on this port`);
          continue;
        }
        if (routeName === "" && current.bind === bind) {
          problems.push(`${where}: left out, no route configuration can be named for it`);
          continue;
        }
        if (current.bind !== bind) {
          if (byKey.has(portKey(resolved, protocol, bind))) {
            add(entry, protocol, bind);
            byRouteName.set(routeName, [...(byRouteName.get(routeName) ?? []), entry]);
          } else addPlainText(entry, protocol, bind);
        } else {
          current.servers.push(entry);
          byRouteName.set(routeName, [...(byRouteName.get(routeName) ?? []), entry]);
        }
        continue;
      }
      if (!isTlsServer(server)) {
        // A plain-text server on a port so far only TLS: it takes the port over, as upstream's does.
        addPlainText(entry, protocol, bind);
        continue;
      }
      if (isHttpServer(server)) {
        if (routeName === "" || byRouteName.has(routeName)) {
          problems.push(`${where}: left out, its port name is not unique among HTTPS servers`);
          continue;
        }
        byRouteName.set(routeName, [entry]);
      }
      const binds = nonPlainTextBinds.get(resolved) ?? new Set<string>();
      const newBind = !binds.has(bind);
      binds.add(bind);
      nonPlainTextBinds.set(resolved, binds);
      if (!server.tls && !newBind) {
        problems.push(`${where}: left out, a TLS server without TLS settings`);
        continue;
      }
      add(entry, protocol, bind);
    }
  }
  return { ports, byRouteName, problems };
}

/** Envoy's name of a TLS version as Istio writes it (TLSV1_2 → TLSv1_2). */
const TLS_VERSIONS: Record<string, TlsParameters_TlsProtocol> = {
  TLSV1_0: TlsParameters_TlsProtocol.TLSv1_0,
  TLSV1_1: TlsParameters_TlsProtocol.TLSv1_1,
  TLSV1_2: TlsParameters_TlsProtocol.TLSv1_2,
  TLSV1_3: TlsParameters_TlsProtocol.TLSv1_3,
};

/** An SDS secret istiod serves over ADS (a credentialName). */
const adsSecret = (name: string) => ({ name, sdsConfig: { ads: {}, resourceApiVersion: ApiVersion.V3 } });

/** The `kubernetes://` resource name of a credentialName (`<name>` or `<namespace>/<name>`). */
export const credentialResource = (credentialName: string) => `kubernetes://${credentialName}`;

/** A terminating server's TLS (upstream's BuildListenerTLSContext for SIMPLE, MUTUAL, OPTIONAL_MUTUAL with credentialName). */
function serverTls(tls: ServerTls): FilterChain["transportSocket"] {
  const mutual = tls.mode === "MUTUAL";
  const validate = mutual || tls.mode === "OPTIONAL_MUTUAL";
  const min = TLS_VERSIONS[String(tls.minProtocolVersion ?? "")];
  const max = TLS_VERSIONS[String(tls.maxProtocolVersion ?? "")];
  const ciphers = Array.isArray(tls.cipherSuites) ? (tls.cipherSuites as string[]) : [];
  const tlsParams = {
    ...(min !== undefined ? { tlsMinimumProtocolVersion: min } : {}),
    ...(ciphers.length > 0 ? { cipherSuites: ciphers } : {}),
    ...(max !== undefined ? { tlsMaximumProtocolVersion: max } : {}),
  };
  const credential = credentialResource(String(tls.credentialName ?? ""));
  const sans = Array.isArray(tls.subjectAltNames) ? (tls.subjectAltNames as string[]) : [];
  return {
    name: "envoy.transport_sockets.tls",
    typedConfig: pack(DownstreamTlsContext, {
      commonTlsContext: {
        ...(Object.keys(tlsParams).length > 0 ? { tlsParams } : {}),
        tlsCertificateSdsSecretConfigs: [adsSecret(credential)],
        ...(validate
          ? {
              combinedValidationContext: {
                defaultValidationContext: sans.length > 0 ? { matchSubjectAltNames: sans.map((exact) => ({ exact })) } : {},
                validationContextSdsSecretConfig: adsSecret(`${credential}${CA_SUFFIX}`),
              },
            }
          : {}),
        alpnProtocols: ["h2", "http/1.1"],
      },
      requireClientCertificate: mutual,
    }),
  };
}

/** A server's SNI hosts: its hosts without namespaces, each once, sorted (upstream's GetSNIHostsForServer). */
function sniHosts(server: GatewayServer): string[] {
  return [...new Set((server.hosts ?? []).map((h) => (h.includes("/") ? h.slice(h.indexOf("/") + 1) : h)))].sort();
}

/** Whether the gateway can serve a server now: HTTP, or HTTPS terminated with a credentialName. */
const servable = (s: GatewayServer) =>
  isHttp(protocolOf(s)) ||
  (protocolOf(s) === "HTTPS" &&
    ["SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL"].includes(String(s.tls?.mode ?? "")) &&
    Boolean(s.tls?.credentialName));

/** The gateway's listeners: one per merged port; HTTP servers share an HTTP connection manager, HTTPS ones get a chain each by SNI. */
export function gatewayListeners(push: PushContext, proxy: MeshProxy): Listener[] {
  const merged = mergeGateways(push, proxy);
  if (!merged) return [];
  const listeners: Listener[] = [];
  for (const port of merged.ports) {
    const bind = port.bind || "0.0.0.0";
    const name = `${bind}_${port.number}`;
    const hcm = (routeName: string, statPrefix: string) =>
      httpConnectionManager(push, proxy, statPrefix, { rds: routeName }, false, true);
    let filterChains: FilterChain[];
    if (isHttp(port.protocol)) filterChains = [{ filters: [hcm(port.routeName, `outbound_${name}`)], ...CONNECT_TIMEOUT }];
    else
      filterChains = port.servers
        .filter((m) => servable(m.server) && credentialsReady(push, proxy, m.server))
        .map((m) => ({
          filterChainMatch: { serverNames: sniHosts(m.server) },
          filters: [hcm(m.routeName, m.server.name || `outbound_${name}`)],
          transportSocket: serverTls(m.server.tls ?? {}),
          ...CONNECT_TIMEOUT,
        }));
    if (filterChains.length === 0) continue;
    listeners.push({
      name,
      address: { socketAddress: { address: bind, portValue: port.number } },
      filterChains,
      ...(isHttp(port.protocol) ? {} : { listenerFilters: [TLS_INSPECTOR] }),
      trafficDirection: TrafficDirection.OUTBOUND,
      maxConnectionsToAcceptPerSocketEvent: 1,
    });
  }
  return withAccessLogs(listeners, accessLogsFor(push, proxy, "SERVER"), accessLogsFor(push, proxy, "SERVER"));
}

const TLS_INSPECTOR = {
  name: "envoy.filters.listener.tls_inspector",
  typedConfig: pack(TlsInspector, { initialReadBufferSize: 512 }),
};

/** The suffix of a credential's CA resource (`kubernetes://<name>-cacert`). */
export const CA_SUFFIX = "-cacert";

/**
 * A Gateway's servers no gateway gets a filter chain for, with why, for istiod's log: TLS
 * passthrough, ISTIO_MUTUAL, TLS and TCP servers (not yet), and, while istiod cannot read
 * Secrets (`secretsRead` false), HTTPS servers too.
 */
export function unservedServers(gateway: IstioGateway, secretsRead: boolean): string[] {
  const what = (s: GatewayServer) =>
    `server ${s.port?.name ?? ""} (port ${s.port?.number}, ${s.port?.protocol}${s.tls?.mode ? `, ${s.tls.mode}` : ""})`;
  return (gateway.spec?.servers ?? []).flatMap((s) => {
    if (!servable(s)) return [`${what(s)}: only HTTP and HTTPS with a credentialName (SIMPLE, MUTUAL) are served yet`];
    if (!isHttp(protocolOf(s)) && !secretsRead)
      return [
        `${what(s)}: istiod cannot read Secrets (yet, or not allowed: its istiod-credentials binding), so this server gets no listener`,
      ];
    return [];
  });
}

/** `a` is covered by `b` (upstream's host.Name SubsetOf). */
function subsetOf(a: string, b: string): boolean {
  const aw = a.startsWith("*");
  const bw = b.startsWith("*");
  if (aw) return bw && a.length >= b.length && a.slice(1).endsWith(b.slice(1));
  if (bw) return a.endsWith(b.slice(1));
  return a === b;
}

/** Hosts both name, the narrower of each pair (upstream's Names.Intersection). */
function intersect(serverHosts: string[], vsHosts: string[]): string[] {
  const out: string[] = [];
  for (const s of serverHosts)
    for (const v of vsHosts) {
      const pick = subsetOf(s, v) ? s : subsetOf(v, s) ? v : undefined;
      if (pick !== undefined && !out.includes(pick)) out.push(pick);
    }
  return out;
}

/** A server's hosts that VirtualServices of `namespace` may serve (upstream's NamesForNamespace). */
function hostsForNamespace(hosts: string[], namespace: string): string[] {
  return hosts.flatMap((h) => {
    const slash = h.indexOf("/");
    if (slash < 0) return [h];
    const ns = h.slice(0, slash);
    return ns === namespace || ns === "*" ? [h.slice(slash + 1)] : [];
  });
}

const catchAll = (r: Route) =>
  (r.match?.prefix === "/" || r.match?.pathSeparatedPrefix === "/" || r.match?.safeRegex?.regex === ".*") &&
  !r.match?.headers?.length &&
  !r.match?.queryParameters?.length &&
  !r.match?.dynamicMetadata?.length;

/** A gateway's route configuration (`http.<port>` or an HTTPS server's), as upstream's buildGatewayHTTPRouteConfig. */
export function gatewayRouteConfiguration(push: PushContext, proxy: MeshProxy, name: string): RouteConfiguration {
  const empty: RouteConfiguration = { name, virtualHosts: [], validateClusters: false };
  const servers = mergeGateways(push, proxy)?.byRouteName.get(name);
  if (!servers?.length) return empty;
  const routesByVs = new Map<string, Route[]>();
  const vhosts = new Map<string, VirtualHost & { routes: Route[] }>();
  const bound = new Map<string, VirtualService[]>();
  for (const { server, gateway } of servers) {
    const port = server.port?.number ?? 0;
    let virtualServices = bound.get(gateway);
    if (!virtualServices) {
      virtualServices = gatewayVirtualServices(push, proxy.namespace, gateway);
      bound.set(gateway, virtualServices);
    }
    for (const vs of virtualServices) {
      const namespace = vs.metadata?.namespace ?? "default";
      const vsHosts = (vs.spec?.hosts ?? []).map((h) => resolveHost(h, namespace, push.registry.domainSuffix));
      const common = intersect(hostsForNamespace(server.hosts ?? [], namespace), vsHosts);
      if (common.length === 0) continue;
      const vsKey = `${gateway}|${vs.metadata?.name}/${namespace}`;
      let routes = routesByVs.get(vsKey);
      if (!routes) {
        routes = virtualServiceRoutes(vs, gatewayRouteContext(push, proxy, vs, port, gateway));
        routesByVs.set(vsKey, routes);
      }
      for (const raw of common) {
        const hostname = raw.toLowerCase();
        const existing = vhosts.get(hostname);
        if (existing) {
          existing.routes.push(...routes);
          if (server.tls?.httpsRedirect) existing.requireTls = VirtualHost_TlsRequirementType.ALL;
        } else
          vhosts.set(hostname, {
            name: `${hostname}:${port}`,
            domains: [hostname],
            routes: [...routes],
            includeRequestAttemptCount: true,
            ...(server.tls?.httpsRedirect ? { requireTls: VirtualHost_TlsRequirementType.ALL } : {}),
          });
      }
    }
    // Redirected hosts no VirtualService serves still answer, with the redirect to https.
    if (server.tls?.httpsRedirect)
      for (const raw of server.hosts ?? []) {
        const hostname = raw.toLowerCase();
        const existing = vhosts.get(hostname);
        if (existing) existing.requireTls = VirtualHost_TlsRequirementType.ALL;
        else
          vhosts.set(hostname, {
            name: `${hostname}:${port}`,
            domains: [hostname],
            routes: [],
            includeRequestAttemptCount: true,
            requireTls: VirtualHost_TlsRequirementType.ALL,
          });
      }
  }
  let virtualHosts: VirtualHost[];
  if (vhosts.size === 0) {
    const port = servers[0]?.server.port?.number ?? 0;
    virtualHosts = [{ name: `blackhole:${port}`, domains: ["*"], routes: [] }];
  } else {
    // Hosts with the very same routes share one virtual host (named by the first, alphabetically).
    const collapsed: (VirtualHost & { routes: Route[] })[] = [];
    for (const hostname of [...vhosts.keys()].sort()) {
      const vh = vhosts.get(hostname) as VirtualHost & { routes: Route[] };
      const same = collapsed.find(
        (c) =>
          c.requireTls === vh.requireTls && c.routes.length === vh.routes.length && c.routes.every((r, i) => r === vh.routes[i]),
      );
      if (same) same.domains = [...(same.domains ?? []), ...(vh.domains ?? [])];
      else collapsed.push(vh);
    }
    virtualHosts = collapsed.map((vh) => ({
      ...vh,
      // Catch-all routes last (upstream's SortVHostRoutes).
      routes: [...vh.routes.filter((r) => !catchAll(r)), ...vh.routes.filter(catchAll)],
    }));
    virtualHosts.sort((a, b) => ((a.name ?? "") < (b.name ?? "") ? -1 : (a.name ?? "") > (b.name ?? "") ? 1 : 0));
  }
  return {
    name,
    virtualHosts,
    validateClusters: false,
    maxDirectResponseBodySizeBytes: 1024 * 1024,
    ignorePortInHostMatching: true,
  };
}
