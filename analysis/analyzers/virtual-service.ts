// VirtualService checks (upstream's virtualservice.* analyzers): destinations whose host, port
// or subset does not exist (IST0101, IST0112), gateways that do not exist or do not serve the
// VirtualService's hosts (IST0101, IST0132), subsets a gateway route cannot honour (IST0140),
// and VirtualServices of the mesh gateway defining the same host (IST0109).
import { destinationRuleFor } from "../../xds/generate/destination-rule.ts";
import type { IstioGateway } from "../../xds/generate/gateway.ts";
import { resolveHost, type VirtualService } from "../../xds/generate/virtual-service.ts";
import type { MeshService } from "../../xds/registry/registry.ts";
import { type AnalysisContext, type AnalysisResource, type FieldPath, fullName, namespaceOf } from "../analyze.ts";
import { hostMatches, namesForNamespace, sortedBy } from "../hosts.ts";
import { serviceFor } from "../lookup.ts";
import { messages } from "../messages.ts";

const KIND = "VirtualService.networking.istio.io";
const GATEWAY = "Gateway.networking.istio.io";

interface Destination {
  host?: string;
  subset?: string;
  port?: { number?: number };
}
interface Placed {
  destination: Destination;
  path: FieldPath;
  mirror: boolean;
}

const specOf = (r: AnalysisResource) => (r.object as VirtualService).spec ?? {};

/** Route destinations, tcp then tls then http as upstream lists them, and HTTP mirrors. */
function destinations(r: AnalysisResource): Placed[] {
  const spec = specOf(r) as Record<string, { route?: { destination?: Destination }[] }[] | undefined>;
  const out: Placed[] = [];
  for (const section of ["tcp", "tls", "http"])
    for (const [i, rule] of (spec[section] ?? []).entries())
      for (const [j, route] of (rule.route ?? []).entries())
        if (route.destination)
          out.push({
            destination: route.destination,
            path: ["spec", section, i, "route", j, "destination", "host"],
            mirror: false,
          });
  ((spec.http ?? []) as { mirror?: Destination; mirrors?: { destination?: Destination }[] }[]).forEach((rule, i) => {
    if (rule.mirror) out.push({ destination: rule.mirror, path: ["spec", "http", i, "mirror", "host"], mirror: true });
    (rule.mirrors ?? []).forEach((m, j) => {
      if (m.destination)
        out.push({ destination: m.destination, path: ["spec", "http", i, "mirrors", j, "destination", "host"], mirror: true });
    });
  });
  return out;
}

/** The host (and port) of a destination: a Service or ServiceEntry that exists and has that port. */
function checkHost(context: AnalysisContext, r: AnalysisResource, placed: Placed, service: MeshService | undefined): void {
  const { destination, path, mirror } = placed;
  const host = destination.host ?? "";
  const port = destination.port?.number;
  if (!service) context.report(r, messages.referencedResourceNotFound(mirror ? "mirror host" : "host", host), path);
  else if (port === undefined) {
    if (service.ports.length > 1)
      context.report(
        r,
        messages.virtualServiceDestinationPortSelectorRequired(
          host,
          service.ports.map((p) => p.port),
        ),
        path,
      );
  } else if (!service.ports.some((p) => p.port === port))
    context.report(r, messages.referencedResourceNotFound("host:port", `${host}:${port}`), path);
}

function checkDestinations(context: AnalysisContext, r: AnalysisResource): void {
  const namespace = namespaceOf(r);
  for (const placed of destinations(r)) {
    const { destination, path, mirror } = placed;
    const host = destination.host ?? "";
    const service = serviceFor(context, host, namespace, specOf(r).exportTo);
    // Without the cluster's Services only the subset can be judged (upstream's DestinationRuleAnalyzer).
    if (context.has("Service.core")) checkHost(context, r, placed, service);

    // The subset: defined by the DestinationRule that applies to this host for the VirtualService's namespace.
    const subset = destination.subset;
    if (!subset) continue;
    const target =
      service ?? ({ hostname: resolveHost(host, namespace, context.push.registry.domainSuffix), namespace } as MeshService);
    const rule = destinationRuleFor(context.push, { namespace }, target);
    if (!rule?.subsets.some((s) => s.name === subset))
      context.report(
        r,
        messages.referencedResourceNotFound(
          mirror ? "mirror+subset in destinationrule" : "host+subset in destinationrule",
          `${host}+${subset}`,
        ),
        path,
      );
  }
}

/** A subset on a route of a gateway-bound VirtualService while another VirtualService routes that host by subset (IST0140). */
function checkIngressSubsets(context: AnalysisContext, r: AnalysisResource): void {
  if ((specOf(r).gateways ?? []).length === 0) return;
  const bySubset = context.of(KIND).flatMap((other) => {
    const spec = specOf(other);
    return (spec.http ?? []).flatMap((rule) =>
      (rule.route ?? []).flatMap((route) =>
        route.destination?.subset && (spec.hosts ?? []).includes(route.destination.host ?? "")
          ? [{ other, host: route.destination.host }]
          : [],
      ),
    );
  });
  for (const [i, rule] of (specOf(r).http ?? []).entries())
    for (const [j, route] of (rule.route ?? []).entries()) {
      if (route.destination?.subset) continue;
      for (const { other, host } of bySubset)
        if (host === route.destination?.host)
          context.report(r, messages.ingressRouteRulesNotAffected(fullName(other), fullName(r)), [
            "spec",
            "http",
            i,
            "route",
            j,
            "destination",
            "host",
          ]);
    }
}

function checkGateways(context: AnalysisContext, r: AnalysisResource): void {
  const namespace = namespaceOf(r);
  const spec = specOf(r);
  (spec.gateways ?? []).forEach((name, i) => {
    if (name === "mesh") return;
    const [gwNamespace, gwName] = name.includes("/") ? (name.split("/", 2) as [string, string]) : [namespace, name];
    const gateway = context.find(GATEWAY, gwNamespace, gwName);
    if (!gateway) context.report(r, messages.referencedResourceNotFound("gateway", name), ["spec", "gateways", i]);
    if (!servesHosts(gateway, spec.hosts ?? [], namespace))
      context.report(r, messages.virtualServiceHostNotFoundInGateway(spec.hosts ?? [], fullName(r), `${gwNamespace}/${gwName}`), [
        "spec",
        "gateways",
        i,
      ]);
  });
}

/** Whether a Gateway's servers name a host of the VirtualService (as its namespace may bind). */
function servesHosts(gateway: AnalysisResource | undefined, hosts: string[], namespace: string): boolean {
  if (!gateway) return false;
  const gatewayNamespace = namespaceOf(gateway);
  const serverHosts = ((gateway.object as IstioGateway).spec?.servers ?? []).flatMap((s) =>
    (s.hosts ?? []).map((h) => (h.startsWith("./") ? `${gatewayNamespace}/${h.slice(2)}` : h)),
  );
  return namesForNamespace(serverHosts, namespace).some((g) => hosts.some((h) => hostMatches(g, h)));
}

/** VirtualServices bound to the mesh gateway that define the same host for the same namespaces (IST0109). */
function checkMeshHostConflicts(context: AnalysisContext): void {
  const byScopedHost = new Map<string, AnalysisResource[]>();
  for (const r of context.of(KIND)) {
    const spec = specOf(r);
    const gateways = spec.gateways ?? [];
    if (gateways.length > 0 && !gateways.includes("mesh")) continue;
    const namespace = namespaceOf(r);
    const exportTo = spec.exportTo ?? [];
    const scopes =
      exportTo.length === 0 || exportTo.includes("*") ? ["*"] : [...new Set(exportTo.map((e) => (e === "." ? namespace : e)))];
    for (const scope of scopes)
      for (const host of spec.hosts ?? []) {
        const key = `${scope}/${resolveHost(host, namespace, context.push.registry.domainSuffix)}`;
        byScopedHost.set(key, [...(byScopedHost.get(key) ?? []), r]);
      }
  }
  const reported = new Set<string>();
  for (const [scoped, list] of sortedBy([...byScopedHost], ([k]) => k)) {
    const [scope, host] = scoped.split(/\/(.*)/s) as [string, string];
    const conflicting =
      scope === "*"
        ? list
        : [
            ...list,
            ...[...byScopedHost].flatMap(([k, rs]) => {
              const [s, h] = k.split(/\/(.*)/s) as [string, string];
              return s === "*" && hostMatches(host, h) ? rs : [];
            }),
          ];
    if (conflicting.length < 2) continue;
    const names = conflicting.map(fullName).sort().join(",");
    for (const r of conflicting) {
      if (reported.has(fullName(r))) continue;
      reported.add(fullName(r));
      context.report(r, messages.conflictingMeshGatewayVirtualServiceHosts(names, scoped), ["metadata", "name"]);
    }
  }
}

export function virtualServiceChecks(context: AnalysisContext): void {
  checkMeshHostConflicts(context);
  for (const r of context.of(KIND)) {
    checkDestinations(context, r);
    if (context.has("Service.core")) checkIngressSubsets(context, r);
    checkGateways(context, r);
  }
}
