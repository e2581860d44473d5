// `rigger proxy-status` and `rigger proxy-config`: what istioctl's commands of those names show,
// read from istiod's debug views (/debug/syncz, /debug/config_dump) through the apiserver's
// Service proxy (no port-forward; needs `get services/proxy` in istiod's namespace).
//   rigger proxy-status [--revision REV] [--namespace istio-system] [--kubeconfig FILE]
//   rigger proxy-config cluster|listener|route|endpoint|authz <pod>.<namespace> [same flags]
import { parseArgs } from "node:util";
import { rawClient } from "../kube/raw-client.ts";
import type { AuthorizationView, SyncStatus } from "../xds/server/debug.ts";
import { kubeConfig, table } from "./table.ts";

export const usage = `usage: rigger proxy-status [--revision REV] [--namespace NS] [--kubeconfig FILE]
       rigger proxy-config cluster|listener|route|endpoint|authz <pod>.<namespace> [--revision REV] [--namespace NS] [--kubeconfig FILE]

proxy-status: every proxy connected to the revision's istiod and, per xDS type, SYNCED (its last
response acknowledged), STALE (sent, not yet acknowledged), REJECTED (the proxy's NACK) or
NOT SENT. proxy-config: the clusters, listeners, routes or endpoints istiod sends that proxy;
authz: the AuthorizationPolicies it enforces, in Envoy's order, and the rules it could not be
given (an ALLOW leaves them out, a DENY denies more: fail closed), with why.
`;

export function statusRows(statuses: SyncStatus[], istiod: string): string[][] {
  const cell = (s: SyncStatus, type: string) => {
    const t = s.types[type];
    if (!t?.sent) return "NOT SENT";
    if (t.nacked && t.sent !== t.acked) return "REJECTED";
    return t.synced ? "SYNCED" : "STALE";
  };
  return statuses.map((s) => [
    s.proxy,
    s.clusterId,
    cell(s, "cds"),
    cell(s, "lds"),
    cell(s, "eds"),
    cell(s, "rds"),
    istiod,
    s.istioVersion,
  ]);
}

interface Dump {
  configs?: Record<string, unknown>[];
}

const section = (dump: Dump, kind: string) => dump.configs?.find((c) => String(c["@type"]).endsWith(`.${kind}`)) ?? {};

/** Rows for `proxy-config <kind>` from a ConfigDump (proto3 JSON). */
export function configRows(dump: Dump, kind: string): { header: string[]; rows: string[][] } {
  if (kind === "cluster") {
    const clusters = (
      (section(dump, "ClustersConfigDump").dynamicActiveClusters ?? []) as { cluster?: Record<string, unknown> }[]
    ).map((c) => c.cluster ?? {});
    return {
      header: ["SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE"],
      rows: clusters.map((c) => {
        const [direction = "", port = "", subset = "", host = ""] = String(c.name).split("|");
        const named = String(c.name).includes("|");
        return named
          ? [host, port, subset || "-", direction, String(c.type ?? "STATIC")]
          : [String(c.name), "-", "-", "-", String(c.type ?? "STATIC")];
      }),
    };
  }
  if (kind === "listener") {
    const listeners = (
      (section(dump, "ListenersConfigDump").dynamicListeners ?? []) as { activeState?: { listener?: Record<string, unknown> } }[]
    ).map((l) => l.activeState?.listener ?? {});
    return {
      header: ["NAME", "ADDRESS", "PORT", "CHAINS"],
      rows: listeners.map((l) => {
        const address = (l.address as { socketAddress?: { address?: string; portValue?: number } } | undefined)?.socketAddress;
        return [
          String(l.name),
          address?.address ?? "",
          String(address?.portValue ?? 0),
          String((l.filterChains as unknown[] | undefined)?.length ?? 0),
        ];
      }),
    };
  }
  if (kind === "route") {
    const routes = (
      (section(dump, "RoutesConfigDump").dynamicRouteConfigs ?? []) as { routeConfig?: Record<string, unknown> }[]
    ).map((r) => r.routeConfig ?? {});
    return {
      header: ["NAME", "VHOST NAME", "DOMAINS"],
      rows: routes.flatMap((r) =>
        ((r.virtualHosts ?? []) as { name?: string; domains?: string[] }[]).map((v) => [
          String(r.name),
          v.name ?? "",
          (v.domains ?? []).join(","),
        ]),
      ),
    };
  }
  if (kind === "endpoint") {
    const assignments = (
      (section(dump, "EndpointsConfigDump").dynamicEndpointConfigs ?? []) as { endpointConfig?: Record<string, unknown> }[]
    ).map((e) => e.endpointConfig ?? {});
    return {
      header: ["ENDPOINT", "STATUS", "CLUSTER"],
      rows: assignments.flatMap((a) =>
        (
          (a.endpoints ?? []) as {
            lbEndpoints?: {
              endpoint?: { address?: { socketAddress?: { address?: string; portValue?: number } } };
              healthStatus?: string;
            }[];
          }[]
        ).flatMap((group) =>
          (group.lbEndpoints ?? []).map((e) => {
            const s = e.endpoint?.address?.socketAddress;
            return [`${s?.address}:${s?.portValue}`, e.healthStatus ?? "HEALTHY", String(a.clusterName)];
          }),
        ),
      ),
    };
  }
  throw new Error(`unknown kind ${kind}: want cluster, listener, route, endpoint or authz`);
}

/** `proxy-config authz`: the policies as a table, then the rules left out and why. */
export function authorizationText(view: AuthorizationView): string {
  const rows = view.policies.map((p) => [
    p.action === "CUSTOM" ? `CUSTOM (${p.provider})` : p.action,
    `${p.name}.${p.namespace}`,
    String(p.rules),
    p.dryRun ? "yes" : "no",
  ]);
  const policies =
    rows.length > 0
      ? table(["ACTION", "AUTHORIZATION POLICY", "RULES", "DRY RUN"], rows, 3)
      : "no AuthorizationPolicy applies: every request is allowed\n";
  if (view.problems.length === 0) return policies;
  return `${policies}\nleft out, failing closed (an ALLOW allows less, a DENY denies more):\n${view.problems.map((p) => `  ${p}\n`).join("")}`;
}

function istiodPath(namespace: string, revision: string | undefined, debugPath: string): string {
  const service = revision && revision !== "default" ? `istiod-${revision}` : "istiod";
  // The Service's https-webhook port (443 → istiod's 15017), where the debug views are served.
  return `/api/v1/namespaces/${namespace}/services/https:${service}:443/proxy${debugPath}`;
}

export async function runProxyCommand(command: "proxy-status" | "proxy-config", args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      kubeconfig: { type: "string" },
      namespace: { type: "string", default: "istio-system" },
      revision: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  const wanted = command === "proxy-status" ? 0 : 2;
  if (values.help || positionals.length !== wanted) {
    (values.help ? process.stdout : process.stderr).write(usage);
    return values.help ? 0 : 2;
  }
  const client = rawClient(kubeConfig(values.kubeconfig));
  const namespace = values.namespace ?? "istio-system";
  const istiod = values.revision && values.revision !== "default" ? `istiod-${values.revision}` : "istiod";
  try {
    if (command === "proxy-status") {
      const statuses = await client.get<SyncStatus[]>(istiodPath(namespace, values.revision, "/debug/syncz"));
      process.stdout.write(
        table(["NAME", "CLUSTER", "CDS", "LDS", "EDS", "RDS", "ISTIOD", "VERSION"], statusRows(statuses, istiod)),
      );
      return 0;
    }
    const [kind = "", proxy = ""] = positionals;
    if (kind === "authz") {
      const view = await client.get<AuthorizationView>(
        istiodPath(namespace, values.revision, `/debug/authorizationz?proxyID=${encodeURIComponent(proxy)}`),
      );
      process.stdout.write(authorizationText(view));
      return 0;
    }
    const dump = await client.get<Dump>(
      istiodPath(namespace, values.revision, `/debug/config_dump?proxyID=${encodeURIComponent(proxy)}`),
    );
    const { header, rows } = configRows(dump, kind);
    process.stdout.write(table(header, rows, 5));
    return 0;
  } catch (err) {
    process.stderr.write(`rigger ${command}: ${(err as Error).message}\n`);
    return 1;
  }
}
