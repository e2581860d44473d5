// RDS for a sidecar: route configuration `<port>` for each outbound HTTP listener, a virtual
// host per Service with an HTTP (or sniffed) port of that number, answering to every name the
// Service goes by from the proxy's namespace (the short forms only in its own namespace), and,
// under ALLOW_ANY, a catch-all host that passes unknown names through.
import type { RouteConfiguration } from "../envoy/third_party/envoy/config/route/v3/route.ts";
import type { VirtualHost } from "../envoy/third_party/envoy/config/route/v3/route_components.ts";
import { PreviousHostsPredicate } from "../envoy/third_party/envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.ts";
import { pack } from "../envoy/types.ts";
import { isProxylessGrpc, type MeshProxy } from "../proxy.ts";
import { isHttp, isSniffed } from "../registry/protocol.ts";
import type { MeshService } from "../registry/registry.ts";
import { outboundClusterName, PASSTHROUGH_CLUSTER, type PushContext } from "./context.ts";
import { consistentHashFor, destinationRuleFor, hashPolicy, portPolicy, rulesSelectWorkloads } from "./destination-rule.ts";
import { sidecarScope } from "./sidecar-scope.ts";
import { type RouteContext, resolveHost, type VirtualService, virtualServiceRoutes } from "./virtual-service.ts";
import { virtualServiceFor, visibleVirtualServices } from "./virtual-service-scope.ts";

/**
 * The names a Service answers to from a proxy in `namespace`. An Envoy ignores the port in Host
 * (the route configuration says so); a proxyless gRPC client does not, so with `port` each name
 * comes with its `name:port` form too.
 */
export function serviceDomains(service: MeshService, namespace: string, port?: number): string[] {
  const names: string[] = [];
  const add = (...domains: string[]) => {
    for (const d of domains) names.push(...(port ? [d, `${d}:${port}`] : [d]));
  };
  add(service.hostname, `${service.hostname}.`);
  // A ServiceEntry host has no short forms.
  if (service.origin === "ServiceEntry") {
    if (service.clusterIp) add(service.clusterIp);
    return names;
  }
  const short = `${service.name}.${service.namespace}`;
  // Upstream's order: the bare name first in the Service's own namespace, else name.namespace first.
  if (service.namespace === namespace) add(service.name, `${short}.svc`, short);
  else add(short, `${short}.svc`);
  if (service.clusterIp) add(service.clusterIp);
  // A headless Service's pods are also reached by their own names (<pod>.<service>...).
  else if (service.resolution === "NONE") names.push(...names.map((n) => `*.${n}`));
  return names;
}

/**
 * Upstream's default outbound retry policy (meshConfig's defaultHttpRetryPolicy unset); under a
 * consistent hash, without the predicate that sends retries to other hosts.
 */
function defaultRetryPolicy(hashed = false) {
  return {
    retryOn: "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
    numRetries: 2,
    ...(hashed
      ? {}
      : {
          retryHostPredicate: [
            { name: "envoy.retry_host_predicates.previous_hosts", typedConfig: pack(PreviousHostsPredicate, {}) },
          ],
        }),
    hostSelectionRetryMaxAttempts: 5,
  };
}

const sourceMatching = new WeakMap<PushContext, boolean>();

/**
 * Whether some VirtualService matches on the caller's labels, or some DestinationRule selects
 * workloads: then route configurations differ between proxies of one namespace (and are cached
 * per label set).
 */
export function routesDependOnLabels(push: PushContext): boolean {
  let uses = sourceMatching.get(push);
  if (uses === undefined) {
    // Rules for some workloads only can give routes their hash policies.
    uses =
      rulesSelectWorkloads(push) ||
      (push.virtualServices ?? []).some((vs) =>
        (vs.spec?.http ?? []).some((rule) =>
          (rule.match ?? []).some((m) => m.sourceLabels && Object.keys(m.sourceLabels).length > 0),
        ),
      );
    sourceMatching.set(push, uses);
  }
  return uses;
}

/** How a gateway's server on `port` of Gateway `gateway` (`<namespace>/<name>`) routes with `vs`. */
export function gatewayRouteContext(
  push: PushContext,
  proxy: MeshProxy,
  vs: VirtualService,
  port: number,
  gateway: string,
): RouteContext {
  return { ...routeContext(push, proxy, vs, port), gateways: new Set([gateway]) };
}

function routeContext(push: PushContext, proxy: MeshProxy, vs: VirtualService, port: number): RouteContext {
  return {
    namespace: vs.metadata?.namespace ?? "default",
    domainSuffix: push.registry.domainSuffix,
    listenPort: port,
    lookup: (host) => push.registry.byHostname.get(host),
    defaultRetry: defaultRetryPolicy,
    hashPolicy: (target, subset, targetPort) => hashPolicy(consistentHashFor(push, proxy, target, subset, targetPort)),
    proxyLabels: proxy.labels,
    proxyNamespace: proxy.namespace,
    proxyless: isProxylessGrpc(proxy),
  };
}

/** The routes `vs` gives a proxy's listener on `port`. */
function routesOf(push: PushContext, proxy: MeshProxy, vs: VirtualService, port: number) {
  return virtualServiceRoutes(vs, routeContext(push, proxy, vs, port));
}

function virtualHost(push: PushContext, service: MeshService, port: number, proxy: MeshProxy): VirtualHost {
  const namespace = proxy.namespace;
  const proxyless = isProxylessGrpc(proxy);
  const domains = serviceDomains(service, namespace, proxyless ? port : undefined);
  const cluster = outboundClusterName(port, service.hostname);
  const vs = virtualServiceFor(push, service.hostname, namespace);
  if (vs)
    return {
      name: `${service.hostname}:${port}`,
      domains,
      routes: routesOf(push, proxy, vs, port),
      includeRequestAttemptCount: true,
    };
  // Upstream's hashForService: the rule's (or the port's) consistent hash, never a subset's.
  const applied = destinationRuleFor(push, proxy, service);
  const level = applied && portPolicy(applied.trafficPolicy, port);
  const hash = hashPolicy(
    (level?.portLevel ? level.policy?.loadBalancer?.consistentHash : undefined) ??
      applied?.trafficPolicy?.loadBalancer?.consistentHash,
  );
  return {
    name: `${service.hostname}:${port}`,
    domains,
    routes: [
      {
        name: "default",
        match: { prefix: "/" },
        route: {
          cluster,
          timeout: { seconds: 0 },
          retryPolicy: defaultRetryPolicy(),
          maxGrpcTimeout: { seconds: 0 },
          ...(hash ? { hashPolicy: [hash] } : {}),
        },
        decorator: { operation: `${service.hostname}:${port}/*` },
      },
    ],
    includeRequestAttemptCount: true,
  };
}

/**
 * Route configuration `<port>` (every Service with an HTTP port of that number, then the
 * catch-all) or `<hostname>:<port>` (one Service's sniffed port, whatever Host is asked for).
 */
export function routeConfiguration(push: PushContext, proxy: MeshProxy, name: string): RouteConfiguration | undefined {
  const base = { validateClusters: false, maxDirectResponseBodySizeBytes: 1048576, ignorePortInHostMatching: true };
  const colon = name.lastIndexOf(":");
  if (colon > 0) {
    const service = push.registry.byHostname.get(name.slice(0, colon));
    const port = Number(name.slice(colon + 1));
    if (!service?.ports.some((p) => p.port === port && isSniffed(p.protocol))) return undefined;
    return { name, virtualHosts: [{ ...virtualHost(push, service, port, proxy), domains: ["*"] }], ...base };
  }
  const port = Number(name);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) return undefined;
  const hosts = serviceVirtualHosts(push, proxy, port);
  const scope = sidecarScope(push, proxy);
  // Unknown hosts: passed through (ALLOW_ANY), or answered 502 at once (REGISTRY_ONLY), as upstream.
  const allowAny = scope.outboundTrafficPolicy === "ALLOW_ANY";
  hosts.push({
    name: allowAny ? "allow_any" : "block_all",
    domains: ["*"],
    routes: [
      allowAny
        ? {
            name: "allow_any",
            match: { prefix: "/" },
            route: { cluster: PASSTHROUGH_CLUSTER, timeout: { seconds: 0 }, maxGrpcTimeout: { seconds: 0 } },
          }
        : { name: "block_all", match: { prefix: "/" }, directResponse: { status: 502 } },
    ],
    includeRequestAttemptCount: true,
  });
  return { name, virtualHosts: hosts, ...base };
}

/**
 * The virtual hosts of the services a proxy sees on `port` (HTTP or sniffed), and on port 80
 * those of VirtualService-only hosts: a sidecar's route configuration `<port>` without the
 * catch-all, and all a proxyless gRPC client's route configuration for a port holds.
 */
export function serviceVirtualHosts(push: PushContext, proxy: MeshProxy, port: number): VirtualHost[] {
  const hosts: VirtualHost[] = [];
  const scope = sidecarScope(push, proxy);
  for (const service of scope.services) {
    if (service.externalName) continue;
    if (service.ports.some((p) => p.port === port && (isHttp(p.protocol) || isSniffed(p.protocol))))
      hosts.push(virtualHost(push, service, port, proxy));
  }
  if (port === 80) hosts.push(...virtualServiceOnlyHosts(push, proxy, scope.services, hosts));
  return hosts;
}

/**
 * Upstream, on port 80 only: a VirtualService host that names no service with port 80 the proxy
 * sees (an outside name like `api.example.com`, or a wildcard matching none) gets a virtual host
 * of its own with the VirtualService's routes; a domain already taken is left out.
 */
function virtualServiceOnlyHosts(
  push: PushContext,
  proxy: MeshProxy,
  services: MeshService[],
  taken: VirtualHost[],
): VirtualHost[] {
  const onPort = services.filter((s) => s.ports.some((p) => p.port === 80));
  const domains = new Set(taken.flatMap((h) => h.domains ?? []).map((d) => d.toLowerCase()));
  const names = new Set(taken.map((h) => h.name));
  const out: VirtualHost[] = [];
  for (const vs of visibleVirtualServices(push, proxy.namespace)) {
    const hosts = (vs.spec?.hosts ?? [])
      .map((h) => resolveHost(h, vs.metadata?.namespace ?? "default", push.registry.domainSuffix).toLowerCase())
      .filter((host) =>
        host.startsWith("*")
          ? !onPort.some((s) => host === "*" || s.hostname.endsWith(host.slice(1)))
          : !onPort.some((s) => s.hostname === host),
      );
    if (hosts.length === 0) continue;
    const routes = routesOf(push, proxy, vs, 80);
    if (routes.length === 0) continue;
    for (const host of hosts) {
      const name = `${host}:80`;
      if (names.has(name) || domains.has(host)) continue;
      names.add(name);
      domains.add(host);
      out.push({ name, domains: isProxylessGrpc(proxy) ? [host, name] : [host], routes, includeRequestAttemptCount: true });
    }
  }
  return out;
}
