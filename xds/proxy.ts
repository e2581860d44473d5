// Who is asking for configuration: the Envoy node a proxy sends in its first request, as
// pilot-agent fills it in. Node id `<type>~<ip>~<pod>.<namespace>~<namespace>.svc.<domain>`;
// metadata (a Struct) carries NAMESPACE, SERVICE_ACCOUNT, LABELS, INSTANCE_IPS, ISTIO_VERSION,
// CLUSTER_ID and the rest (upstream's pkg/model NodeMetadata). Pure: a node in, a MeshProxy or a
// NodeError saying what is wrong out.

export type ProxyType = "sidecar" | "router";

export interface MeshProxy {
  type: ProxyType;
  /** `<pod>.<namespace>`, what upstream calls the proxy's ID and istioctl shows. */
  id: string;
  /** The whole Envoy node id. */
  nodeId: string;
  ipAddresses: string[];
  /** Namespace whose config applies (metadata NAMESPACE, else from the DNS domain). */
  namespace: string;
  dnsDomain: string;
  serviceAccount: string;
  labels: Record<string, string>;
  /** "1.27.9", or "" when the proxy did not say. */
  istioVersion: string;
  clusterId: string;
  /** The pod's name (metadata NAME, else from the id). */
  podName: string;
  /** Metadata as sent, for what the generators need beyond the fields above. */
  metadata: Record<string, unknown>;
  /** Envoy extensions the proxy's Envoy build has (node.extensions names): what it can be sent. */
  extensions: Set<string>;
  /**
   * Whether its Envoy is Istio's build (proxyv2), with Istio's own filters (metadata exchange,
   * istio.stats, the ALPN override): it lists one of them, or lists no extensions at all (older
   * clients, upstream's assumption). A plain Envoy lists its extensions and none of Istio's.
   */
  istioFilters: boolean;
  /**
   * Who the proxy proved to be (its ServiceAccount token, reviewed when the stream opened; the
   * node's namespace and ServiceAccount were checked against it). Unset on the plaintext port.
   */
  verifiedIdentity?: { namespace: string; serviceAccount: string };
}

const ISTIO_EXTENSIONS = [
  "istio.stats",
  "istio.metadata_exchange",
  "envoy.filters.network.metadata_exchange",
  "envoy.filters.http.peer_metadata",
  "istio.alpn",
];

/** A proxyless gRPC client or server (node metadata GENERATOR=grpc), not an Envoy. */
export function isProxylessGrpc(proxy: MeshProxy): boolean {
  return proxy.metadata.GENERATOR === "grpc";
}

export class NodeError extends Error {}

export interface EnvoyNode {
  id?: string;
  cluster?: string;
  metadata?: Record<string, unknown>;
  extensions?: { name?: string }[];
  userAgentBuildVersion?: unknown;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const isIp = (s: string) => IPV4.test(s) || (s.includes(":") && /^[0-9a-fA-F:.]+$/.test(s));
const str = (v: unknown) => (typeof v === "string" ? v : "");

/** Largest node id and metadata accepted (pilot-agent sends a few KiB). */
const MAX_NODE_ID = 1024;

export function parseNode(node: EnvoyNode | undefined): MeshProxy {
  if (!node?.id) throw new NodeError("the first request carries no node id");
  if (node.id.length > MAX_NODE_ID) throw new NodeError(`the node id is longer than ${MAX_NODE_ID} characters`);
  const parts = node.id.split("~");
  if (parts.length !== 4) throw new NodeError(`node id ${JSON.stringify(node.id)} is not <type>~<ip>~<pod>.<namespace>~<domain>`);
  const [type = "", ip = "", id = "", dnsDomain = ""] = parts;
  if (type !== "sidecar" && type !== "router")
    throw new NodeError(`node id ${JSON.stringify(node.id)}: type ${JSON.stringify(type)} is neither sidecar nor router`);
  const metadata = node.metadata ?? {};
  const instanceIps = str(metadata.INSTANCE_IPS)
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const ipAddresses = instanceIps.length > 0 && instanceIps.every(isIp) ? instanceIps : isIp(ip) ? [ip] : [];
  if (ipAddresses.length === 0)
    throw new NodeError(`node id ${JSON.stringify(node.id)}: no valid IP address in the id or INSTANCE_IPS`);
  const namespace = str(metadata.NAMESPACE) || (dnsDomain.split(".").length > 1 ? (dnsDomain.split(".")[0] ?? "") : "");
  const extensions = new Set((node.extensions ?? []).map((e) => e.name ?? "").filter(Boolean));
  const labels: Record<string, string> = {};
  if (metadata.LABELS && typeof metadata.LABELS === "object")
    for (const [k, v] of Object.entries(metadata.LABELS as Record<string, unknown>)) if (typeof v === "string") labels[k] = v;
  return {
    type,
    id,
    nodeId: node.id,
    ipAddresses,
    namespace,
    dnsDomain,
    serviceAccount: str(metadata.SERVICE_ACCOUNT),
    labels,
    istioVersion: str(metadata.ISTIO_VERSION),
    clusterId: str(metadata.CLUSTER_ID) || "Kubernetes",
    podName: str(metadata.NAME) || (id.includes(".") ? id.slice(0, id.lastIndexOf(".")) : id),
    metadata,
    extensions,
    istioFilters: extensions.size === 0 || ISTIO_EXTENSIONS.some((e) => extensions.has(e)),
  };
}

/**
 * Whether a caller with this identity may get this proxy's configuration (upstream's
 * checkConnectionIdentity): its namespace and ServiceAccount must be the ones the node claims.
 * Returns why not, or undefined.
 */
export function identityMismatch(proxy: MeshProxy, caller: { namespace: string; serviceAccount: string }): string | undefined {
  if (proxy.namespace && proxy.namespace !== caller.namespace)
    return `the node says namespace ${proxy.namespace}, its credentials are of namespace ${caller.namespace}`;
  if (proxy.serviceAccount && proxy.serviceAccount !== caller.serviceAccount)
    return `the node says ServiceAccount ${proxy.serviceAccount}, its credentials are of ${caller.namespace}/${caller.serviceAccount}`;
  return undefined;
}
