// Locality load balancing, as upstream's loadbalancer package does it: a client prefers endpoints
// near it. The setting is the DestinationRule's `loadBalancer.localityLbSetting` (for the
// cluster's port and subset), else the mesh's (meshConfig.localityLbSetting, enabled by default);
// `enabled: false` turns it off. Then, relative to the calling proxy's locality:
// - `distribute`: the first entry whose `from` matches the proxy sets each locality's share
//   (`to`, percentages); localities it does not name get no traffic;
// - otherwise failover, only when outlier detection is on (Envoy moves to a lower priority only
//   when it ejects hosts): priority 0 for the proxy's own region/zone/subzone, 1 its zone, 2 its
//   region, 3 elsewhere (4 for a region a `failover` entry does not send this region to); the
//   priorities used are renumbered from 0 without gaps.
// Locality-weighted load balancing is switched on in the cluster for `distribute`, or for failover
// with explicit `failover` or `failoverPriority` entries. `failoverPriority` (label-based
// priorities) is not applied yet.
import type { Cluster } from "../envoy/third_party/envoy/config/cluster/v3/cluster.ts";
import type { ClusterLoadAssignment } from "../envoy/third_party/envoy/config/endpoint/v3/endpoint.ts";
import type { MeshProxy } from "../proxy.ts";
import type { Locality } from "../registry/registry.ts";
import type { PushContext } from "./context.ts";
import type { TrafficPolicy } from "./destination-rule.ts";

export interface LocalityLbSetting {
  enabled?: boolean;
  distribute?: { from?: string; to?: Record<string, number> }[];
  failover?: { from?: string; to?: string }[];
  failoverPriority?: string[];
}

/** What applies to a cluster's endpoints: the setting, and whether failover may be used. */
export interface LocalityPolicy {
  setting: LocalityLbSetting;
  /** Outlier detection is on for the cluster. */
  failover: boolean;
}

/** Upstream's GetLocalityLbSetting, with whether outlier detection allows failover. */
export function localityPolicy(
  policy: TrafficPolicy | undefined,
  mesh: LocalityLbSetting | undefined,
): LocalityPolicy | undefined {
  const own = policy?.loadBalancer?.localityLbSetting as LocalityLbSetting | undefined;
  const setting = own ?? mesh;
  if (!setting || setting.enabled === false) return undefined;
  return { setting, failover: policy?.outlierDetection !== undefined };
}

/** Whether the policy changes what endpoints a proxy gets (else the shared load assignment stands). */
export function changesEndpoints(locality: LocalityPolicy | undefined): boolean {
  if (!locality) return false;
  return (locality.setting.distribute?.length ?? 0) > 0 || locality.failover;
}

/** Whether the cluster needs Envoy's locality-weighted load balancing (upstream's applyLocalityLoadBalancer). */
export function localityWeighted(locality: LocalityPolicy | undefined): boolean {
  if (!locality) return false;
  const { setting, failover } = locality;
  return (
    (setting.distribute?.length ?? 0) > 0 ||
    (failover && (setting.failover !== undefined || setting.failoverPriority !== undefined))
  );
}

export function applyLocalityCluster(cluster: Cluster, locality: LocalityPolicy | undefined): void {
  if (localityWeighted(locality)) cluster.commonLbConfig = { ...cluster.commonLbConfig, localityWeightedLbConfig: {} };
}

/** The proxy's locality: its pod's (the `istio-locality` label, else its node's topology labels). */
export function proxyLocality(push: PushContext, proxy: MeshProxy): Locality {
  for (const ip of proxy.ipAddresses) {
    const pod = push.registry.podsByIp.get(ip);
    if (pod?.locality) return pod.locality;
  }
  return { region: "", zone: "", subzone: "" };
}

export const localityKey = (l: Locality) => `${l.region}/${l.zone}/${l.subzone}`;

/** Upstream's LocalityMatch: `region/zone/subzone` with `*` (or nothing) matching any. */
function localityMatch(locality: { region?: string; zone?: string; subZone?: string } | undefined, rule: string): boolean {
  const [region = "", zone = "", subzone = ""] = rule.split("/");
  return (
    (region === "*" || (locality?.region ?? "") === region) &&
    (zone === "*" || zone === "" || (locality?.zone ?? "") === zone) &&
    (subzone === "*" || subzone === "" || (locality?.subZone ?? "") === subzone)
  );
}

/** 0: same subzone, 1: same zone, 2: same region, 3: elsewhere (upstream's LbPriority). */
function lbPriority(proxy: Locality, endpoints: { region?: string; zone?: string; subZone?: string } | undefined): number {
  if (proxy.region !== (endpoints?.region ?? "")) return 3;
  if (proxy.zone !== (endpoints?.zone ?? "")) return 2;
  return proxy.subzone === (endpoints?.subZone ?? "") ? 0 : 1;
}

/** The load assignment as a proxy at `proxy` sees it under `locality` (a new object; the input is shared). */
export function applyLocality(
  assignment: ClusterLoadAssignment,
  proxy: Locality,
  locality: LocalityPolicy,
): ClusterLoadAssignment {
  const endpoints = (assignment.endpoints ?? []).map((group) => ({ ...group }));
  const out = { ...assignment, endpoints };
  const { setting } = locality;
  const proxyAsEnvoy = { region: proxy.region, zone: proxy.zone, subZone: proxy.subzone };
  if ((setting.distribute?.length ?? 0) > 0) {
    const rule = setting.distribute?.find((d) => localityMatch(proxyAsEnvoy, d.from ?? ""));
    if (!rule) return out;
    const unmatched = new Set(endpoints.keys());
    for (const [to, weight] of Object.entries(rule.to ?? {})) {
      const matched = [...unmatched].filter((i) => localityMatch(endpoints[i]?.locality, to));
      const total = matched.reduce((sum, i) => sum + (endpoints[i]?.loadBalancingWeight ?? 1), 0);
      for (const i of matched) {
        unmatched.delete(i);
        const group = endpoints[i];
        if (!group) continue;
        // A wildcard matching several localities shares the weight among them.
        const share = ((group.loadBalancingWeight ?? 1) * weight) / total;
        if (share > 0) group.loadBalancingWeight = Math.ceil(share);
      }
    }
    for (const i of unmatched) {
      const group = endpoints[i];
      if (group) group.lbEndpoints = [];
    }
    return out;
  }
  if (!locality.failover) return out;
  const used = new Map<number, number[]>();
  for (const [i, group] of endpoints.entries()) {
    let priority = lbPriority(proxy, group.locality);
    if (priority === 3) {
      const entry = setting.failover?.find((f) => f.from === proxy.region);
      if (entry && (group.locality?.region ?? "") !== entry.to) priority = 4;
    }
    priority += (group.priority ?? 0) * 5;
    group.priority = priority;
    used.set(priority, [...(used.get(priority) ?? []), i]);
  }
  // Priorities run from 0 without gaps.
  for (const [rank, priority] of [...used.keys()].sort((a, b) => a - b).entries())
    for (const i of used.get(priority) ?? []) {
      const group = endpoints[i];
      if (group) group.priority = rank || undefined;
    }
  return out;
}
