// Which VirtualService routes a host for a proxy, as upstream decides it:
// - only mesh VirtualServices (no `gateways`, or `mesh` among them) with hosts count; one without
//   hosts is a delegate, used only through a root's `delegate` (below);
// - visibility (`exportTo`; unset means every namespace, `.` the VirtualService's own): a proxy
//   sees those private to its namespace first, then those exported to it by name, then the
//   public ones, each group oldest first; of several naming one host the first wins (upstream
//   counts the loser in pilot_vservice_dup_domain), so a namespace can override a public one;
// - an exact host beats a wildcard host, and of wildcard hosts the longest (most specific) wins;
// - delegation: an `http` rule with `delegate` is replaced by the delegate's rules, each with
//   the root rule's match conditions merged in (the delegate's must be narrower: a conflicting
//   one is dropped) and the root's rewrite, timeout, retries, fault, mirror, CORS and headers
//   where the delegate has none. A delegate that does not exist, or is not exported to the
//   root's namespace, leaves that rule out. The delegate's short hosts resolve in its own
//   namespace.
import { oldestFirst, type PushContext } from "./context.ts";
import type { StringMatch } from "./route-actions.ts";
import {
  type Destination,
  type HttpMatchRequest,
  type HttpRoute,
  resolveGatewayName,
  resolveHost,
  usesGatewaySemantics,
  type VirtualService,
} from "./virtual-service.ts";

/** Bound to the mesh's sidecars (no gateways, or `mesh` among them). */
function forMesh(vs: VirtualService): boolean {
  const gateways = vs.spec?.gateways ?? [];
  return gateways.length === 0 || gateways.includes("mesh");
}

/** Whether proxies in `namespace` see `vs` (its `exportTo`; unset: every namespace). */
export function exportedTo(vs: VirtualService, namespace: string): boolean {
  const exportTo = vs.spec?.exportTo ?? [];
  if (exportTo.length === 0) return true;
  return exportTo.some((e) => e === "*" || e === namespace || (e === "." && vs.metadata?.namespace === namespace));
}

/** 0: private to `namespace`, 1: exported to it by name, 2: public (upstream's lookup order). */
function rank(vs: VirtualService, namespace: string): number {
  const exportTo = vs.spec?.exportTo ?? [];
  if (exportTo.includes(".") && vs.metadata?.namespace === namespace) return 0;
  if (exportTo.includes(namespace)) return 1;
  return 2;
}

// ---- Delegation ------------------------------------------------------------------------------

/** Destinations' short hosts resolved in `namespace` (a delegate's, before its rules join a root of another). */
function withResolvedHosts(rule: HttpRoute, namespace: string, domainSuffix: string): HttpRoute {
  const resolve = (d: Destination | undefined) => d && { ...d, host: resolveHost(d.host ?? "", namespace, domainSuffix) };
  return {
    ...rule,
    route: rule.route?.map((r) => ({ ...r, destination: resolve(r.destination) })),
    ...(rule.mirror ? { mirror: resolve(rule.mirror) } : {}),
    ...(rule.mirrors ? { mirrors: rule.mirrors.map((m) => ({ ...m, destination: resolve(m.destination) })) } : {}),
  };
}

/** Whether a delegate's string match cannot be narrower than the root's (upstream's stringMatchConflict). */
function stringConflict(root: StringMatch | undefined, leaf: StringMatch | undefined): boolean {
  if (!root || !leaf) return false;
  if (root.regex && (leaf.regex || leaf.prefix || leaf.exact)) return true;
  if (leaf.regex && (root.regex || root.prefix || root.exact)) return true;
  if (root.exact) return Boolean(leaf.prefix) || leaf.exact !== root.exact;
  if (root.prefix) {
    if (leaf.prefix) return !leaf.prefix.startsWith(root.prefix);
    if (leaf.exact) return !leaf.exact.startsWith(root.prefix);
  }
  return true;
}

function matchConflict(root: HttpMatchRequest, leaf: HttpMatchRequest): boolean {
  const fields = ["uri", "scheme", "method", "authority"] as const;
  if (fields.some((f) => stringConflict(root[f], leaf[f]))) return true;
  for (const [key, value] of Object.entries(leaf.headers ?? {})) if (stringConflict(root.headers?.[key], value)) return true;
  for (const [key, value] of Object.entries(leaf.withoutHeaders ?? {}))
    if (stringConflict(root.withoutHeaders?.[key], value)) return true;
  for (const [key, value] of Object.entries(leaf.queryParams ?? {}))
    if (stringConflict(root.queryParams?.[key], value)) return true;
  if (Boolean(root.ignoreUriCase) !== Boolean(leaf.ignoreUriCase)) return true;
  if (root.port && leaf.port && root.port !== leaf.port) return true;
  if (root.sourceNamespace && leaf.sourceNamespace !== root.sourceNamespace) return true;
  for (const [key, value] of Object.entries(leaf.sourceLabels ?? {}))
    if (root.sourceLabels?.[key] !== undefined && root.sourceLabels[key] !== value) return true;
  const rootGateways = root.gateways ?? [];
  const leafGateways = leaf.gateways ?? [];
  if (rootGateways.length > 0 && leafGateways.length > 0)
    if (leafGateways.length > rootGateways.length || leafGateways.some((g) => !rootGateways.includes(g))) return true;
  return false;
}

const joinedName = (root: string | undefined, leaf: string | undefined) => (leaf ? (root ? `${root}-${leaf}` : leaf) : root);

function mergeMatch(root: HttpMatchRequest, leaf: HttpMatchRequest): HttpMatchRequest {
  const map = <T>(a: Record<string, T> | undefined, b: Record<string, T> | undefined) => (a || b ? { ...a, ...b } : undefined);
  const out: HttpMatchRequest = {
    ...leaf,
    name: joinedName(root.name, leaf.name),
    uri: leaf.uri ?? root.uri,
    scheme: leaf.scheme ?? root.scheme,
    method: leaf.method ?? root.method,
    authority: leaf.authority ?? root.authority,
    headers: map(root.headers, leaf.headers),
    withoutHeaders: map(root.withoutHeaders, leaf.withoutHeaders),
    queryParams: map(root.queryParams, leaf.queryParams),
    port: leaf.port || root.port,
    sourceLabels: map(root.sourceLabels, leaf.sourceLabels),
    sourceNamespace: leaf.sourceNamespace || root.sourceNamespace,
    gateways: leaf.gateways?.length ? leaf.gateways : root.gateways,
  };
  for (const k of Object.keys(out) as (keyof HttpMatchRequest)[]) if (out[k] === undefined) delete out[k];
  return out;
}

/** Each delegate match merged with every root match it narrows; undefined when one narrows none. */
function mergeMatches(root: HttpMatchRequest[], leaf: HttpMatchRequest[]): HttpMatchRequest[] | undefined {
  if (root.length === 0) return leaf;
  if (leaf.length === 0) return root;
  const out: HttpMatchRequest[] = [];
  for (const sub of leaf) {
    const merged = root.filter((r) => !matchConflict(r, sub)).map((r) => mergeMatch(r, sub));
    if (merged.length === 0) return undefined;
    out.push(...merged);
  }
  return out;
}

/** A delegate's rule under a root rule: the root's settings where the delegate has none. */
function mergeRule(root: HttpRoute, leaf: HttpRoute): HttpRoute | undefined {
  const match = mergeMatches(root.match ?? [], leaf.match ?? []);
  if (!match) return undefined;
  const inherited = [
    "rewrite",
    "directResponse",
    "timeout",
    "retries",
    "fault",
    "mirror",
    "mirrorPercent",
    "mirrorPercentage",
    "corsPolicy",
    "mirrors",
    "headers",
  ] as const;
  const out: HttpRoute = { ...leaf, match, name: joinedName(root.name, leaf.name) };
  for (const field of inherited)
    if (out[field] === undefined && root[field] !== undefined) Object.assign(out, { [field]: root[field] });
  if (out.match?.length === 0) delete out.match;
  if (out.name === undefined) delete out.name;
  return out;
}

export interface DelegationProblem {
  root: VirtualService;
  message: string;
}

/**
 * The VirtualServices with hosts, each root's delegating rules replaced by its delegates' rules
 * (upstream's mergeVirtualServicesIfNeeded); delegates left out. `problems` says which
 * delegations went nowhere and why.
 */
export function mergeDelegates(
  all: VirtualService[],
  domainSuffix: string,
): { virtualServices: VirtualService[]; problems: DelegationProblem[] } {
  const delegates = new Map<string, VirtualService>();
  for (const vs of all)
    if ((vs.spec?.hosts ?? []).length === 0) delegates.set(`${vs.metadata?.namespace}/${vs.metadata?.name}`, vs);
  const problems: DelegationProblem[] = [];
  const virtualServices: VirtualService[] = [];
  for (const vs of all) {
    if ((vs.spec?.hosts ?? []).length === 0) continue;
    const rules = vs.spec?.http ?? [];
    if (!rules.some((r) => r.delegate)) {
      virtualServices.push(vs);
      continue;
    }
    const rootNamespace = vs.metadata?.namespace ?? "default";
    const merged: HttpRoute[] = [];
    for (const rule of rules) {
      if (!rule.delegate) {
        merged.push(rule);
        continue;
      }
      const namespace = rule.delegate.namespace || rootNamespace;
      const name = `${namespace}/${rule.delegate.name ?? ""}`;
      const delegate = delegates.get(name);
      if (!delegate) {
        problems.push({ root: vs, message: `delegate VirtualService ${name} not found` });
        continue;
      }
      if (!exportedTo(delegate, rootNamespace)) {
        problems.push({ root: vs, message: `delegate VirtualService ${name} is not exported to ${rootNamespace}` });
        continue;
      }
      const { delegate: _, ...root } = rule;
      for (const leaf of delegate.spec?.http ?? []) {
        const out = mergeRule(root, withResolvedHosts(leaf, namespace, domainSuffix));
        if (out) merged.push(out);
        else
          problems.push({
            root: vs,
            message: `a rule of delegate ${name} (${leaf.name ?? "unnamed"}) matches outside its root rule's match and is left out`,
          });
      }
    }
    virtualServices.push({ ...vs, spec: { ...vs.spec, http: merged } });
  }
  return { virtualServices, problems };
}

// ---- Lookup by host --------------------------------------------------------------------------

interface HostIndex {
  exact: Map<string, VirtualService>;
  /** Wildcard hosts (`*.example.com`, `*`), the first VirtualService for each, longest first. */
  wildcard: [string, VirtualService][];
}

const merged = new WeakMap<PushContext, ReturnType<typeof mergeDelegates>>();
const indexes = new WeakMap<PushContext, Map<string, HostIndex>>();

/** The push's VirtualServices with delegates merged (once per push). */
export function mergedVirtualServices(push: PushContext): ReturnType<typeof mergeDelegates> {
  let result = merged.get(push);
  if (!result) {
    result = mergeDelegates(push.virtualServices ?? [], push.registry.domainSuffix);
    merged.set(push, result);
  }
  return result;
}

const visibleByNamespace = new WeakMap<PushContext, Map<string, VirtualService[]>>();

/** The mesh VirtualServices proxies in `namespace` see, in upstream's order (once per push and namespace). */
export function visibleVirtualServices(push: PushContext, namespace: string): VirtualService[] {
  let byNamespace = visibleByNamespace.get(push);
  if (!byNamespace) {
    byNamespace = new Map();
    visibleByNamespace.set(push, byNamespace);
  }
  let visible = byNamespace.get(namespace);
  if (!visible) {
    visible = mergedVirtualServices(push)
      .virtualServices.filter((vs) => forMesh(vs) && exportedTo(vs, namespace))
      .sort((a, b) => rank(a, namespace) - rank(b, namespace) || oldestFirst(a, b));
    byNamespace.set(namespace, visible);
  }
  return visible;
}

/**
 * The VirtualServices bound to Gateway `gateway` (`<namespace>/<name>`) that a gateway in
 * `namespace` sees, in upstream's order (VirtualServicesForGateway): private to its namespace,
 * exported to it by name, then public; oldest first in each.
 */
export function gatewayVirtualServices(push: PushContext, namespace: string, gateway: string): VirtualService[] {
  return mergedVirtualServices(push)
    .virtualServices.filter(
      (vs) =>
        exportedTo(vs, namespace) &&
        (vs.spec?.gateways ?? []).some((g) => resolveGatewayName(g, vs.metadata?.namespace ?? "default") === gateway),
    )
    .sort((a, b) => gatewayRank(a, namespace) - gatewayRank(b, namespace) || oldestFirst(a, b));
}

/** rank(), and among public ones the Gateway API's routes of the gateway's own namespace first ("consumer override"). */
function gatewayRank(vs: VirtualService, namespace: string): number {
  const r = rank(vs, namespace);
  if (r < 2) return r;
  return usesGatewaySemantics(vs) && vs.metadata?.namespace === namespace ? 2 : 3;
}

function hostIndex(push: PushContext, namespace: string): HostIndex {
  let byNamespace = indexes.get(push);
  if (!byNamespace) {
    byNamespace = new Map();
    indexes.set(push, byNamespace);
  }
  const cached = byNamespace.get(namespace);
  if (cached) return cached;
  const visible = visibleVirtualServices(push, namespace);
  const index: HostIndex = { exact: new Map(), wildcard: [] };
  const wildcard = new Map<string, VirtualService>();
  for (const vs of visible)
    for (const host of vs.spec?.hosts ?? []) {
      const fqdn = resolveHost(host, vs.metadata?.namespace ?? "default", push.registry.domainSuffix);
      const into = fqdn.startsWith("*") ? wildcard : index.exact;
      if (!into.has(fqdn)) into.set(fqdn, vs);
    }
  index.wildcard = [...wildcard].sort(([a], [b]) => b.length - a.length);
  byNamespace.set(namespace, index);
  return index;
}

/** The mesh VirtualService that routes `hostname` for proxies in `namespace`, if any. */
export function virtualServiceFor(push: PushContext, hostname: string, namespace: string): VirtualService | undefined {
  const index = hostIndex(push, namespace);
  const exact = index.exact.get(hostname);
  if (exact) return exact;
  for (const [host, vs] of index.wildcard) if (host === "*" || hostname.endsWith(host.slice(1))) return vs;
  return undefined;
}

/**
 * Hosts a VirtualService names that another one, ahead of it for every namespace that sees
 * both, routes instead (upstream keeps the first and counts the rest in
 * pilot_vservice_dup_domain): `<namespace>/<name>` of the loser → host → the winner.
 */
export function shadowedHosts(push: PushContext): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  const winners = new Map<string, string>();
  // Public VirtualServices, as a namespace with none of its own sees them.
  const publicOnes = mergedVirtualServices(push)
    .virtualServices.filter((vs) => forMesh(vs) && (vs.spec?.exportTo ?? []).every((e) => e === "*"))
    .sort(oldestFirst);
  for (const vs of publicOnes) {
    const id = `${vs.metadata?.namespace}/${vs.metadata?.name}`;
    for (const host of vs.spec?.hosts ?? []) {
      const fqdn = resolveHost(host, vs.metadata?.namespace ?? "default", push.registry.domainSuffix);
      const winner = winners.get(fqdn);
      if (!winner) winners.set(fqdn, id);
      else if (winner !== id) {
        const lost = out.get(id) ?? new Map<string, string>();
        lost.set(fqdn, winner);
        out.set(id, lost);
      }
    }
  }
  return out;
}
