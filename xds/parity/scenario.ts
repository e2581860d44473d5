// Parity scenarios (scenarios/*.yaml): Kubernetes objects and Istio config as YAML, and the
// proxies to generate for. rigger() runs Rigger's generators on one; the oracle program
// (upstream/main.go) runs upstream's on the same; normalize() makes the two comparable.
import { readFileSync } from "node:fs";
import { parse, parseAllDocuments } from "yaml";
import { Cluster } from "../envoy/third_party/envoy/config/cluster/v3/cluster.ts";
import { ClusterLoadAssignment } from "../envoy/third_party/envoy/config/endpoint/v3/endpoint.ts";
import { Listener } from "../envoy/third_party/envoy/config/listener/v3/listener.ts";
import { RouteConfiguration } from "../envoy/third_party/envoy/config/route/v3/route.ts";
import { toJson } from "../envoy/types.ts";
import { gatewayClusterEntries, sidecarClusters } from "../generate/clusters.ts";
import { DEFAULT_MESH, meshSettings, type PushContext } from "../generate/context.ts";
import { type KubeObject, pushContextFromObjects } from "../generate/from-objects.ts";
import { gatewayListeners, gatewayRouteConfiguration } from "../generate/gateway.ts";
import { grpcClusters, grpcListeners, grpcRoute } from "../generate/grpc.ts";
import { proxyLoadAssignment } from "../generate/index.ts";
import { sidecarListeners } from "../generate/listeners.ts";
import { routeConfiguration } from "../generate/routes.ts";
import { type MeshProxy, parseNode } from "../proxy.ts";

export interface ProxySpec {
  name: string;
  namespace: string;
  ip: string;
  serviceAccount: string;
  labels: Record<string, string>;
  istioVersion?: string;
  /** "grpc": a proxyless gRPC client or server (node metadata GENERATOR=grpc). */
  generator?: "grpc";
  /** For a gRPC proxy, the listener names it asks for (clients `host:port`, servers the inbound form). */
  listeners?: string[];
  /** "router": a gateway pod; else a sidecar. */
  type?: "router";
}

export interface Scenario {
  proxies: ProxySpec[];
  config: string;
  kubernetes: string;
  /** MeshConfig YAML over the defaults (istiod's mesh ConfigMap). */
  mesh?: string;
}

/** What one proxy is sent, each resource as proto3 JSON with every Any unpacked. */
export interface ProxyConfig {
  clusters: Record<string, unknown>[];
  listeners: Record<string, unknown>[];
  routes: Record<string, unknown>[];
  endpoints: Record<string, unknown>[];
}

export function readScenario(path: string): Scenario {
  return parse(readFileSync(path, "utf8")) as Scenario;
}

export function rigger(scenario: Scenario): Record<string, ProxyConfig> {
  const objects = [scenario.kubernetes, scenario.config ?? ""]
    .flatMap((text) => parseAllDocuments(text).map((d) => d.toJSON() as KubeObject | null))
    .filter((o): o is KubeObject => Boolean(o));
  const mesh = { ...DEFAULT_MESH, ...meshSettings((parse(scenario.mesh ?? "") as object | null) ?? {}) };
  const push = pushContextFromObjects(objects, mesh);
  const out: Record<string, ProxyConfig> = {};
  for (const spec of scenario.proxies) {
    const proxy = parseNode({
      id: `${spec.type ?? "sidecar"}~${spec.ip}~${spec.name}.${spec.namespace}~${spec.namespace}.svc.cluster.local`,
      metadata: {
        NAMESPACE: spec.namespace,
        SERVICE_ACCOUNT: spec.serviceAccount,
        LABELS: spec.labels,
        ISTIO_VERSION: spec.istioVersion ?? "1.27.9",
        CLUSTER_ID: "Kubernetes",
        ...(spec.generator ? { GENERATOR: spec.generator } : {}),
      },
    });
    if (spec.generator === "grpc") {
      out[proxy.id] = grpcConfig(push, proxy, spec.listeners ?? []);
      continue;
    }
    const router = proxy.type === "router";
    const clusters = router ? gatewayClusterEntries(push, proxy).map((e) => e.build()) : sidecarClusters(push, proxy);
    const listeners = router ? gatewayListeners(push, proxy) : sidecarListeners(push, proxy);
    const routeNames = new Set<string>();
    const json = JSON.stringify(listeners.map((l) => toJson(Listener, l)));
    for (const match of json.matchAll(/"routeConfigName":"([^"]+)"/g)) if (match[1]) routeNames.add(match[1]);
    out[proxy.id] = {
      clusters: clusters.map((c) => toJson(Cluster, c) as Record<string, unknown>),
      listeners: listeners.map((l) => toJson(Listener, l) as Record<string, unknown>),
      routes: [...routeNames]
        .flatMap((name) => {
          const r = router ? gatewayRouteConfiguration(push, proxy, name) : routeConfiguration(push, proxy, name);
          return r ? [r] : [];
        })
        .map((r) => toJson(RouteConfiguration, r) as Record<string, unknown>),
      endpoints: clusters
        .filter((c) => c.edsClusterConfig)
        .flatMap((c) => {
          const a = proxyLoadAssignment(push, proxy, c.name ?? "").build();
          return a ? [a] : [];
        })
        .map((a) => toJson(ClusterLoadAssignment, a) as Record<string, unknown>),
    };
  }
  return out;
}

/**
 * What a gRPC client asks for, one step after another as grpc-go does: the listeners named,
 * the route configurations those name, the clusters the routes name, their load assignments.
 */
function grpcConfig(push: PushContext, proxy: MeshProxy, listenerNames: string[]): ProxyConfig {
  const listeners = grpcListeners(push, proxy, new Set(listenerNames)).map((l) => toJson(Listener, l) as Record<string, unknown>);
  const routeNames = new Set([...JSON.stringify(listeners).matchAll(/"routeConfigName":"([^"]+)"/g)].map((m) => m[1] ?? ""));
  const routes = [...routeNames].flatMap((name) => {
    const r = grpcRoute(push, proxy, name);
    return r ? [toJson(RouteConfiguration, r) as Record<string, unknown>] : [];
  });
  type Routes = {
    virtualHosts?: { routes?: { route?: { cluster?: string; weightedClusters?: { clusters?: { name?: string }[] } } }[] }[];
  }[];
  const clusterNames = new Set<string>();
  for (const r of routes as Routes)
    for (const vh of r.virtualHosts ?? [])
      for (const route of vh.routes ?? []) {
        if (route.route?.cluster) clusterNames.add(route.route.cluster);
        for (const w of route.route?.weightedClusters?.clusters ?? []) if (w.name) clusterNames.add(w.name);
      }
  const clusters = grpcClusters(push, proxy, clusterNames);
  return {
    listeners,
    routes,
    clusters: clusters.map((c) => toJson(Cluster, c) as Record<string, unknown>),
    endpoints: clusters.flatMap((c) => {
      const a = proxyLoadAssignment(push, proxy, c.name ?? "").build();
      return a ? [toJson(ClusterLoadAssignment, a) as Record<string, unknown>] : [];
    }),
  };
}

/** Sorted by name, versions dropped: the form both sides are compared in. */
export function normalize(config: ProxyConfig): ProxyConfig {
  const byName = (key: string) => (a: Record<string, unknown>, b: Record<string, unknown>) =>
    String(a[key] ?? "").localeCompare(String(b[key] ?? ""));
  return {
    clusters: [...config.clusters].sort(byName("name")),
    listeners: [...config.listeners].sort(byName("name")),
    routes: [...config.routes].sort(byName("name")),
    endpoints: [...config.endpoints].sort(byName("clusterName")),
  };
}
