// EDS: the endpoints of one outbound cluster (`outbound|<port>|<subset>|<host>`), grouped by locality,
// each with the metadata auto mTLS matches on (envoy.transport_socket_match tlsMode) and the
// workload it belongs to (istio.workload, what Istio's telemetry reads).

import { HealthStatus } from "../envoy/third_party/envoy/config/core/v3/health_check.ts";
import type { ClusterLoadAssignment } from "../envoy/third_party/envoy/config/endpoint/v3/endpoint.ts";
import type { LocalityLbEndpoints } from "../envoy/third_party/envoy/config/endpoint/v3/endpoint_components.ts";
import type { MeshEndpoint } from "../registry/registry.ts";
import type { PushContext } from "./context.ts";
import { composeMtls, portMode } from "./peer-authentication.ts";

/** `outbound|<port>|<subset>|<host>` split, or undefined for another kind of name. */
export function parseClusterName(
  name: string,
): { direction: string; port: number; subset: string; hostname: string } | undefined {
  const parts = name.split("|");
  if (parts.length !== 4) return undefined;
  const [direction = "", port = "", subset = "", hostname = ""] = parts;
  const number = Number(port);
  if (!Number.isInteger(number) || number <= 0 || number > 65535) return undefined;
  return { direction, port: number, subset, hostname };
}

function workloadName(ep: MeshEndpoint): string {
  const canonical = ep.labels["service.istio.io/canonical-name"] ?? ep.labels.app ?? ep.podName ?? "";
  const revision = ep.labels["service.istio.io/canonical-revision"] ?? ep.labels.version ?? "";
  return `${ep.podName ?? ""};${ep.workloadNamespace ?? ep.namespace};${canonical};${revision};Kubernetes`;
}

/**
 * Whether clients send this endpoint Istio mutual TLS: it has a sidecar (tlsMode istio) and its
 * port does not take plaintext only (PeerAuthentication DISABLE).
 */
export function istioTlsEndpoint(push: PushContext, ep: MeshEndpoint): boolean {
  return (
    ep.tlsMode === "istio" && portMode(composeMtls(push.peerAuthentications, push.mesh.rootNamespace, ep), ep.port) !== "DISABLE"
  );
}

/**
 * The load assignment for an outbound cluster (of a subset: the endpoints with all of its
 * labels); undefined when the name is no outbound cluster.
 */
export function clusterLoadAssignment(
  push: PushContext,
  clusterName: string,
  subsetLabels?: Record<string, string>,
): ClusterLoadAssignment | undefined {
  const parsed = parseClusterName(clusterName);
  if (parsed?.direction !== "outbound") return undefined;
  const service = push.registry.byHostname.get(parsed.hostname);
  const port = service?.ports.find((p) => p.port === parsed.port);
  if (!service || !port) return { clusterName, endpoints: [] };
  const groups = new Map<string, LocalityLbEndpoints>();
  for (const ep of push.registry.endpoints.get(service.hostname) ?? []) {
    if (ep.servicePortName !== port.name) continue;
    if (subsetLabels && !Object.entries(subsetLabels).every(([k, v]) => ep.labels[k] === v)) continue;
    const key = `${ep.locality.region}/${ep.locality.zone}/${ep.locality.subzone}`;
    let group = groups.get(key);
    if (!group) {
      group = {
        locality: {
          region: ep.locality.region || undefined,
          zone: ep.locality.zone || undefined,
          subZone: ep.locality.subzone || undefined,
        },
        lbEndpoints: [],
        loadBalancingWeight: 0,
      };
      groups.set(key, group);
    }
    const istioTls = istioTlsEndpoint(push, ep);
    group.lbEndpoints?.push({
      endpoint: { address: { socketAddress: { address: ep.address, portValue: ep.port } } },
      healthStatus: ep.health === "HEALTHY" ? HealthStatus.HEALTHY : undefined,
      metadata: {
        filterMetadata: {
          ...(istioTls ? { "envoy.transport_socket_match": { tlsMode: "istio" } } : {}),
          istio: { workload: workloadName(ep) },
        },
      },
      loadBalancingWeight: 1,
    });
    group.loadBalancingWeight = (group.loadBalancingWeight ?? 0) + 1;
  }
  return { clusterName, endpoints: [...groups.keys()].sort().map((k) => groups.get(k) as LocalityLbEndpoints) };
}
