// Application probe rewriting. Once the pod's traffic goes through the proxy, the
// kubelet's probes would be refused by mTLS, so each http/tcp/grpc probe (and
// http/tcp lifecycle hook) is pointed at the agent's status port under
// /app-health/<container>/<kind>, and the original is recorded in
// ISTIO_KUBE_APP_PROBERS for the agent to replay. exec probes are left alone.
import type { V1Pod, V1Probe } from "@kubernetes/client-node";
import { PROXY } from "./sidecar-template.ts";

type Handler = NonNullable<V1Probe["httpGet"]> | NonNullable<V1Probe["tcpSocket"]> | NonNullable<V1Probe["grpc"]>;
interface Prober {
  httpGet?: Record<string, unknown>;
  tcpSocket?: Record<string, unknown>;
  grpc?: Record<string, unknown>;
  timeoutSeconds?: number;
}

const PROBES = [
  ["readinessProbe", "app-health", "readyz"],
  ["livenessProbe", "app-health", "livez"],
  ["startupProbe", "app-health", "startupz"],
] as const;
const HOOKS = [
  ["preStop", "app-lifecycle", "prestopz"],
  ["postStart", "app-lifecycle", "poststartz"],
] as const;

/** ISTIO_KUBE_APP_PROBERS' JSON (keys sorted, Go field order inside), or "" when there is nothing to record. */
export function dumpAppProbers(pod: V1Pod, statusPort: number): string {
  const out: Record<string, Prober> = {};
  for (const c of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
    if (c.name === PROXY) continue;
    const named = new Map((c.ports ?? []).filter((p) => p.name).map((p) => [p.name, p.containerPort]));
    for (const [field, prefix, suffix] of PROBES) {
      const prober = toProber(c[field], true, named, statusPort);
      if (prober) out[`/${prefix}/${c.name}/${suffix}`] = prober;
    }
    for (const [hook, prefix, suffix] of HOOKS) {
      // A lifecycle handler has the same httpGet/tcpSocket shape as a probe, without timeouts.
      const prober = toProber(c.lifecycle?.[hook] as V1Probe | undefined, false, named, statusPort);
      if (prober) out[`/${prefix}/${c.name}/${suffix}`] = prober;
    }
  }
  const keys = Object.keys(out).sort();
  if (keys.length === 0) return "";
  return JSON.stringify(Object.fromEntries(keys.map((k) => [k, out[k]])));
}

/** Points every app probe and hook at the status port. Mutates `pod`. */
export function rewriteAppProbes(pod: V1Pod, statusPort: number): void {
  for (const c of [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])]) {
    if (c.name === PROXY) continue;
    for (const [field, prefix, suffix] of PROBES) {
      const probe = c[field];
      if (probe) c[field] = redirect(probe, `/${prefix}/${c.name}/${suffix}`, statusPort) as V1Probe;
    }
    for (const [hook, prefix, suffix] of HOOKS) {
      const handler = c.lifecycle?.[hook];
      if (handler && c.lifecycle && !handler.exec) {
        (c.lifecycle as Record<string, unknown>)[hook] = redirect(
          handler as V1Probe,
          `/${prefix}/${c.name}/${suffix}`,
          statusPort,
          false,
        );
      }
    }
  }
}

function redirect(probe: V1Probe, path: string, statusPort: number, grpcAllowed = true): V1Probe {
  if (!probe.httpGet && !probe.tcpSocket && !(grpcAllowed && probe.grpc)) return probe;
  const out: V1Probe = { ...probe };
  const httpGet: Record<string, unknown> = { ...(probe.httpGet ?? {}) };
  delete out.tcpSocket;
  if (grpcAllowed) delete out.grpc;
  httpGet.path = path;
  httpGet.port = statusPort;
  if (httpGet.scheme === "HTTPS") httpGet.scheme = "HTTP";
  out.httpGet = httpGet as unknown as V1Probe["httpGet"];
  return out;
}

function toProber(
  probe: V1Probe | undefined,
  withTimeout: boolean,
  named: Map<string | undefined, number>,
  statusPort: number,
): Prober | undefined {
  if (!probe) return undefined;
  const timeout = withTimeout && probe.timeoutSeconds ? { timeoutSeconds: probe.timeoutSeconds } : {};
  if (withTimeout && probe.grpc) return { grpc: goGrpc(probe.grpc), ...timeout };
  const kind = probe.httpGet ? "httpGet" : probe.tcpSocket ? "tcpSocket" : undefined;
  if (!kind) return undefined;
  const action = (kind === "httpGet" ? probe.httpGet : probe.tcpSocket) as Handler & { port: number | string };
  let port = action.port;
  if (typeof port === "string") {
    const resolved = named.get(port);
    if (resolved === undefined) return undefined; // a name no container port has: nothing to replay
    port = resolved;
  } else if (port === statusPort) {
    return undefined; // already aimed at the agent
  }
  const body = kind === "httpGet" ? goHttpGet({ ...action, port }) : goTcpSocket({ ...action, port });
  return { [kind]: body, ...timeout };
}

// Field order and omitempty of Go's HTTPGetAction, TCPSocketAction and GRPCAction.
function goHttpGet(a: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (a.path) out.path = a.path;
  out.port = a.port;
  if (a.host) out.host = a.host;
  if (a.scheme) out.scheme = a.scheme;
  if (Array.isArray(a.httpHeaders) && a.httpHeaders.length > 0) out.httpHeaders = a.httpHeaders;
  return out;
}

function goTcpSocket(a: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { port: a.port };
  if (a.host) out.host = a.host;
  return out;
}

function goGrpc(a: { port: number; service?: string | null }): Record<string, unknown> {
  return { port: a.port, service: a.service ?? null };
}
