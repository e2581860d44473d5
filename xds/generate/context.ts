// What every generator reads: one snapshot of the mesh (the registry and mesh settings) taken
// for a push, and the proxy asking. Generators are pure functions of these.
import type { MeshProxy } from "../proxy.ts";
import type { MeshService, Registry, ServicePort } from "../registry/registry.ts";
import { servicesSelecting } from "../registry/registry.ts";
import type { AuthorizationPolicy } from "./authorization.ts";
import type { DestinationRule } from "./destination-rule.ts";
import type { IstioGateway } from "./gateway.ts";
import type { CredentialSecret } from "./gateway-secrets.ts";
import type { LocalityLbSetting } from "./locality.ts";
import type { PeerAuthentication } from "./peer-authentication.ts";
import type { RequestAuthentication } from "./request-authentication.ts";
import type { Sidecar } from "./sidecar-scope.ts";
import type { ExtensionProvider, Telemetry } from "./telemetry.ts";
import type { VirtualService } from "./virtual-service.ts";

export interface MeshSettings {
  /** MeshConfig connectTimeout (upstream default 10 s). */
  connectTimeoutSeconds: number;
  trustDomain: string;
  /** outboundTrafficPolicy: ALLOW_ANY (default) sends unknown destinations through; REGISTRY_ONLY drops them. */
  outboundTrafficPolicy: "ALLOW_ANY" | "REGISTRY_ONLY";
  /** Envoy's inbound listener port (15006) and outbound (15001). */
  inboundPort: number;
  outboundPort: number;
  /** The mesh's root namespace: mesh-wide policies live there (upstream's rootNamespace). */
  rootNamespace: string;
  /** meshConfig.accessLogFile (e.g. /dev/stdout): Envoy's access log; empty or unset, none. */
  accessLogFile?: string;
  accessLogEncoding?: "TEXT" | "JSON";
  accessLogFormat?: string;
  /** meshConfig.localityLbSetting: the locality load balancing of clusters whose DestinationRule sets none. */
  localityLbSetting?: LocalityLbSetting;
  /** meshConfig.extensionProviders as written (upstream's defaults are added where used). */
  extensionProviders?: ExtensionProvider[];
  /** meshConfig.defaultProviders.accessLogging: providers for proxies no Telemetry configures. */
  defaultAccessLogProviders?: string[];
  /** meshConfig.defaultProviders.tracing (the first is used). */
  defaultTracingProviders?: string[];
  /** meshConfig.enableTracing (upstream's default: on, 1 % sampling, no provider of Istio's). */
  enableTracing?: boolean;
}

/** What the generators read of a MeshConfig (istiod's mesh ConfigMap, parsed), over the defaults. */
export function meshSettings(mesh: {
  trustDomain?: string;
  accessLogFile?: string;
  accessLogEncoding?: string;
  accessLogFormat?: string;
  outboundTrafficPolicy?: { mode?: string };
  localityLbSetting?: LocalityLbSetting;
  extensionProviders?: ExtensionProvider[];
  defaultProviders?: { accessLogging?: string[]; tracing?: string[] };
  enableTracing?: boolean;
}): Partial<MeshSettings> {
  return {
    trustDomain: mesh.trustDomain || DEFAULT_MESH.trustDomain,
    ...(mesh.outboundTrafficPolicy?.mode === "REGISTRY_ONLY" ? { outboundTrafficPolicy: "REGISTRY_ONLY" as const } : {}),
    ...(mesh.accessLogFile ? { accessLogFile: mesh.accessLogFile } : {}),
    ...(mesh.accessLogEncoding === "JSON" ? { accessLogEncoding: "JSON" as const } : {}),
    ...(mesh.accessLogFormat ? { accessLogFormat: mesh.accessLogFormat } : {}),
    ...(mesh.localityLbSetting ? { localityLbSetting: mesh.localityLbSetting } : {}),
    ...(Array.isArray(mesh.extensionProviders) ? { extensionProviders: mesh.extensionProviders } : {}),
    ...(Array.isArray(mesh.defaultProviders?.accessLogging)
      ? { defaultAccessLogProviders: mesh.defaultProviders.accessLogging }
      : {}),
    ...(Array.isArray(mesh.defaultProviders?.tracing) ? { defaultTracingProviders: mesh.defaultProviders.tracing } : {}),
    ...(mesh.enableTracing === false ? { enableTracing: false } : {}),
  };
}

export const DEFAULT_MESH: MeshSettings = {
  connectTimeoutSeconds: 10,
  trustDomain: "cluster.local",
  outboundTrafficPolicy: "ALLOW_ANY",
  inboundPort: 15006,
  outboundPort: 15001,
  rootNamespace: "istio-system",
  // Upstream's default mesh config: on (failover wherever outlier detection is).
  localityLbSetting: { enabled: true },
};

export interface PushContext {
  registry: Registry;
  mesh: MeshSettings;
  /** PeerAuthentication objects (security.istio.io), as the cache holds them. */
  peerAuthentications: PeerAuthentication[];
  /** VirtualService objects (networking.istio.io), as the cache holds them. */
  virtualServices?: VirtualService[];
  /** DestinationRule objects (networking.istio.io), as the cache holds them. */
  destinationRules?: DestinationRule[];
  /** Sidecar objects (networking.istio.io), as the cache holds them. */
  sidecars?: Sidecar[];
  /** Telemetry objects (telemetry.istio.io), as the cache holds them. */
  telemetries?: Telemetry[];
  /** AuthorizationPolicy objects (security.istio.io), as the cache holds them. */
  authorizationPolicies?: AuthorizationPolicy[];
  /** Gateway objects (networking.istio.io): what gateway pods serve. */
  gateways?: IstioGateway[];
  /** Secrets by `<namespace>/<name>`, their certificate keys decoded: gateways' credentialNames. */
  credentials?: ReadonlyMap<string, CredentialSecret>;
  /**
   * Whether a gateway's verified ServiceAccount may read its namespace's Secrets (istiod asks
   * the apiserver; a gateway that may not gets none). Unset (tests, parity): not checked.
   */
  secretReaders?: (identity: { namespace: string; serviceAccount: string }) => boolean;
  /** RequestAuthentication objects (security.istio.io), as the cache holds them. */
  requestAuthentications?: RequestAuthentication[];
  /** Key sets istiod fetched, by jwksUri (RequestAuthentications naming one). */
  jwks?: ReadonlyMap<string, string>;
  /** Increases with every push: resources cached for another version are rebuilt. */
  version: number;
  /**
   * A partial push: since version `from`, only these services' endpoints changed (and, with
   * `routes`, VirtualServices), so what was built for `from` stays good but for their clusters
   * and load assignments (and route configurations).
   */
  incremental?: { from: number; hosts: ReadonlySet<string>; routes?: boolean };
}

/** Istio config objects oldest first (creationTimestamp, then namespace and name): upstream's order when several apply. */
export function oldestFirst(
  a: { metadata?: { creationTimestamp?: string; namespace?: string; name?: string } },
  b: { metadata?: { creationTimestamp?: string; namespace?: string; name?: string } },
): number {
  const key = (o: typeof a) =>
    `${o.metadata?.creationTimestamp ?? ""}\n${o.metadata?.namespace ?? ""}\n${o.metadata?.name ?? ""}`;
  const [ka, kb] = [key(a), key(b)];
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

export interface PolicyTargetRef {
  group?: string;
  kind?: string;
  name?: string;
  namespace?: string;
}

/** The label Gateway API deployments put on their pods: the Gateway's name. */
export const GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name";

/**
 * Whether a workload policy (AuthorizationPolicy, RequestAuthentication) applies to a proxy, as
 * upstream's ShouldAttachPolicy decides for sidecars and gateways: it lives in the root
 * namespace or the workload's, and
 * - for a sidecar, it has no targetRefs and its selector (none: every workload) matches;
 * - for a Gateway API gateway's pods (labelled with the Gateway's name), a policy with targetRefs
 *   applies when one names that Gateway (group gateway.networking.k8s.io, kind Gateway) from the
 *   gateway's own namespace; one without applies by selector, as upstream's default.
 * Waypoints (targetRefs to Services, ServiceEntries, GatewayClass istio-waypoint) are ambient's.
 */
export function policyAppliesTo(
  push: PushContext,
  proxy: MeshProxy,
  policy: {
    metadata?: { namespace?: string };
    spec?: {
      selector?: { matchLabels?: Record<string, string> };
      targetRef?: PolicyTargetRef;
      targetRefs?: PolicyTargetRef[];
    };
  },
): boolean {
  const namespace = policy.metadata?.namespace;
  if (namespace !== push.mesh.rootNamespace && namespace !== proxy.namespace) return false;
  const refs = policy.spec?.targetRefs?.length ? policy.spec.targetRefs : policy.spec?.targetRef ? [policy.spec.targetRef] : [];
  const selected = () => Object.entries(policy.spec?.selector?.matchLabels ?? {}).every(([k, v]) => proxy.labels[k] === v);
  const gateway = proxy.labels[GATEWAY_NAME_LABEL];
  if (refs.length === 0) return selected();
  if (gateway === undefined) return false;
  return refs.some(
    (ref) =>
      namespace === proxy.namespace &&
      (!ref.namespace || ref.namespace === proxy.namespace) &&
      ref.group === "gateway.networking.k8s.io" &&
      ref.kind === "Gateway" &&
      ref.name === gateway,
  );
}

/** The Services a proxy's workload belongs to (selected by their selectors), for its inbound side. */
export function serviceTargets(push: PushContext, proxy: MeshProxy): MeshService[] {
  return servicesSelecting(push.registry, proxy.namespace, proxy.labels);
}

/**
 * The ports the proxy's workload serves for its Services (an endpoint's port: the Service's
 * targetPort), sorted, each with the Service port it serves; UDP left out.
 */
export function inboundPorts(push: PushContext, proxy: MeshProxy): [number, ServicePort][] {
  const ports = new Map<number, ServicePort>();
  const served = proxy.ipAddresses.flatMap((ip) => push.registry.workloadPorts.get(ip) ?? []);
  for (const service of serviceTargets(push, proxy))
    for (const ep of served)
      if (ep.hostname === service.hostname) {
        const port = service.ports.find((p) => p.name === ep.servicePortName);
        if (port && port.protocol !== "UDP" && !ports.has(ep.port)) ports.set(ep.port, port);
      }
  return [...ports].sort(([a], [b]) => a - b);
}

/** The proxy's Services whose endpoints at its address take `targetPort`. */
export function servicesServing(push: PushContext, proxy: MeshProxy, targetPort: number): MeshService[] {
  return serviceTargets(push, proxy).filter((s) =>
    (push.registry.endpoints.get(s.hostname) ?? []).some(
      (ep) => ep.port === targetPort && proxy.ipAddresses.includes(ep.address),
    ),
  );
}

/** `outbound|<port>|<subset>|<hostname>` and `inbound|<port>||`, upstream's cluster names. */
export function outboundClusterName(port: number, hostname: string, subset = ""): string {
  return `outbound|${port}|${subset}|${hostname}`;
}

export function inboundClusterName(port: number): string {
  return `inbound|${port}||`;
}

export const BLACKHOLE_CLUSTER = "BlackHoleCluster";
export const PASSTHROUGH_CLUSTER = "PassthroughCluster";
export const INBOUND_PASSTHROUGH_CLUSTER = "InboundPassthroughCluster";
export const SDS_CLUSTER = "sds-grpc";

/**
 * The outbound cluster of a provider's service (upstream's LookupCluster): `service` is a
 * hostname, or `<namespace>/<hostname>` when several namespaces have that host. An error
 * message when there is no such service or the host is ambiguous.
 */
export function lookupCluster(push: PushContext, service: string, port: number): { hostname: string; cluster: string } | string {
  if (!service) return "service must not be empty";
  const parts = service.split("/");
  const [namespace, host] = parts.length === 2 ? parts : [undefined, service];
  const found = push.registry.services.filter((s) => s.hostname === host && (!namespace || s.namespace === namespace));
  const namespaces = [...new Set(found.map((s) => s.namespace))];
  if (!namespace && namespaces.length > 1)
    return `found ${service} in multiple namespaces [${namespaces.join(" ")}], specify the namespace explicitly in the format of <Namespace>/<Hostname>`;
  const svc = found[0];
  if (!svc) return `could not find service ${service} in Istio service registry`;
  return { hostname: svc.hostname, cluster: outboundClusterName(port, svc.hostname) };
}
