// Gateway status parts: the addresses a gateway Service offers (both kinds of gateway), and a
// Gateway API Gateway's status as upstream istiod words it: Programmed (AddressNotAssigned while
// a load balancer is pending) and per listener its supported route kinds, attached routes and
// Accepted/Conflicted/Programmed/ResolvedRefs (a TLS-terminating listener's Programmed and
// ResolvedRefs are istiod's: gateway-api-certificates.ts). Pure: Service and routes in, status parts out.
import type { Condition } from "../../kube/conditions.ts";
import { CERTIFICATE_CONDITION_TYPES, terminatesWithCertificates } from "../../xds/generate/gateway-api-certificates.ts";

const GROUP = "gateway.networking.k8s.io";

export interface Listener {
  name: string;
  port: number;
  protocol: string;
  tls?: { mode?: string; certificateRefs?: { name: string }[]; options?: Record<string, string> };
  allowedRoutes?: {
    namespaces?: { from?: "Same" | "All" | "Selector"; selector?: { matchLabels?: Record<string, string> } };
    kinds?: { group?: string; kind: string }[];
  };
}

export interface Route {
  kind: "HTTPRoute" | "GRPCRoute" | "TCPRoute" | "TLSRoute";
  metadata: { name: string; namespace: string };
  spec?: {
    parentRefs?: { group?: string; kind?: string; name: string; namespace?: string; sectionName?: string; port?: number }[];
  };
}

export interface ServiceState {
  metadata: { name: string; namespace?: string };
  spec?: { type?: string; ports?: { port: number }[] };
  status?: { loadBalancer?: { ingress?: { ip?: string; hostname?: string }[] } };
}

export type Address = { type: "IPAddress" | "Hostname"; value: string };

/** Load balancer addresses, else the Service's cluster hostname. */
export function serviceAddresses(service: ServiceState, clusterDomain = "cluster.local"): Address[] {
  const out: Address[] = [];
  for (const i of service.status?.loadBalancer?.ingress ?? []) {
    if (i.ip) out.push({ type: "IPAddress", value: i.ip });
    else if (i.hostname) out.push({ type: "Hostname", value: i.hostname });
  }
  if (out.length > 0) return out;
  return [{ type: "Hostname", value: `${service.metadata.name}.${service.metadata.namespace}.svc.${clusterDomain}` }];
}

type NewCondition = Omit<Condition, "lastTransitionTime">;

export interface ListenerStatus {
  name: string;
  supportedKinds: { group: string; kind: string }[];
  attachedRoutes: number;
  conditions: NewCondition[];
}

/** "a", "a and b", "a, b, and c", as upstream joins service names in its messages. */
function humanJoin(items: string[]): string {
  if (items.length <= 1) return items[0] ?? "";
  if (items.length === 2) return `${items[0]} and ${items[1]}`;
  return `${items.slice(0, -1).join(", ")}, and ${items[items.length - 1]}`;
}

/** Programmed and the addresses, from the Service as it is now and the listeners' ports. */
export function programmedStatus(
  service: ServiceState | undefined,
  listeners: Listener[] = [],
): { condition: NewCondition; addresses: Address[] } {
  if (!service) {
    return {
      condition: { type: "Programmed", status: "False", reason: "Pending", message: "the gateway's Service does not exist yet" },
      addresses: [],
    };
  }
  const host = `${service.metadata.name}.${service.metadata.namespace}.svc.cluster.local`;
  const ports = [...new Set(listeners.map((l) => l.port))].map((p) => `${host}:${p}`);
  const addresses = serviceAddresses(service);
  const pending = service.spec?.type === "LoadBalancer" && !(service.status?.loadBalancer?.ingress ?? []).length;
  if (pending) {
    return {
      condition: {
        type: "Programmed",
        status: "False",
        reason: "AddressNotAssigned",
        message: `Assigned to service(s) ${humanJoin(ports)}, but failed to assign to all requested addresses: address pending for hostname "${host}"`,
      },
      addresses,
    };
  }
  return {
    condition: {
      type: "Programmed",
      status: "True",
      reason: "Programmed",
      message: ports.length > 0 ? `Resource programmed, assigned to service(s) ${humanJoin(ports)}` : "Resource programmed",
    },
    addresses,
  };
}

/** The route kinds a listener takes, as upstream decides them (TLS passthrough → TLSRoute). */
export function supportedKinds(listener: Listener): { group: string; kind: string }[] {
  const kinds = (names: string[]) => names.map((kind) => ({ group: GROUP, kind }));
  let supported: { group: string; kind: string }[] = [];
  switch (listener.protocol) {
    case "HTTP":
    case "HTTPS":
      supported = kinds(["HTTPRoute", "GRPCRoute"]);
      break;
    case "TCP":
      supported = kinds(["TCPRoute"]);
      break;
    case "TLS":
      supported = kinds([listener.tls?.mode === "Passthrough" ? "TLSRoute" : "TCPRoute"]);
      break;
  }
  const allowed = listener.allowedRoutes?.kinds;
  if (!allowed?.length) return supported;
  return supported.filter((s) => allowed.some((a) => (a.group ?? GROUP) === s.group && a.kind === s.kind));
}

/** Whether `route` names this listener of `gateway` as a parent and the listener lets its namespace in. */
function attaches(
  route: Route,
  gateway: { name: string; namespace: string },
  listener: Listener,
  namespaceLabels: (namespace: string) => Record<string, string> | undefined,
): boolean {
  if (!supportedKinds(listener).some((k) => k.kind === route.kind)) return false;
  const names = (route.spec?.parentRefs ?? []).some(
    (ref) =>
      (ref.group ?? GROUP) === GROUP &&
      (ref.kind ?? "Gateway") === "Gateway" &&
      ref.name === gateway.name &&
      (ref.namespace ?? route.metadata.namespace) === gateway.namespace &&
      (ref.sectionName === undefined || ref.sectionName === listener.name) &&
      (ref.port === undefined || ref.port === listener.port),
  );
  if (!names) return false;
  const from = listener.allowedRoutes?.namespaces?.from ?? "Same";
  if (from === "All") return true;
  if (from === "Same") return route.metadata.namespace === gateway.namespace;
  const wanted = listener.allowedRoutes?.namespaces?.selector?.matchLabels ?? {};
  const labels = namespaceLabels(route.metadata.namespace) ?? {};
  return Object.entries(wanted).every(([k, v]) => labels[k] === v);
}

export function listenerStatuses(
  gateway: { name: string; namespace: string },
  listeners: Listener[],
  routes: Route[],
  namespaceLabels: (namespace: string) => Record<string, string> | undefined = () => undefined,
): ListenerStatus[] {
  const ok = (type: string, reason: string, status: Condition["status"] = "True"): NewCondition => ({
    type,
    status,
    reason,
    message: "No errors found",
  });
  return listeners.map((listener) => {
    const kinds = supportedKinds(listener);
    const conditions: NewCondition[] = [];
    if (listener.protocol === "TCP" || listener.protocol === "TLS") {
      // Upstream 1.27 serves TCPRoute/TLSRoute (experimental channel) only behind this flag.
      conditions.push({
        type: "Accepted",
        status: "False",
        reason: "UnsupportedProtocol",
        message: `protocol "${listener.protocol}" is supported, but only when PILOT_ENABLE_ALPHA_GATEWAY_API=true is configured`,
      });
    } else if (kinds.length === 0) {
      conditions.push({
        type: "Accepted",
        status: "False",
        reason: "UnsupportedProtocol",
        message: `protocol "${listener.protocol}" is not supported`,
      });
    } else {
      conditions.push(ok("Accepted", "Accepted"));
    }
    conditions.push(ok("Conflicted", "NoConflicts", "False"));
    // A TLS-terminating listener's certificates are judged by the control plane serving it,
    // which reads Secrets (the operator may not): istiod writes its ResolvedRefs and Programmed.
    if (!terminatesWithCertificates(listener))
      conditions.push(ok("Programmed", "Programmed"), ok("ResolvedRefs", "ResolvedRefs"));
    return {
      name: listener.name,
      supportedKinds: kinds,
      attachedRoutes: routes.filter((r) => attaches(r, gateway, listener, namespaceLabels)).length,
      conditions,
    };
  });
}

/** A Gateway's status without the listener conditions istiod owns (to compare with what the operator writes). */
export function withoutControlPlaneConditions<S extends { listeners?: { name: string; conditions?: Condition[] }[] } | undefined>(
  status: S,
  listeners: Listener[],
): S {
  if (!status?.listeners) return status;
  const judged = new Set(listeners.filter(terminatesWithCertificates).map((l) => l.name));
  return {
    ...status,
    listeners: status.listeners.map((l) =>
      judged.has(l.name) ? { ...l, conditions: l.conditions?.filter((c) => !CERTIFICATE_CONDITION_TYPES.includes(c.type)) } : l,
    ),
  };
}
