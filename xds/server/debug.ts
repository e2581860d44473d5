// istiod's debug views of xDS, as upstream serves them: /debug/syncz (every connected proxy and,
// per type, the last response sent, acknowledged and rejected) and /debug/config_dump?proxyID=
// (what the proxy is being sent, as an Envoy admin ConfigDump in proto3 JSON, which
// `istioctl proxy-config <kind> -f dump.json` and `rigger proxy-config` read), and
// /debug/authorizationz?proxyID= (the AuthorizationPolicies that apply to the proxy and the rules
// it could not be given, with why: what `rigger proxy-config authz` shows).

import { ConfigDump } from "../envoy/third_party/envoy/admin/v3/config_dump.ts";
import {
  ClustersConfigDump,
  EndpointsConfigDump,
  ListenersConfigDump,
  RoutesConfigDump,
} from "../envoy/third_party/envoy/admin/v3/config_dump_shared.ts";
import { pack, TypeUrl, toJson } from "../envoy/types.ts";
import { type AuthorizationPolicy, authorizationFilters, policiesFor } from "../generate/authorization.ts";
import type { PushContext } from "../generate/context.ts";
import { type Connection, typeLabel } from "./ads.ts";

export interface SyncStatus {
  proxy: string;
  connection: string;
  istioVersion: string;
  clusterId: string;
  flavour: "delta" | "sotw";
  connectedAt: string;
  /** Per type (cds, lds, rds, eds, ...): nonces sent, acknowledged and rejected, and resources held. */
  types: Record<string, { sent?: string; acked?: string; nacked?: string; resources: number; synced: boolean }>;
}

export function syncz(connections: Connection[]): SyncStatus[] {
  return connections
    .map((c) => ({
      proxy: c.proxy.id,
      connection: c.id,
      istioVersion: c.proxy.istioVersion,
      clusterId: c.proxy.clusterId,
      flavour: c.delta ? ("delta" as const) : ("sotw" as const),
      connectedAt: c.connectedAt.toISOString(),
      types: Object.fromEntries(
        c.stream.state().map((s) => [
          typeLabel(s.typeUrl),
          {
            sent: s.sent,
            acked: s.acked,
            nacked: s.nacked?.message,
            resources: s.resources,
            synced: s.sent !== undefined && s.sent === s.acked,
          },
        ]),
      ),
    }))
    .sort((a, b) => a.proxy.localeCompare(b.proxy) || a.connection.localeCompare(b.connection));
}

/** The proxy's current configuration as an Envoy ConfigDump (JSON), regenerated now. */
export function configDump(connection: Connection): unknown {
  const generate = connection.generate;
  const all = { wildcard: true, names: new Set<string>() };
  const watched = (typeUrl: string) => connection.stream.subscription(typeUrl) ?? { wildcard: false, names: new Set<string>() };
  const clusters = generate(TypeUrl.cluster, all) ?? [];
  const listeners = generate(TypeUrl.listener, all) ?? [];
  const routes = generate(TypeUrl.route, watched(TypeUrl.route)) ?? [];
  const endpoints = generate(TypeUrl.endpoint, watched(TypeUrl.endpoint)) ?? [];
  return toJson(ConfigDump, {
    configs: [
      pack(ClustersConfigDump, { dynamicActiveClusters: clusters.map((r) => ({ versionInfo: r.version, cluster: r.resource })) }),
      pack(ListenersConfigDump, {
        dynamicListeners: listeners.map((r) => ({ name: r.name, activeState: { versionInfo: r.version, listener: r.resource } })),
      }),
      pack(RoutesConfigDump, { dynamicRouteConfigs: routes.map((r) => ({ versionInfo: r.version, routeConfig: r.resource })) }),
      pack(EndpointsConfigDump, {
        dynamicEndpointConfigs: endpoints.map((r) => ({ versionInfo: r.version, endpointConfig: r.resource })),
      }),
    ],
  });
}

export interface AuthorizationView {
  proxy: string;
  /** In the order Envoy evaluates them: CUSTOM, AUDIT, DENY, then ALLOW (oldest first within each). */
  policies: { namespace: string; name: string; action: string; provider?: string; dryRun: boolean; rules: number }[];
  /** Rules the proxy could not be given, with why: an ALLOW left them out, a DENY denies more. */
  problems: string[];
}

const ORDER = ["CUSTOM", "AUDIT", "DENY", "ALLOW"];

/** What authorization a proxy gets from the current push. */
export function authorizationView(push: PushContext, connection: Connection): AuthorizationView {
  const describe = (p: AuthorizationPolicy) => ({
    namespace: p.metadata?.namespace ?? "",
    name: p.metadata?.name ?? "",
    action: p.spec?.action ?? "ALLOW",
    ...(p.spec?.action === "CUSTOM" ? { provider: p.spec?.provider?.name ?? "" } : {}),
    dryRun: p.metadata?.annotations?.["istio.io/dry-run"] === "true",
    rules: p.spec?.rules?.length ?? 0,
  });
  const policies = policiesFor(push, connection.proxy)
    .map(describe)
    .sort((a, b) => ORDER.indexOf(a.action) - ORDER.indexOf(b.action));
  return { proxy: connection.proxy.id, policies, problems: authorizationFilters(push, connection.proxy).problems };
}

/** GET /debug/<what>: the JSON answer, or undefined for a path that is not ours (404). */
export function debugView(
  connections: Connection[],
  path: string,
  query: URLSearchParams,
  push?: () => PushContext,
): { status: number; body: unknown } | undefined {
  if (path === "/debug/syncz") return { status: 200, body: syncz(connections) };
  // The per-proxy views: what the proxy named by ?proxyID= is sent.
  const views: Record<string, ((connection: Connection) => unknown) | undefined> = {
    "/debug/config_dump": configDump,
    "/debug/authorizationz": push && ((connection) => authorizationView(push(), connection)),
  };
  const view = views[path];
  if (!view) return undefined;
  const id = query.get("proxyID");
  if (!id) return { status: 400, body: { error: "give the proxy as ?proxyID=<pod>.<namespace>" } };
  const connection = connections.find((c) => c.proxy.id === id || c.id === id);
  if (!connection) return { status: 404, body: { error: `no proxy ${id} is connected to this istiod` } };
  return { status: 200, body: view(connection) };
}
