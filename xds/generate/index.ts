// Which generator answers which xDS type for a sidecar, and the encoded-resource cache: a
// resource that does not depend on the proxy asking (an outbound cluster, a load assignment,
// a route configuration for a namespace) is encoded once per push and shared by every proxy,
// as upstream's XdsCache does. Each resource's version is a hash of its bytes.
import { createHash } from "node:crypto";
import { Cluster } from "../envoy/third_party/envoy/config/cluster/v3/cluster.ts";
import { ClusterLoadAssignment } from "../envoy/third_party/envoy/config/endpoint/v3/endpoint.ts";
import { Listener } from "../envoy/third_party/envoy/config/listener/v3/listener.ts";
import { RouteConfiguration } from "../envoy/third_party/envoy/config/route/v3/route.ts";
import { Secret } from "../envoy/third_party/envoy/extensions/transport_sockets/tls/v3/secret.ts";
import { type MessageCodec, pack, TypeUrl } from "../envoy/types.ts";
import type { MeshProxy } from "../proxy.ts";
import type { Generate, Resource, Subscription } from "../server/stream.ts";
import { type ClusterEntry, gatewayClusterEntries, sidecarClusterEntries } from "./clusters.ts";
import type { PushContext } from "./context.ts";
import { destinationRuleFor, portPolicy, subsetPolicy } from "./destination-rule.ts";
import { clusterLoadAssignment, parseClusterName } from "./endpoints.ts";
import { gatewayListeners, gatewayRouteConfiguration } from "./gateway.ts";
import { credentialSecret } from "./gateway-secrets.ts";
import { grpcClusters, grpcListeners, grpcRoute } from "./grpc.ts";
import { sidecarListeners } from "./listeners.ts";
import { applyLocality, changesEndpoints, localityKey, localityPolicy, proxyLocality } from "./locality.ts";
import { routeConfiguration, routesDependOnLabels } from "./routes.ts";
import { sidecarScope } from "./sidecar-scope.ts";

function resource<T>(type: MessageCodec<T>, name: string, message: T): Resource {
  const any = pack(type, message);
  return {
    name,
    version: createHash("sha256")
      .update(any.value ?? new Uint8Array())
      .digest("base64url")
      .slice(0, 16),
    resource: any,
  };
}

/** Encoded resources of one push, shared between proxies; replaced when the push changes. */
export class ResourceCache {
  private version = -1;
  private readonly entries = new Map<string, Resource>();
  hits = 0;
  misses = 0;

  get(push: PushContext, key: string, build: () => Resource | undefined): Resource | undefined {
    if (push.version !== this.version) this.advance(push);
    const hit = this.entries.get(key);
    if (hit) {
      this.hits++;
      return hit;
    }
    this.misses++;
    const built = build();
    if (built) this.entries.set(key, built);
    return built;
  }

  /** To a new push: everything goes, or, after an endpoint-only change, what the changed services' endpoints feed. */
  private advance(push: PushContext): void {
    const incremental = push.incremental;
    if (incremental && incremental.from === this.version) {
      for (const key of this.entries.keys()) {
        if (incremental.routes && key.startsWith("rds/")) {
          this.entries.delete(key);
          continue;
        }
        const cluster = parseClusterName(key.slice(key.lastIndexOf("/") + 1));
        if (cluster && incremental.hosts.has(cluster.hostname)) this.entries.delete(key);
      }
    } else this.entries.clear();
    this.version = push.version;
  }

  get size(): number {
    return this.entries.size;
  }
}

/**
 * A cluster's load assignment as one proxy sees it: a subset's endpoints are those with its
 * labels in the DestinationRule that proxy sees, and locality load balancing ranks or weighs
 * them from the proxy's locality. `key` names what it depends on, for caching.
 */
export function proxyLoadAssignment(
  push: PushContext,
  proxy: MeshProxy,
  name: string,
): { key: string; build: () => ClusterLoadAssignment | undefined } {
  const parsed = parseClusterName(name);
  const service = parsed && push.registry.byHostname.get(parsed.hostname);
  if (!parsed || !service) return { key: "", build: () => clusterLoadAssignment(push, name) };
  const applied = push.destinationRules?.length ? destinationRuleFor(push, proxy, service) : undefined;
  // No rule: the shared assignment, unless the mesh's own locality setting distributes.
  if (!applied && !parsed.subset && !push.mesh.localityLbSetting?.distribute?.length)
    return { key: "", build: () => clusterLoadAssignment(push, name) };
  const rules = applied ? applied.from.join(",") : "";
  const subset = parsed.subset ? applied?.subsets.find((s) => s.name === parsed.subset) : undefined;
  // A subset no rule defines has no endpoints.
  if (parsed.subset && !subset) return { key: rules, build: () => ({ clusterName: name, endpoints: [] }) };
  const policy = subset
    ? subsetPolicy(applied?.trafficPolicy, subset.trafficPolicy, parsed.port)
    : portPolicy(applied?.trafficPolicy, parsed.port).policy;
  const locality = localityPolicy(policy, push.mesh.localityLbSetting);
  const build = () => clusterLoadAssignment(push, name, subset?.labels ?? (parsed.subset ? {} : undefined));
  if (!changesEndpoints(locality) || !locality) return { key: rules, build };
  const at = proxyLocality(push, proxy);
  return {
    key: `${rules}@${localityKey(at)}`,
    build: () => {
      const assignment = build();
      return assignment && applyLocality(assignment, at, locality);
    },
  };
}

/**
 * Clusters as resources: outbound ones are built and encoded once per push for every proxy with
 * the same Envoy build (Istio's filters or not); the rest are the proxy's own.
 */
function clusterResources(push: PushContext, proxy: MeshProxy, cache: ResourceCache, entries: ClusterEntry[]): Resource[] {
  return entries.map((entry) =>
    entry.shared
      ? (cache.get(push, `cds/${proxy.istioFilters}/${entry.cacheKey ?? ""}/${entry.name}`, () =>
          resource(Cluster, entry.name, entry.build()),
        ) as Resource)
      : resource(Cluster, entry.name, entry.build()),
  );
}

export function sidecarGenerator(proxy: MeshProxy, current: () => PushContext, cache: ResourceCache): Generate {
  return (typeUrl, subscription) => {
    const push = current();
    switch (typeUrl) {
      case TypeUrl.cluster:
        return clusterResources(push, proxy, cache, sidecarClusterEntries(push, proxy, subscription.only));
      case TypeUrl.listener:
        return sidecarListeners(push, proxy).map((l) => resource(Listener, l.name ?? "", l));
      case TypeUrl.route:
        return [...subscription.names].flatMap((name) => {
          const labels = routesDependOnLabels(push)
            ? Object.entries(proxy.labels)
                .sort(([a], [b]) => (a < b ? -1 : 1))
                .map(([k, v]) => `${k}=${v}`)
                .join(",")
            : "";
          const built = cache.get(push, `rds/${proxy.namespace}/${sidecarScope(push, proxy).key}/${labels}/${name}`, () => {
            const config = routeConfiguration(push, proxy, name);
            return config && resource(RouteConfiguration, name, config);
          });
          return built ? [built] : [];
        });
      case TypeUrl.endpoint:
        return loadAssignments(push, proxy, cache, subscription);
      default:
        return undefined;
    }
  };
}

/**
 * A gateway pod (node type `router`): listeners for the servers of the Gateways selecting it,
 * their route configurations from the VirtualServices bound to those Gateways (gateway.ts), the
 * outbound clusters and load assignments sidecars get.
 */
export function gatewayGenerator(proxy: MeshProxy, current: () => PushContext, cache: ResourceCache): Generate {
  return (typeUrl, subscription) => {
    const push = current();
    switch (typeUrl) {
      case TypeUrl.cluster:
        return clusterResources(push, proxy, cache, gatewayClusterEntries(push, proxy, subscription.only));
      case TypeUrl.listener:
        return gatewayListeners(push, proxy).map((l) => resource(Listener, l.name ?? "", l));
      case TypeUrl.route:
        return [...subscription.names].map((name) =>
          resource(RouteConfiguration, name, gatewayRouteConfiguration(push, proxy, name)),
        );
      case TypeUrl.secret:
        // Certificates of its HTTPS servers; a name it may not have is left unanswered.
        return [...subscription.names].flatMap((name) => {
          const secret = credentialSecret(push, proxy, name);
          return typeof secret === "string" ? [] : [resource(Secret, name, secret)];
        });
      case TypeUrl.endpoint:
        return loadAssignments(push, proxy, cache, subscription);
      default:
        return undefined;
    }
  };
}

/** Load assignments of the clusters a proxy watches (all, or on a partial push those in `only`). */
function loadAssignments(push: PushContext, proxy: MeshProxy, cache: ResourceCache, subscription: Subscription): Resource[] {
  return [...(subscription.only ?? subscription.names)].flatMap((name) => {
    if (!subscription.names.has(name)) return [];
    const { key, build } = proxyLoadAssignment(push, proxy, name);
    const built = cache.get(push, `eds/${key}/${name}`, () => {
      const assignment = build();
      return assignment && resource(ClusterLoadAssignment, name, assignment);
    });
    return built ? [built] : [];
  });
}

/**
 * A proxyless gRPC client or server (node metadata GENERATOR=grpc): listeners, clusters and
 * routes by the names it asks for (grpc.ts), the sidecar's load assignments.
 */
export function grpcGenerator(proxy: MeshProxy, current: () => PushContext, cache: ResourceCache): Generate {
  return (typeUrl, subscription) => {
    const push = current();
    switch (typeUrl) {
      case TypeUrl.listener:
        return grpcListeners(push, proxy, subscription.names).map((l) => resource(Listener, l.name ?? "", l));
      case TypeUrl.cluster:
        return grpcClusters(push, proxy, subscription.names).map((c) => resource(Cluster, c.name ?? "", c));
      case TypeUrl.route:
        return [...subscription.names].flatMap((name) => {
          const config = grpcRoute(push, proxy, name);
          return config ? [resource(RouteConfiguration, name, config)] : [];
        });
      case TypeUrl.endpoint:
        return loadAssignments(push, proxy, cache, subscription);
      default:
        return undefined;
    }
  };
}
