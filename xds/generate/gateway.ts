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
// - HTTPS and TLS servers with ISTIO_MUTUAL: the gateway's own mesh certificate (from its agent),
//   clients' mesh certificates required.
// - Other non-HTTP servers (upstream's buildGatewayTCPBasedFilterChains): a TCP server (no
//   `tls`) takes the first TCP rule of its bound VirtualServices that matches it (port,
//   gateways); a TLS server terminated here does the same behind its TLS, matched by SNI; a
//   PASSTHROUGH server (TLS or HTTPS) gets a chain per matching TLS rule match, on its SNI names
//   (a name already taken on the port leaves that match out). Each TCP chain: the peer exchange
//   under ISTIO_MUTUAL, the gateway's authorization filters, a TCP proxy to the rule's clusters.
//
// Not served, and istiod says so: AUTO_PASSTHROUGH (multi-network east-west gateways) and TLS
// terminated with certificate files on the gateway instead of a credentialName.
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
import { authorizationFilters } from "./authorization.ts";
import { sdsSecret } from "./clusters.ts";
import { oldestFirst, type PushContext, serviceTargets } from "./context.ts";
import { credentialsReady } from "./gateway-secrets.ts";
import { CONNECT_TIMEOUT, httpConnectionManager, networkMetadataExchange, routedChain } from "./listeners.ts";
import { gatewayRouteContext } from "./routes.ts";
import { destinations } from "./tcp-routes.ts";
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
export const credentialResource = (credentialName: string) =>
  credentialName.includes("://") ? credentialName : `kubernetes://${credentialName}`;

/**
 * A terminating server's TLS (upstream's BuildListenerTLSContext): SIMPLE, MUTUAL and
 * OPTIONAL_MUTUAL with the credentialName's certificate (and CA) from istiod; ISTIO_MUTUAL with
 * the gateway's own mesh certificate and root from its agent, clients' certificates required.
 * `tcp`: a TLS server terminated into TCP routes (ISTIO_MUTUAL then offers Istio's peer exchange).
 */
function serverTls(tls: ServerTls, tcp: boolean): FilterChain["transportSocket"] {
  const sans = Array.isArray(tls.subjectAltNames) ? (tls.subjectAltNames as string[]) : [];
  const matchSans = sans.length > 0 ? { matchSubjectAltNames: sans.map((exact) => ({ exact })) } : {};
  if (tls.mode === "ISTIO_MUTUAL")
    return {
      name: "envoy.transport_sockets.tls",
      typedConfig: pack(DownstreamTlsContext, {
        commonTlsContext: {
          tlsCertificateSdsSecretConfigs: [sdsSecret("default")],
          combinedValidationContext: {
            defaultValidationContext: matchSans,
            validationContextSdsSecretConfig: sdsSecret("ROOTCA"),
          },
          alpnProtocols: tcp ? ["istio-peer-exchange", "h2", "http/1.1"] : ["h2", "http/1.1"],
        },
        requireClientCertificate: true,
      }),
    };
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
  return {
    name: "envoy.transport_sockets.tls",
    typedConfig: pack(DownstreamTlsContext, {
      commonTlsContext: {
        ...(Object.keys(tlsParams).length > 0 ? { tlsParams } : {}),
        tlsCertificateSdsSecretConfigs: [adsSecret(credential)],
        ...(validate
          ? {
              combinedValidationContext: {
                defaultValidationContext: matchSans,
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

/** SNI names to match: sorted, each once; none when one is `*` (it matches anything: upstream's toFilterChainMatch). */
function serverNames(hosts: string[]): string[] {
  const names = [...new Set(hosts)].sort();
  return names.includes("*") ? [] : names;
}

/** A server's SNI hosts: its hosts without namespaces (upstream's GetSNIHostsForServer). */
function sniHosts(server: GatewayServer): string[] {
  return serverNames((server.hosts ?? []).map((h) => (h.includes("/") ? h.slice(h.indexOf("/") + 1) : h)));
}

const TERMINATING = ["SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL"];

/**
 * Why a server cannot be served at all (whatever the Secrets), or undefined: AUTO_PASSTHROUGH
 * (multi-network east-west gateways), TLS terminated with files on the gateway
 * (serverCertificate) instead of a credentialName.
 */
function unservable(s: GatewayServer): string | undefined {
  if (isHttp(protocolOf(s)) || !s.tls) return undefined;
  const mode = String(s.tls.mode ?? "PASSTHROUGH");
  if (mode === "AUTO_PASSTHROUGH") return "AUTO_PASSTHROUGH (multi-network gateways) is not served";
  if (TERMINATING.includes(mode) && !s.tls.credentialName)
    return `${mode} without a credentialName (certificates as files on the gateway) is not served: name a Secret`;
  return undefined;
}

/** Whether a server's certificates are ready for this gateway (only credentialName ones can be missing). */
const certificatesReady = (push: PushContext, proxy: MeshProxy, s: GatewayServer) =>
  !TERMINATING.includes(String(s.tls?.mode ?? "")) || credentialsReady(push, proxy, s);

/** `a` and `b` overlap (one covers the other: upstream's host.Name Matches). */
const overlaps = (a: string, b: string) => subsetOf(a, b) || subsetOf(b, a);

/** The VirtualServices bound to a server's Gateway that share a host with it (upstream's pickMatchingGatewayHosts). */
function boundWithHosts(push: PushContext, proxy: MeshProxy, m: MergedServer): VirtualService[] {
  return gatewayVirtualServices(push, proxy.namespace, m.gateway).filter((vs) =>
    (vs.spec?.hosts ?? []).some((vh) =>
      (m.server.hosts ?? []).some((gh) => {
        const slash = gh.indexOf("/");
        if (slash >= 0 && gh.slice(0, slash) !== (vs.metadata?.namespace ?? "default")) return false;
        return overlaps(slash >= 0 ? gh.slice(slash + 1) : gh, vh);
      }),
    ),
  );
}

/** A TCP or TLS match for this server: its port (the server's) and gateways (the server's Gateway), when it names them. */
const l4Matches = (match: { port?: number; gateways?: string[] }, m: MergedServer) =>
  (!match.port || match.port === m.server.port?.number) && (!match.gateways?.length || match.gateways.includes(m.gateway));

/** The network filters to where a rule sends connections: peer exchange (ISTIO_MUTUAL), authorization, the TCP proxy. */
function gatewayTcpFilters(
  push: PushContext,
  proxy: MeshProxy,
  vs: VirtualService,
  route: Parameters<typeof destinations>[2],
  m: MergedServer,
) {
  const destination = destinations(push, vs, route, m.server.port?.number ?? 0);
  return [
    ...(m.server.tls?.mode === "ISTIO_MUTUAL" ? networkMetadataExchange(proxy) : []),
    ...authorizationFilters(push, proxy).tcp,
    ...(routedChain(push, proxy, destination).filters ?? []),
  ];
}

/** The first TCP rule of the bound VirtualServices that matches the server (upstream's buildGatewayNetworkFiltersFromTCPRoutes). */
function tcpRouteFilters(push: PushContext, proxy: MeshProxy, m: MergedServer) {
  for (const vs of boundWithHosts(push, proxy, m))
    for (const rule of vs.spec?.tcp ?? [])
      if (!rule.match?.length || rule.match.some((match) => l4Matches(match, m)))
        return rule.route?.length ? gatewayTcpFilters(push, proxy, vs, rule.route, m) : undefined;
  return undefined;
}

/**
 * A passthrough server's chains: one per TLS match of the bound VirtualServices for this
 * server, on its SNI names; a match naming an SNI name already taken on the port (same bind) is
 * left out (upstream's buildGatewayNetworkFiltersFromTLSRoutes and CheckDuplicates).
 */
function tlsRouteChains(push: PushContext, proxy: MeshProxy, m: MergedServer, taken: Map<string, string>): FilterChain[] {
  const bind = m.server.bind ?? "";
  const chains: FilterChain[] = [];
  for (const vs of boundWithHosts(push, proxy, m))
    for (const rule of vs.spec?.tls ?? [])
      for (const match of rule.match ?? []) {
        if (!l4Matches(match, m)) continue;
        const hosts = match.sniHosts ?? [];
        if (hosts.some((h) => taken.get(h) === bind)) continue;
        for (const h of hosts) taken.set(h, bind);
        const names = serverNames(hosts);
        chains.push({
          filterChainMatch: names.length > 0 ? { serverNames: names } : {},
          filters: gatewayTcpFilters(push, proxy, vs, rule.route ?? [], m),
          ...CONNECT_TIMEOUT,
        });
      }
  return chains;
}

/** The filter chains one server of a non-HTTP port gets (upstream's buildGatewayTCPBasedFilterChains). */
function serverChains(
  push: PushContext,
  proxy: MeshProxy,
  m: MergedServer,
  taken: Map<string, string>,
  listenerName: string,
): FilterChain[] {
  const server = m.server;
  if (unservable(server) || !certificatesReady(push, proxy, server)) return [];
  if (isHttpServer(server)) {
    const names = sniHosts(server);
    return [
      {
        filterChainMatch: names.length > 0 ? { serverNames: names } : {},
        filters: [
          httpConnectionManager(push, proxy, server.name || `outbound_${listenerName}`, { rds: m.routeName }, false, true),
        ],
        transportSocket: serverTls(server.tls ?? {}, false),
        ...CONNECT_TIMEOUT,
      },
    ];
  }
  if (isPassthrough(server)) return tlsRouteChains(push, proxy, m, taken);
  const filters = tcpRouteFilters(push, proxy, m);
  if (!filters) return [];
  if (!server.tls) return [{ filters, ...CONNECT_TIMEOUT }];
  const names = sniHosts(server);
  return [
    {
      filterChainMatch: names.length > 0 ? { serverNames: names } : {},
      filters,
      transportSocket: serverTls(server.tls, true),
      ...CONNECT_TIMEOUT,
    },
  ];
}

/** The gateway's listeners: one per merged port; HTTP servers share an HTTP connection manager, the others get chains of their own. */
export function gatewayListeners(push: PushContext, proxy: MeshProxy): Listener[] {
  const merged = mergeGateways(push, proxy);
  if (!merged) return [];
  const byName = new Map<string, Listener>();
  // SNI names passthrough chains took, per listener port (with their bind).
  const taken = new Map<number, Map<string, string>>();
  for (const port of merged.ports) {
    const bind = port.bind || "0.0.0.0";
    const name = `${bind}_${port.number}`;
    let filterChains: FilterChain[];
    if (isHttp(port.protocol))
      filterChains = [
        {
          filters: [httpConnectionManager(push, proxy, `outbound_${name}`, { rds: port.routeName }, false, true)],
          ...CONNECT_TIMEOUT,
        },
      ];
    else {
      const known = taken.get(port.number) ?? new Map<string, string>();
      taken.set(port.number, known);
      filterChains = port.servers.flatMap((m) => serverChains(push, proxy, m, known, name));
    }
    // Servers of several protocols on one port (HTTPS and TLS) share its listener.
    const listener = byName.get(name) ?? {
      name,
      address: { socketAddress: { address: bind, portValue: port.number } },
      filterChains: [],
      trafficDirection: TrafficDirection.OUTBOUND,
      maxConnectionsToAcceptPerSocketEvent: 1,
    };
    byName.set(name, listener);
    listener.filterChains?.push(...filterChains);
  }
  const listeners = [...byName.values()]
    .filter((l) => (l.filterChains?.length ?? 0) > 0)
    .map((l) => {
      // A TLS inspector when a chain matches SNI names or terminates TLS (upstream's buildGatewayListener).
      const inspect = (l.filterChains ?? []).some((c) => (c.filterChainMatch?.serverNames?.length ?? 0) > 0 || c.transportSocket);
      return inspect ? { ...l, listenerFilters: [TLS_INSPECTOR] } : l;
    });
  return withAccessLogs(listeners, accessLogsFor(push, proxy, "SERVER"), accessLogsFor(push, proxy, "SERVER"));
}

const TLS_INSPECTOR = {
  name: "envoy.filters.listener.tls_inspector",
  typedConfig: pack(TlsInspector, { initialReadBufferSize: 512 }),
};

/** The suffix of a credential's CA resource (`kubernetes://<name>-cacert`). */
export const CA_SUFFIX = "-cacert";

/**
 * A Gateway's servers no gateway gets a filter chain for, with why, for istiod's log: those
 * never served (unservable), and, while istiod cannot read Secrets (`secretsRead` false), those
 * terminating TLS with a credentialName.
 */
export function unservedServers(gateway: IstioGateway, secretsRead: boolean): string[] {
  const what = (s: GatewayServer) =>
    `server ${s.port?.name ?? ""} (port ${s.port?.number}, ${s.port?.protocol}${s.tls?.mode ? `, ${s.tls.mode}` : ""})`;
  return (gateway.spec?.servers ?? []).flatMap((s) => {
    const why = unservable(s);
    if (why) return [`${what(s)}: ${why}`];
    if (TERMINATING.includes(String(s.tls?.mode ?? "")) && !secretsRead)
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
