// ServiceEntries (networking.istio.io) as mesh services, as upstream's serviceentry controller
// converts them: one service per host, with the entry's ports (protocol from the port's
// `protocol`, else sniffed), its first address as the VIP, its location and resolution; and
// its endpoints, from `endpoints` or, with a `workloadSelector`, from the WorkloadEntries of its
// namespace whose labels match. An endpoint's port is its own for that port name, else the
// port's targetPort, else the port's number. Under DNS resolution without endpoints, the host
// itself is the one endpoint. Pure, like the rest of the registry.

import { parseProtocol } from "./protocol.ts";
import type { Locality, MeshEndpoint, MeshService } from "./registry.ts";
import { TLS_MODE_LABEL } from "./registry.ts";

interface Meta {
  name?: string;
  uid?: string;
  namespace?: string;
  labels?: Record<string, string>;
  creationTimestamp?: string;
}

interface WorkloadSpec {
  address?: string;
  ports?: Record<string, number>;
  labels?: Record<string, string>;
  locality?: string;
  serviceAccount?: string;
  weight?: number;
}

export interface KubeServiceEntry {
  metadata?: Meta;
  spec?: {
    hosts?: string[];
    addresses?: string[];
    ports?: { number?: number; name?: string; protocol?: string; targetPort?: number }[];
    location?: string;
    resolution?: string;
    endpoints?: WorkloadSpec[];
    workloadSelector?: { labels?: Record<string, string> };
    exportTo?: string[];
  };
}

export interface KubeWorkloadEntry {
  metadata?: Meta;
  spec?: WorkloadSpec;
}

/** "region/zone/subzone", as WorkloadEntry and ServiceEntry endpoints write it. */
function parseLocality(locality: string | undefined): Locality {
  const [region = "", zone = "", subzone = ""] = (locality ?? "").split("/");
  return { region, zone, subzone };
}

const RESOLUTIONS = new Set(["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN"]);

/** Oldest first (upstream's order when two entries claim one host), then by namespace and name. */
function byAge(a: KubeServiceEntry, b: KubeServiceEntry): number {
  const key = (e: KubeServiceEntry) =>
    `${e.metadata?.creationTimestamp ?? ""}\n${e.metadata?.namespace ?? ""}\n${e.metadata?.name ?? ""}`;
  return key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;
}

/**
 * An entry's address as a VIP: an IP, or a CIDR of one host (`/32`, `/128`) written as that IP,
 * as upstream reads them; a wider range is no single VIP.
 */
function singleAddress(address: string | undefined): string | undefined {
  if (!address?.includes("/")) return address;
  const [ip = "", bits = ""] = address.split("/");
  return (ip.includes(":") ? bits === "128" : bits === "32") ? ip : undefined;
}

export function serviceEntryServices(
  entries: KubeServiceEntry[],
  workloadEntries: KubeWorkloadEntry[],
): { services: MeshService[]; endpoints: Map<string, MeshEndpoint[]> } {
  const services: MeshService[] = [];
  const endpoints = new Map<string, MeshEndpoint[]>();
  const claimed = new Set<string>();
  for (const entry of [...entries].sort(byAge)) {
    const namespace = entry.metadata?.namespace;
    const spec = entry.spec ?? {};
    if (!namespace || !entry.metadata?.name) continue;
    const resolution = (RESOLUTIONS.has(spec.resolution ?? "") ? spec.resolution : "NONE") as MeshService["resolution"];
    const ports = (spec.ports ?? [])
      .filter((p) => typeof p.number === "number")
      .map((p) => ({
        name: p.name ?? "",
        port: p.number as number,
        protocol: parseProtocol(p.protocol ?? ""),
        targetPort: p.targetPort,
      }));
    const workloads: { spec: WorkloadSpec; name?: string; namespace: string; health: "HEALTHY" | "UNKNOWN" }[] =
      spec.workloadSelector
        ? workloadEntries
            .filter(
              (we) =>
                we.metadata?.namespace === namespace &&
                Object.entries(spec.workloadSelector?.labels ?? {}).every(([k, v]) => we.spec?.labels?.[k] === v),
            )
            .map((we) => ({ spec: we.spec ?? {}, name: we.metadata?.name, namespace, health: "UNKNOWN" as const }))
        : (spec.endpoints ?? []).map((ep) => ({ spec: ep, namespace, health: "UNKNOWN" as const }));
    for (const host of spec.hosts ?? []) {
      if (claimed.has(host)) continue;
      claimed.add(host);
      services.push({
        hostname: host,
        name: host,
        namespace,
        clusterIp: singleAddress(spec.addresses?.[0]),
        ports: ports.map(({ name, port, protocol }) => ({ name, port, protocol })),
        selector: {},
        labels: entry.metadata?.labels ?? {},
        origin: "ServiceEntry",
        resolution,
        meshExternal: spec.location !== "MESH_INTERNAL",
        ...(spec.exportTo && spec.exportTo.length > 0 ? { exportTo: spec.exportTo } : {}),
        config: {
          apiVersion: "networking.istio.io/v1",
          kind: "ServiceEntry",
          name: entry.metadata.name,
          namespace,
          uid: entry.metadata.uid,
        },
      });
      const list: MeshEndpoint[] = [];
      const fromWorkloads =
        workloads.length > 0 || (resolution !== "DNS" && resolution !== "DNS_ROUND_ROBIN")
          ? workloads
          : [{ spec: { address: host }, namespace, health: "UNKNOWN" as const }];
      for (const workload of fromWorkloads) {
        const labels = workload.spec.labels ?? {};
        for (const port of ports) {
          const address = workload.spec.address;
          if (!address) continue;
          list.push({
            address,
            port: workload.spec.ports?.[port.name] ?? port.targetPort ?? port.port,
            servicePortName: port.name,
            labels,
            serviceAccount: workload.spec.serviceAccount ?? "",
            tlsMode: labels[TLS_MODE_LABEL] === "istio" ? "istio" : "disabled",
            locality: parseLocality(workload.spec.locality),
            podName: workload.name,
            namespace,
            // Inline endpoints belong to no workload of a namespace (upstream's telemetry name leaves it empty).
            workloadNamespace: workload.name ? namespace : "",
            ready: true,
            health: workload.health,
          });
        }
      }
      endpoints.set(host, list);
    }
  }
  return { services, endpoints };
}
