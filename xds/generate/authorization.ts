// AuthorizationPolicy → Envoy RBAC filters on a sidecar's inbound side, as upstream's
// pilot/pkg/security/authz builds them. The policies that apply to a workload are the root
// namespace's and its own namespace's whose selector matches its labels (or that have none).
// They become, in upstream's order, one RBAC filter per action: AUDIT (Envoy's LOG), DENY,
// then ALLOW, on every inbound HTTP connection manager (envoy.filters.http.rbac) and TCP chain
// (envoy.filters.network.rbac, stat prefix "tcp."). So a request is denied if a DENY rule
// matches it, or if ALLOW policies exist and none matches: an ALLOW policy with no rules allows
// nothing; a DENY policy with no rules denies nothing.
//
// A rule is a set of alternatives (each `from` is OR-ed, each `to` is OR-ed, `when` conditions
// AND-ed onto both), translated attribute by attribute; a value that cannot be translated
// (a bad CIDR, an HTTP-only attribute on a TCP chain) drops the whole rule from an ALLOW
// filter (fail closed: less is allowed) and only that value from a DENY one (more is denied).
// Rules are named `ns[<namespace>]-policy[<name>]-rule[<index>]`.
//
// Policies annotated istio.io/dry-run: "true" become shadow rules (counted, not enforced).
//
// CUSTOM policies go first: their rules as shadow rules enabling the provider's ext_authz filter
// (ext-authz.ts); a provider that cannot be used makes them a DENY (fail closed).
//
// Policies with targetRefs apply to the Gateway API gateways they name (context.ts), not to sidecars.
import type { Filter } from "../envoy/third_party/envoy/config/listener/v3/listener_components.ts";
import {
  type Permission,
  type Policy,
  type Principal,
  type RBAC,
  RBAC_Action,
} from "../envoy/third_party/envoy/config/rbac/v3/rbac.ts";
import type { HeaderMatcher } from "../envoy/third_party/envoy/config/route/v3/route_components.ts";
import { ExtAuthz as HttpExtAuthz } from "../envoy/third_party/envoy/extensions/filters/http/ext_authz/v3/ext_authz.ts";
import { RBAC as HttpRBAC } from "../envoy/third_party/envoy/extensions/filters/http/rbac/v3/rbac.ts";
import { ExtAuthz as NetworkExtAuthz } from "../envoy/third_party/envoy/extensions/filters/network/ext_authz/v3/ext_authz.ts";
import type { HttpFilter } from "../envoy/third_party/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.ts";
import { RBAC as NetworkRBAC } from "../envoy/third_party/envoy/extensions/filters/network/rbac/v3/rbac.ts";
import { UriTemplateMatchConfig } from "../envoy/third_party/envoy/extensions/path/match/uri_template/v3/uri_template_match.ts";
import type { MetadataMatcher } from "../envoy/third_party/envoy/type/matcher/v3/metadata.ts";
import type { StringMatcher } from "../envoy/third_party/envoy/type/matcher/v3/string.ts";
import type { ValueMatcher } from "../envoy/third_party/envoy/type/matcher/v3/value.ts";
import { pack } from "../envoy/types.ts";
import type { MeshProxy } from "../proxy.ts";
import { oldestFirst, type PolicyTargetRef, type PushContext, policyAppliesTo } from "./context.ts";
import { EXT_AUTHZ_SHADOW_PREFIX, extAuthzFor } from "./ext-authz.ts";

export interface AuthorizationPolicy {
  metadata?: { name?: string; namespace?: string; creationTimestamp?: string; annotations?: Record<string, string> };
  spec?: {
    selector?: { matchLabels?: Record<string, string> };
    targetRef?: PolicyTargetRef;
    targetRefs?: PolicyTargetRef[];
    action?: string;
    provider?: { name?: string };
    rules?: (AuthorizationRule | null)[];
  };
}

interface Source {
  principals?: string[];
  notPrincipals?: string[];
  requestPrincipals?: string[];
  notRequestPrincipals?: string[];
  namespaces?: string[];
  notNamespaces?: string[];
  serviceAccounts?: string[];
  notServiceAccounts?: string[];
  ipBlocks?: string[];
  notIpBlocks?: string[];
  remoteIpBlocks?: string[];
  notRemoteIpBlocks?: string[];
}

interface Operation {
  hosts?: string[];
  notHosts?: string[];
  ports?: string[];
  notPorts?: string[];
  methods?: string[];
  notMethods?: string[];
  paths?: string[];
  notPaths?: string[];
}

export interface AuthorizationRule {
  from?: { source?: Source }[];
  to?: { operation?: Operation }[];
  when?: { key?: string; values?: string[]; notValues?: string[] }[];
}

class Untranslatable extends Error {}

// ---- Envoy matchers (upstream's authz/matcher) ----

const exact = (value: string, ignoreCase = false): StringMatcher => ({ exact: value, ...(ignoreCase ? { ignoreCase } : {}) });
const prefix = (value: string, ignoreCase = false): StringMatcher => ({ prefix: value, ...(ignoreCase ? { ignoreCase } : {}) });
const suffix = (value: string, ignoreCase = false): StringMatcher => ({ suffix: value, ...(ignoreCase ? { ignoreCase } : {}) });
const regex = (value: string): StringMatcher => ({ safeRegex: { regex: value } });

/** `*` anything, `*x` a suffix, `x*` a prefix, else exact; `withPrefix` goes before the value. */
function stringMatcher(value: string, withPrefix = ""): StringMatcher {
  if (value === "*") return regex(".+");
  if (value.startsWith("*")) return withPrefix ? regex(`${withPrefix}.*${value.slice(1)}`) : suffix(value.slice(1));
  if (value.endsWith("*")) return prefix(withPrefix + value.slice(0, -1));
  return exact(withPrefix + value);
}

function headerMatcher(name: string, value: string, ignoreCase = false): HeaderMatcher {
  if (value === "*") return { name, presentMatch: true };
  if (value.startsWith("*")) return { name, stringMatch: suffix(value.slice(1), ignoreCase) };
  if (value.endsWith("*")) return { name, stringMatch: prefix(value.slice(0, -1), ignoreCase) };
  return { name, stringMatch: exact(value, ignoreCase) };
}

const orValues = (values: string[]): ValueMatcher => {
  const matchers = values.map((v) => ({ stringMatch: stringMatcher(v) }));
  return matchers.length === 1 ? (matchers[0] as ValueMatcher) : { orMatch: { valueMatchers: matchers } };
};

const JWT_FILTER = "envoy.filters.http.jwt_authn";
const JWT_PAYLOAD = "payload";

function jwtClaim(claim: string, matcher: StringMatcher): MetadataMatcher {
  return { filter: JWT_FILTER, path: [{ key: JWT_PAYLOAD }, { key: claim }], value: { stringMatch: matcher } };
}

/** A claim that may be a list or a single value (upstream's extended JWT matcher). */
function jwtClaims(claims: string[], value: ValueMatcher): MetadataMatcher {
  return {
    filter: JWT_FILTER,
    path: [JWT_PAYLOAD, ...claims].map((key) => ({ key })),
    value: { orMatch: { valueMatchers: [{ listMatch: { oneOf: value } }, value] } },
  };
}

/** An address or CIDR as Envoy's CidrRange (upstream's AddrStrToCidrRange). */
function cidrRange(value: string): { addressPrefix: string; prefixLen: number } {
  const [address = "", bits] = value.split("/");
  const v4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/.test(address);
  const v6 = !v4 && address.includes(":") && /^[0-9a-fA-F:.]+$/.test(address);
  if (!v4 && !v6) throw new Untranslatable(`invalid IP address ${JSON.stringify(value)}`);
  const max = v4 ? 32 : 128;
  if (bits === undefined) return { addressPrefix: address, prefixLen: max };
  const length = Number(bits);
  if (!/^\d+$/.test(bits) || length > max) throw new Untranslatable(`invalid CIDR ${JSON.stringify(value)}`);
  return { addressPrefix: address, prefixLen: length };
}

function port(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) throw new Untranslatable(`invalid port ${value}`);
  return n;
}

const bracketed = (key: string, attribute: string): string => {
  const rest = key.slice(attribute.length);
  if (!rest.startsWith("[") || !rest.endsWith("]")) throw new Untranslatable(`expecting format [<NAME>], but found ${rest}`);
  return rest.slice(1, -1);
};

/** `[a][b]` → ["a", "b"] (a claim path). */
function nestedBracketed(key: string, attribute: string): string[] {
  const rest = key.slice(attribute.length);
  const parts = [...rest.matchAll(/\[([^[\]]+)\]/g)].map((m) => m[1] ?? "");
  if (parts.length === 0 || parts.map((p) => `[${p}]`).join("") !== rest)
    throw new Untranslatable(`expecting format [<NAME>] or [<NAME>][<NAME>], but found ${rest}`);
  return parts;
}

const regexQuote = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

// ---- Attributes: each value of one key → a permission or a principal ----

type Kind = "permission" | "principal";

interface Attribute {
  kind: Kind;
  httpOnly?: boolean;
  /** One matcher per value, OR-ed (or all values at once, for the extended ones). */
  each?: (value: string, key: string) => Permission | Principal;
  all?: (values: string[], key: string) => Permission | Principal | undefined;
}

const authenticated = (name: StringMatcher): Principal => ({ authenticated: { principalName: name } });

function requestPrincipals(values: string[]): Principal | undefined {
  const any = regex(".+");
  const or = values.map((value): Principal => {
    const slash = value.lastIndexOf("/");
    const found = slash >= 0;
    const [iss, sub] = found ? [value.slice(0, slash), value.slice(slash + 1)] : [value, ""];
    let matchIss: StringMatcher;
    let matchSub: StringMatcher;
    if (value === "*") [matchIss, matchSub] = [any, any];
    else if (value.startsWith("*")) {
      if (found) [matchIss, matchSub] = [iss === "*" ? any : suffix(iss.slice(1)), exact(sub)];
      else [matchIss, matchSub] = [any, suffix(value.slice(1))];
    } else if (value.endsWith("*")) {
      if (found) [matchIss, matchSub] = [exact(iss), sub === "*" ? any : prefix(sub.slice(0, -1))];
      else [matchIss, matchSub] = [prefix(value.slice(0, -1)), any];
    } else [matchIss, matchSub] = [exact(iss), exact(sub)];
    return { andIds: { ids: [{ metadata: jwtClaim("iss", matchIss) }, { metadata: jwtClaim("sub", matchSub) }] } };
  });
  if (or.length === 0) return undefined;
  return or.length === 1 ? or[0] : { orIds: { ids: or } };
}

const ATTRIBUTES: Record<string, Attribute> = {
  "destination.ip": { kind: "permission", each: (v) => ({ destinationIp: cidrRange(v) }) },
  "destination.port": { kind: "permission", each: (v) => ({ destinationPort: port(v) }) },
  "connection.sni": { kind: "permission", each: (v) => ({ requestedServerName: stringMatcher(v) }) },
  "source.ip": { kind: "principal", each: (v) => ({ directRemoteIp: cidrRange(v) }) },
  "remote.ip": { kind: "principal", each: (v) => ({ remoteIp: cidrRange(v) }) },
  "source.namespace": {
    kind: "principal",
    each: (v) => authenticated(regex(`.*/ns/${v.replaceAll("*", ".*")}/.*`)),
  },
  "source.principal": { kind: "principal", each: (v) => authenticated(stringMatcher(v, "spiffe://")) },
  "request.auth.principal": { kind: "principal", httpOnly: true, all: (values) => requestPrincipals(values) },
  "request.auth.audiences": {
    kind: "principal",
    httpOnly: true,
    all: (values) => ({ metadata: jwtClaims(["aud"], orValues(values)) }),
  },
  "request.auth.presenter": {
    kind: "principal",
    httpOnly: true,
    all: (values) => ({ metadata: jwtClaims(["azp"], orValues(values)) }),
  },
  "request.headers": {
    kind: "principal",
    httpOnly: true,
    each: (v, key) => ({ header: headerMatcher(bracketed(key, "request.headers"), v) }),
  },
  "request.auth.claims": {
    kind: "principal",
    httpOnly: true,
    all: (values, key) => ({ metadata: jwtClaims(nestedBracketed(key, "request.auth.claims"), orValues(values)) }),
  },
  // The operation's fields.
  ":authority": { kind: "permission", httpOnly: true, each: (v) => ({ header: headerMatcher(":authority", v, true) }) },
  ":method": { kind: "permission", httpOnly: true, each: (v) => ({ header: headerMatcher(":method", v) }) },
  "path-matcher": {
    kind: "permission",
    httpOnly: true,
    each: (v) =>
      // `{*}` one segment, `{**}` any number: Envoy's URI template matcher (`*`, `**`).
      v.includes("{*}") || v.includes("{**}")
        ? {
            uriTemplate: {
              name: "uri-template",
              typedConfig: pack(UriTemplateMatchConfig, {
                pathTemplate: v.replaceAll("{**}", "**").replaceAll("{*}", "*"),
              }),
            },
          }
        : { urlPath: { path: stringMatcher(v) } },
  },
};

/** The attribute a `when` key names (headers and claims carry a name in brackets). */
function attributeOf(key: string): string {
  if (key.startsWith("request.headers")) return "request.headers";
  if (key.startsWith("request.auth.claims")) return "request.auth.claims";
  return key;
}

interface Condition {
  key: string;
  attribute: string;
  values: string[];
  notValues: string[];
}

/**
 * One rule's alternatives: principals (one per `from`, else one) and permissions (one per
 * `to`, else one), each a list of conditions AND-ed. Upstream's authz model.New.
 */
function ruleModel(rule: AuthorizationRule): { principals: Condition[][]; permissions: Condition[][] } {
  const basePermission: Condition[] = [];
  const basePrincipal: Condition[] = [];
  const condition = (key: string, attribute: string, values?: string[], notValues?: string[]): Condition | undefined =>
    (values?.length ?? 0) + (notValues?.length ?? 0) > 0
      ? { key, attribute, values: values ?? [], notValues: notValues ?? [] }
      : undefined;
  for (const when of rule.when ?? []) {
    const key = when.key ?? "";
    const attribute = attributeOf(key);
    if (key === "source.serviceAccount") {
      const c = condition(key, key, when.values, when.notValues);
      if (c) basePrincipal.push(c);
      continue;
    }
    const known = ATTRIBUTES[attribute];
    if (!known || attribute === ":authority" || attribute === ":method" || attribute === "path-matcher")
      throw new Untranslatable(`unknown attribute ${key}`);
    const c = condition(key, attribute, when.values, when.notValues);
    if (c) (known.kind === "permission" ? basePermission : basePrincipal).push(c);
  }
  const principals: Condition[][] = [];
  for (const from of rule.from ?? []) {
    const s = from.source ?? {};
    const front = [
      condition("source.principal", "source.principal", s.principals, s.notPrincipals),
      condition("request.auth.principal", "request.auth.principal", s.requestPrincipals, s.notRequestPrincipals),
      condition("source.serviceAccount", "source.serviceAccount", s.serviceAccounts, s.notServiceAccounts),
      condition("source.namespace", "source.namespace", s.namespaces, s.notNamespaces),
      condition("remote.ip", "remote.ip", s.remoteIpBlocks, s.notRemoteIpBlocks),
      condition("source.ip", "source.ip", s.ipBlocks, s.notIpBlocks),
    ].filter((c): c is Condition => c !== undefined);
    principals.push([...front, ...basePrincipal]);
  }
  if ((rule.from ?? []).length === 0) principals.push(basePrincipal);
  const permissions: Condition[][] = [];
  for (const to of rule.to ?? []) {
    const o = to.operation ?? {};
    const front = [
      condition(":authority", ":authority", o.hosts, o.notHosts),
      condition(":method", ":method", o.methods, o.notMethods),
      condition("path-matcher", "path-matcher", o.paths, o.notPaths),
      condition("destination.port", "destination.port", o.ports, o.notPorts),
    ].filter((c): c is Condition => c !== undefined);
    permissions.push([...front, ...basePermission]);
  }
  if ((rule.to ?? []).length === 0) permissions.push(basePermission);
  return { principals, permissions };
}

/** One condition as matchers: its values OR-ed, and NOT of its notValues OR-ed. */
function translate<T extends Permission | Principal>(
  c: Condition,
  kind: Kind,
  forTcp: boolean,
  strict: boolean,
  policyNamespace: string,
): T[] {
  const attribute: Attribute | undefined =
    c.attribute === "source.serviceAccount"
      ? {
          kind: "principal",
          each: (v) => {
            const [ns, sa] = v.includes("/") ? [v.slice(0, v.indexOf("/")), v.slice(v.indexOf("/") + 1)] : [policyNamespace, v];
            return authenticated(regex(`spiffe://.+/ns/${regexQuote(ns)}/(.+/|)sa/${regexQuote(sa)}(/.+)?`));
          },
        }
      : ATTRIBUTES[c.attribute];
  if (!attribute || attribute.kind !== kind) throw new Untranslatable(`${c.key} is not a ${kind}`);
  // An error drops the rule for ALLOW (strict), only the value otherwise (upstream's checkError).
  const attempt = <R>(f: () => R): R | undefined => {
    try {
      if (forTcp && attribute.httpOnly) throw new Untranslatable(`"${c.key}" is HTTP only`);
      return f();
    } catch (err) {
      if (strict || !(err instanceof Untranslatable)) throw err;
      return undefined;
    }
  };
  const or = (items: T[]): T =>
    (kind === "permission" ? { orRules: { rules: items } } : { orIds: { ids: items } }) as unknown as T;
  const not = (item: T): T => (kind === "permission" ? { notRule: item } : { notId: item }) as unknown as T;
  const out: T[] = [];
  for (const [values, negate] of [
    [c.values, false],
    [c.notValues, true],
  ] as const) {
    if (values.length === 0) continue;
    if (attribute.all) {
      const m = attempt(() => attribute.all?.(values, c.key)) as T | undefined;
      if (m) out.push(negate ? not(m) : m);
      continue;
    }
    const items = values.flatMap((v) => {
      const m = attempt(() => attribute.each?.(v, c.key)) as T | undefined;
      return m ? [m] : [];
    });
    if (items.length > 0) out.push(negate ? not(or(items)) : or(items));
  }
  return out;
}

function generate(rule: AuthorizationRule, policyNamespace: string, forTcp: boolean, action: RBAC_Action): Policy {
  const strict = action === RBAC_Action.ALLOW;
  const model = ruleModel(rule);
  const permissions = model.permissions.map((conditions): Permission => {
    const and = conditions.flatMap((c) => translate<Permission>(c, "permission", forTcp, strict, policyNamespace));
    return { andRules: { rules: and.length > 0 ? and : [{ any: true }] } };
  });
  const principals = model.principals.map((conditions): Principal => {
    const and = conditions.flatMap((c) => translate<Principal>(c, "principal", forTcp, strict, policyNamespace));
    return { andIds: { ids: and.length > 0 ? and : [{ any: true }] } };
  });
  return { permissions, principals };
}

/** A policy that matches nothing (an ALLOW or DENY policy without rules). */
const MATCH_NEVER: Policy = {
  permissions: [{ notRule: { any: true } }],
  principals: [{ notId: { any: true } }],
};

const policyName = (namespace: string, name: string, index: number, custom = false) =>
  `${custom ? "istio-ext-authz-" : ""}ns[${namespace}]-policy[${name}]-rule[${index}]`;

const isDryRun = (policy: AuthorizationPolicy) => policy.metadata?.annotations?.["istio.io/dry-run"] === "true";

/**
 * The policies of one action as RBAC rules: enforced ones, and dry-run ones (annotated
 * `istio.io/dry-run: "true"`) as shadow rules Envoy only counts. Rules left out are in `problems`.
 */
function rbacConfig(
  policies: AuthorizationPolicy[],
  action: RBAC_Action,
  forTcp: boolean,
  problems: string[],
  custom = false,
): { rules?: RBAC; shadowRules?: RBAC } | undefined {
  if (policies.length === 0) return undefined;
  const enforced: Required<Pick<RBAC, "action" | "policies">> = { action, policies: {} };
  const shadow: Required<Pick<RBAC, "action" | "policies">> = { action, policies: {} };
  for (const policy of policies) {
    const target = isDryRun(policy) ? shadow : enforced;
    const namespace = policy.metadata?.namespace ?? "";
    const name = policy.metadata?.name ?? "";
    const rules = policy.spec?.rules ?? [];
    rules.forEach((rule, i) => {
      const id = policyName(namespace, name, i, custom);
      if (!rule) {
        problems.push(`skipped nil rule ${id}`);
        return;
      }
      try {
        target.policies[id] = generate(rule, namespace, forTcp, action);
      } catch (err) {
        if (!(err instanceof Untranslatable)) throw err;
        // On a TCP chain an HTTP-only rule is simply not for it; elsewhere it is an error.
        if (!forTcp) problems.push(`skipped invalid rule ${id}: ${err.message}`);
      }
    });
    if (rules.length === 0) target.policies[policyName(namespace, name, 0, custom)] = MATCH_NEVER;
  }
  const hasEnforced = policies.some((p) => !isDryRun(p));
  const hasShadow = policies.some(isDryRun);
  return { ...(hasEnforced ? { rules: enforced } : {}), ...(hasShadow ? { shadowRules: shadow } : {}) };
}

/** Upstream names shadow-rule stats by their action (ALLOW when there are none). */
const shadowPrefix = (config: { shadowRules?: RBAC }) =>
  config.shadowRules?.action === RBAC_Action.DENY
    ? "istio_dry_run_deny_"
    : config.shadowRules?.action === RBAC_Action.LOG
      ? ""
      : "istio_dry_run_allow_";

const actionOf = (policy: AuthorizationPolicy) => policy.spec?.action ?? "ALLOW";

const ACTIONS: Record<string, RBAC_Action> = { ALLOW: RBAC_Action.ALLOW, DENY: RBAC_Action.DENY, AUDIT: RBAC_Action.LOG };

/** The rules of one policy that proxies cannot be given, and why (whoever it applies to). */
export function policyProblems(push: PushContext, policy: AuthorizationPolicy): string[] {
  const problems: string[] = [];
  const action = actionOf(policy);
  rbacConfig([policy], ACTIONS[action] ?? RBAC_Action.DENY, false, problems, action === "CUSTOM");
  if (action === "CUSTOM") {
    const provider = extAuthzFor(push, [policy.spec?.provider?.name ?? ""]);
    if (typeof provider === "string") problems.push(`${BAD_CUSTOM}: ${provider}`);
  }
  return problems;
}

const BAD_CUSTOM = "failed to process CUSTOM action, will generate deny configs for the specified rules";

/** A CUSTOM policy's rules, when its provider cannot be used: DENY what they match (fail closed). */
function badCustomDeny(config: { rules?: RBAC; shadowRules?: RBAC }): RBAC {
  const policies = { ...config.rules?.policies, ...config.shadowRules?.policies };
  return {
    action: RBAC_Action.DENY,
    policies: Object.fromEntries(Object.entries(policies).map(([k, v]) => [`${k}-deny-due-to-bad-CUSTOM-action`, v])),
  };
}

/** The policies that apply to a proxy's workload, oldest first: the root namespace's, then its own namespace's. */
export function policiesFor(push: PushContext, proxy: MeshProxy): AuthorizationPolicy[] {
  return (push.authorizationPolicies ?? []).filter((p) => policyAppliesTo(push, proxy, p)).sort(oldestFirst);
}

export interface AuthorizationFilters {
  /** CUSTOM's filters (before authentication, as upstream orders them), then the others'. */
  customHttp: HttpFilter[];
  http: HttpFilter[];
  tcp: Filter[];
  /** Rules left out, with why (upstream logs these). */
  problems: string[];
}

const cache = new WeakMap<PushContext, Map<string, AuthorizationFilters>>();

/** The inbound RBAC filters for a proxy: CUSTOM first, then AUDIT, DENY, ALLOW (upstream's order). */
export function authorizationFilters(push: PushContext, proxy: MeshProxy): AuthorizationFilters {
  const policies = policiesFor(push, proxy);
  if (policies.length === 0) return { customHttp: [], http: [], tcp: [], problems: [] };
  const key = policies.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`).join(",");
  let byKey = cache.get(push);
  if (!byKey) {
    byKey = new Map();
    cache.set(push, byKey);
  }
  const cached = byKey.get(key);
  if (cached) return cached;
  const problems: string[] = [];
  const of = (action: string) => policies.filter((p) => actionOf(p) === action);
  const customHttp: HttpFilter[] = [];
  const http: HttpFilter[] = [];
  const tcp: Filter[] = [];
  const httpRbac = (config: HttpRBAC): HttpFilter => ({ name: "envoy.filters.http.rbac", typedConfig: pack(HttpRBAC, config) });
  const tcpRbac = (config: NetworkRBAC): Filter => ({
    name: "envoy.filters.network.rbac",
    typedConfig: pack(NetworkRBAC, { ...config, statPrefix: "tcp." }),
  });
  // CUSTOM: rules evaluated as shadow rules, the one that matched enabling the provider's
  // ext_authz filter; if the provider cannot be used, a DENY of the rules.
  const custom = of("CUSTOM");
  const customForHttp = rbacConfig(custom, RBAC_Action.DENY, false, problems, true);
  const customForTcp = rbacConfig(custom, RBAC_Action.DENY, true, [], true);
  if (customForHttp && customForTcp) {
    const provider = extAuthzFor(
      push,
      custom.map((p) => p.spec?.provider?.name ?? ""),
    );
    if (typeof provider === "string") {
      problems.push(`${BAD_CUSTOM}: ${provider}`);
      customHttp.push(httpRbac({ rules: badCustomDeny(customForHttp) }));
      tcp.push(tcpRbac({ rules: badCustomDeny(customForTcp) }));
    } else {
      customHttp.push(httpRbac({ shadowRules: customForHttp.rules, shadowRulesStatPrefix: EXT_AUTHZ_SHADOW_PREFIX }), {
        name: "envoy.filters.http.ext_authz",
        typedConfig: pack(HttpExtAuthz, provider.http),
      });
      if (provider.tcp)
        tcp.push(tcpRbac({ shadowRules: customForTcp.rules, shadowRulesStatPrefix: EXT_AUTHZ_SHADOW_PREFIX }), {
          name: "envoy.filters.network.ext_authz",
          typedConfig: pack(NetworkExtAuthz, provider.tcp),
        });
    }
  }
  const groups: [AuthorizationPolicy[], RBAC_Action][] = [
    [of("AUDIT"), RBAC_Action.LOG],
    [of("DENY"), RBAC_Action.DENY],
    [of("ALLOW"), RBAC_Action.ALLOW],
  ];
  for (const [group, action] of groups) {
    const forHttp = rbacConfig(group, action, false, problems);
    if (forHttp) http.push(httpRbac({ ...forHttp, shadowRulesStatPrefix: shadowPrefix(forHttp) }));
    const forTcp = rbacConfig(group, action, true, []);
    if (forTcp) tcp.push(tcpRbac({ ...forTcp, shadowRulesStatPrefix: shadowPrefix(forTcp) }));
  }
  const built = { customHttp, http, tcp, problems };
  byKey.set(key, built);
  return built;
}
