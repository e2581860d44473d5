// istiod's debug views of xDS, as upstream serves them: /debug/syncz (every connected proxy and,
// per type, the last response sent, acknowledged and rejected) and /debug/config_dump?proxyID=
// (what the proxy is being sent, as an Envoy admin ConfigDump in proto3 JSON, which
// `istioctl proxy-config <kind> -f dump.json` and `rigger proxy-config` read).

import { ConfigDump } from "../envoy/third_party/envoy/admin/v3/config_dump.ts";
import {
  ClustersConfigDump,
  EndpointsConfigDump,
  ListenersConfigDump,
  RoutesConfigDump,
} from "../envoy/third_party/envoy/admin/v3/config_dump_shared.ts";
import { pack, TypeUrl, toJson } from "../envoy/types.ts";
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

/** GET /debug/<what>: the JSON answer, or undefined for a path that is not ours (404). */
export function debugView(
  connections: Connection[],
  path: string,
  query: URLSearchParams,
): { status: number; body: unknown } | undefined {
  if (path === "/debug/syncz") return { status: 200, body: syncz(connections) };
  if (path === "/debug/config_dump") {
    const id = query.get("proxyID");
    if (!id) return { status: 400, body: { error: "give the proxy as ?proxyID=<pod>.<namespace>" } };
    const connection = connections.find((c) => c.proxy.id === id || c.id === id);
    if (!connection) return { status: 404, body: { error: `no proxy ${id} is connected to this istiod` } };
    return { status: 200, body: configDump(connection) };
  }
  return undefined;
}
