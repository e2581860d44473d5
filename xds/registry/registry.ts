// The service registry the generators read: Kubernetes Services, EndpointSlices, Pods and
// Nodes (as the shared informer cache holds them) turned into mesh services and endpoints.
// Pure: objects in, a Registry out, so generators and tests need no cluster.
//
// - A Service is `<name>.<namespace>.svc.<domain>` with its ports (protocol inferred as
//   upstream does), cluster IP (none for headless Services) and selector.
// - Its endpoints come from its EndpointSlices: one per ready address and slice port, with the
//   pod's labels, ServiceAccount and Istio TLS mode (label security.istio.io/tlsMode, set on
//   injected pods), and a locality from the node's topology labels.
// - ServiceEntries add a service per host, with their endpoints and WorkloadEntries
//   (service-entry.ts).
import { type Protocol, servicePortProtocol } from "./protocol.ts";
import { type KubeServiceEntry, type KubeWorkloadEntry, serviceEntryServices } from "./service-entry.ts";

export interface ServicePort {
  name: string;
  port: number;
  protocol: Protocol;
}

export interface MeshService {
  hostname: string;
  name: string;
  namespace: string;
  /** Cluster IP, or undefined for a headless Service (clusterIP None). */
  clusterIp?: string;
  ports: ServicePort[];
  selector: Record<string, string>;
  labels: Record<string, string>;
  /** Kubernetes ExternalName Services: the name they alias. */
  externalName?: string;
  /** A Kubernetes Service, or one host of a ServiceEntry (whose `name` is the host). */
  origin: "Kubernetes" | "ServiceEntry";
  /**
   * How a client finds its endpoints: STATIC (EDS; Kubernetes Services with a cluster IP), NONE
   * (the original destination; headless Services), DNS or DNS_ROUND_ROBIN (Envoy resolves).
   */
  resolution: "STATIC" | "NONE" | "DNS" | "DNS_ROUND_ROBIN";
  /** ServiceEntry location MESH_EXTERNAL: outside the mesh, never sent mutual TLS automatically. */
  meshExternal: boolean;
  /** The user's Istio object it comes from (a ServiceEntry): told when a proxy rejects what it became. */
  config?: ConfigRef;
  /**
   * Namespaces whose proxies see it (`*` every one, `.` its own, `~` none): a ServiceEntry's
   * `exportTo`, a Service's `networking.istio.io/exportTo` annotation. Unset: every namespace.
   */
  exportTo?: string[];
}

/** Whether proxies in `namespace` see `service` (upstream's IsServiceVisible, the default export `*`). */
export function isVisible(service: Pick<MeshService, "namespace" | "exportTo">, namespace: string): boolean {
  const exportTo = service.exportTo;
  if (!exportTo || exportTo.length === 0) return true;
  return exportTo.some((e) => e === "*" || e === namespace || (e === "." && service.namespace === namespace));
}

export interface ConfigRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
  uid?: string;
}

export interface Locality {
  region: string;
  zone: string;
  subzone: string;
}

export interface MeshEndpoint {
  address: string;
  /** The port the endpoint serves for `servicePortName` (the slice's port). */
  port: number;
  servicePortName: string;
  labels: Record<string, string>;
  serviceAccount: string;
  /** "istio" when the workload has a sidecar to terminate mutual TLS. */
  tlsMode: "istio" | "disabled";
  locality: Locality;
  /** The pod, or WorkloadEntry, behind it. */
  podName?: string;
  namespace: string;
  /** The namespace in its telemetry name, when not `namespace` (empty for a ServiceEntry's inline endpoints). */
  workloadNamespace?: string;
  ready: boolean;
  /** HEALTHY from a ready EndpointSlice condition; UNKNOWN where nothing says (ServiceEntry endpoints). */
  health: "HEALTHY" | "UNKNOWN";
}

export interface Registry {
  /** Every Service, sorted by hostname. */
  services: MeshService[];
  byHostname: Map<string, MeshService>;
  /** Endpoints of each Service by hostname. */
  endpoints: Map<string, MeshEndpoint[]>;
  /** Pods by IP: who a proxy is, and which Services select it. */
  podsByIp: Map<string, PodInfo>;
  /**
   * The ports each workload address serves for its Services, ready or not yet ready: a proxy's
   * inbound listeners and clusters are made from them, so a pod has them from its first push,
   * before its readiness (which waits on that push) puts it in the ready endpoints.
   */
  workloadPorts: Map<string, WorkloadPort[]>;
  domainSuffix: string;
}

export interface WorkloadPort {
  hostname: string;
  servicePortName: string;
  /** The port the workload serves it on. */
  port: number;
}

export interface PodInfo {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  serviceAccount: string;
  nodeName?: string;
  /** Its `istio-locality` label, else its node's topology labels. */
  locality: Locality;
}

interface Meta {
  name?: string;
  namespace?: string;
  uid?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  deletionTimestamp?: string;
}

/** The annotation that limits which namespaces see a Kubernetes Service (comma-separated, as `exportTo`). */
export const EXPORT_TO_ANNOTATION = "networking.istio.io/exportTo";

export interface KubeService {
  metadata?: Meta;
  spec?: {
    type?: string;
    clusterIP?: string;
    externalName?: string;
    selector?: Record<string, string>;
    ports?: { name?: string; port?: number; protocol?: string; appProtocol?: string }[];
  };
}

export interface KubeEndpointSlice {
  metadata?: Meta;
  addressType?: string;
  endpoints?: {
    addresses?: string[];
    conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
    targetRef?: { kind?: string; name?: string; namespace?: string };
    nodeName?: string;
    zone?: string;
  }[];
  ports?: { name?: string; port?: number; protocol?: string }[];
}

export interface KubePod {
  metadata?: Meta;
  spec?: { serviceAccountName?: string; nodeName?: string; hostNetwork?: boolean };
  status?: { podIP?: string; podIPs?: { ip?: string }[]; phase?: string };
}

export interface KubeNode {
  metadata?: Meta;
}

export interface RegistryInput {
  services: KubeService[];
  endpointSlices: KubeEndpointSlice[];
  pods: KubePod[];
  nodes?: KubeNode[];
  serviceEntries?: KubeServiceEntry[];
  workloadEntries?: KubeWorkloadEntry[];
  domainSuffix?: string;
}

const SERVICE_NAME_LABEL = "kubernetes.io/service-name";
export const TLS_MODE_LABEL = "security.istio.io/tlsMode";

function localityOf(node: KubeNode | undefined, zone: string | undefined): Locality {
  const labels = node?.metadata?.labels ?? {};
  return {
    region: labels["topology.kubernetes.io/region"] ?? "",
    zone: zone ?? labels["topology.kubernetes.io/zone"] ?? "",
    subzone: labels["topology.istio.io/subzone"] ?? "",
  };
}

/** A pod's own locality (`region.zone.subzone`), over its node's: upstream's `istio-locality` label. */
export const LOCALITY_LABEL = "istio-locality";

function podLocality(labels: Record<string, string> | undefined, node: KubeNode | undefined): Locality {
  const own = labels?.[LOCALITY_LABEL];
  if (!own) return localityOf(node, undefined);
  const [region = "", zone = "", subzone = ""] = own.split(".");
  return { region, zone, subzone };
}

function exportToOf(annotation: string | undefined): { exportTo?: string[] } {
  const list = (annotation ?? "")
    .split(",")
    .map((e) => e.trim())
    .filter(Boolean);
  return list.length > 0 ? { exportTo: list } : {};
}

export function buildRegistry(input: RegistryInput): Registry {
  const domainSuffix = input.domainSuffix ?? "cluster.local";
  const services: MeshService[] = [];
  for (const svc of input.services) {
    const name = svc.metadata?.name;
    const namespace = svc.metadata?.namespace;
    if (!name || !namespace) continue;
    const spec = svc.spec ?? {};
    const headless = spec.clusterIP === "None";
    services.push({
      hostname: `${name}.${namespace}.svc.${domainSuffix}`,
      name,
      namespace,
      clusterIp: headless || !spec.clusterIP ? undefined : spec.clusterIP,
      ports: (spec.ports ?? [])
        .filter((p) => typeof p.port === "number")
        .map((p) => ({
          name: p.name ?? "",
          port: p.port as number,
          protocol: servicePortProtocol({ ...p, port: p.port as number }),
        })),
      selector: spec.selector ?? {},
      labels: svc.metadata?.labels ?? {},
      externalName: spec.type === "ExternalName" ? spec.externalName : undefined,
      origin: "Kubernetes",
      resolution: headless ? "NONE" : "STATIC",
      meshExternal: false,
      ...exportToOf(svc.metadata?.annotations?.[EXPORT_TO_ANNOTATION]),
    });
  }
  const entries = serviceEntryServices(input.serviceEntries ?? [], input.workloadEntries ?? []);
  // A Kubernetes Service keeps its name when an entry claims it too.
  const kubernetesHosts = new Set(services.map((s) => s.hostname));
  services.push(...entries.services.filter((s) => !kubernetesHosts.has(s.hostname)));
  services.sort((a, b) => (a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0));
  const byHostname = new Map(services.map((s) => [s.hostname, s]));

  const nodes = new Map((input.nodes ?? []).map((n) => [n.metadata?.name ?? "", n]));
  const podsByName = new Map<string, PodInfo>();
  const podsByIp = new Map<string, PodInfo>();
  for (const pod of input.pods) {
    const meta = pod.metadata ?? {};
    if (!meta.name || !meta.namespace) continue;
    const info: PodInfo = {
      name: meta.name,
      namespace: meta.namespace,
      labels: meta.labels ?? {},
      serviceAccount: pod.spec?.serviceAccountName ?? "default",
      nodeName: pod.spec?.nodeName,
      locality: podLocality(meta.labels, nodes.get(pod.spec?.nodeName ?? "")),
    };
    podsByName.set(`${meta.namespace}/${meta.name}`, info);
    if (pod.spec?.hostNetwork) continue;
    for (const ip of [pod.status?.podIP, ...(pod.status?.podIPs ?? []).map((p) => p.ip)]) if (ip) podsByIp.set(ip, info);
  }

  const endpoints = new Map<string, MeshEndpoint[]>();
  const workloadPorts = new Map<string, WorkloadPort[]>();
  const servesPort = (address: string, port: WorkloadPort) => {
    const list = workloadPorts.get(address);
    if (list) list.push(port);
    else workloadPorts.set(address, [port]);
  };
  for (const slice of input.endpointSlices) {
    const serviceName = slice.metadata?.labels?.[SERVICE_NAME_LABEL];
    const namespace = slice.metadata?.namespace;
    if (!serviceName || !namespace || (slice.addressType && slice.addressType === "FQDN")) continue;
    const hostname = `${serviceName}.${namespace}.svc.${domainSuffix}`;
    if (!byHostname.has(hostname)) continue;
    const list = endpoints.get(hostname) ?? [];
    for (const ep of slice.endpoints ?? []) {
      // Ready, or serving while terminating? Upstream sends ready endpoints (and, with
      // PERSISTENT_SESSION_LABEL, terminating ones): only ready ones here.
      const ready = ep.conditions?.ready !== false;
      if (!ready) {
        for (const address of ep.addresses ?? [])
          for (const port of slice.ports ?? [])
            if (typeof port.port === "number" && port.protocol !== "SCTP")
              servesPort(address, { hostname, servicePortName: port.name ?? "", port: port.port });
        continue;
      }
      const pod =
        ep.targetRef?.kind === "Pod" ? podsByName.get(`${ep.targetRef.namespace ?? namespace}/${ep.targetRef.name}`) : undefined;
      const labels = pod?.labels ?? {};
      for (const address of ep.addresses ?? []) {
        for (const port of slice.ports ?? []) {
          if (typeof port.port !== "number" || port.protocol === "SCTP") continue;
          list.push({
            address,
            port: port.port,
            servicePortName: port.name ?? "",
            labels,
            serviceAccount: pod?.serviceAccount ?? "",
            tlsMode: labels[TLS_MODE_LABEL] === "istio" ? "istio" : "disabled",
            locality: pod?.labels[LOCALITY_LABEL]
              ? pod.locality
              : localityOf(nodes.get(ep.nodeName ?? pod?.nodeName ?? ""), ep.zone),
            podName: pod?.name,
            namespace,
            ready,
            health: "HEALTHY",
          });
        }
      }
    }
    endpoints.set(hostname, list);
  }
  for (const [host, list] of entries.endpoints) if (!kubernetesHosts.has(host)) endpoints.set(host, list);
  for (const [hostname, list] of endpoints) {
    list.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : a.port - b.port));
    for (const ep of list) servesPort(ep.address, { hostname, servicePortName: ep.servicePortName, port: ep.port });
  }
  for (const list of workloadPorts.values())
    list.sort((a, b) =>
      a.hostname !== b.hostname
        ? a.hostname < b.hostname
          ? -1
          : 1
        : a.port - b.port || (a.servicePortName < b.servicePortName ? -1 : 1),
    );
  return { services, byHostname, endpoints, podsByIp, workloadPorts, domainSuffix };
}

/**
 * Workload addresses whose served ports differ between two registries: the proxies there need
 * their own configuration (inbound listeners and clusters) again, not only load assignments.
 */
export function changedWorkloadPorts(before: Registry, after: Registry): Set<string> {
  const changed = new Set<string>();
  for (const address of new Set([...before.workloadPorts.keys(), ...after.workloadPorts.keys()])) {
    const a = before.workloadPorts.get(address) ?? [];
    const b = after.workloadPorts.get(address) ?? [];
    if (
      a.length !== b.length ||
      a.some((p, i) => {
        const q = b[i] as WorkloadPort;
        return p.hostname !== q.hostname || p.servicePortName !== q.servicePortName || p.port !== q.port;
      })
    )
      changed.add(address);
  }
  return changed;
}

/** The services whose endpoints differ between two registries (by hostname). */
export function changedEndpoints(before: Registry, after: Registry): Set<string> {
  const changed = new Set<string>();
  for (const host of new Set([...before.endpoints.keys(), ...after.endpoints.keys()])) {
    const a = before.endpoints.get(host);
    const b = after.endpoints.get(host);
    if (a === b) continue;
    if (!a || !b || a.length !== b.length || a.some((ep, i) => !sameEndpoint(ep, b[i] as MeshEndpoint))) changed.add(host);
  }
  return changed;
}

const sameRecord = (a: Record<string, string>, b: Record<string, string>) =>
  a === b || (Object.keys(a).length === Object.keys(b).length && Object.entries(a).every(([k, v]) => b[k] === v));

/** Field by field (what a generator may read of an endpoint). */
function sameEndpoint(a: MeshEndpoint, b: MeshEndpoint): boolean {
  return (
    a.address === b.address &&
    a.port === b.port &&
    a.servicePortName === b.servicePortName &&
    a.serviceAccount === b.serviceAccount &&
    a.tlsMode === b.tlsMode &&
    a.locality.region === b.locality.region &&
    a.locality.zone === b.locality.zone &&
    a.locality.subzone === b.locality.subzone &&
    a.podName === b.podName &&
    a.namespace === b.namespace &&
    a.workloadNamespace === b.workloadNamespace &&
    a.ready === b.ready &&
    a.health === b.health &&
    sameRecord(a.labels, b.labels)
  );
}

/** The Services whose selector matches a pod's labels in its namespace (its "service targets"). */
export function servicesSelecting(registry: Registry, namespace: string, labels: Record<string, string>): MeshService[] {
  return registry.services.filter(
    (s) =>
      s.namespace === namespace &&
      Object.keys(s.selector).length > 0 &&
      Object.entries(s.selector).every(([k, v]) => labels[k] === v),
  );
}
