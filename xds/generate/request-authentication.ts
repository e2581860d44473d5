// RequestAuthentication → Envoy's JWT filter (envoy.filters.http.jwt_authn) on a sidecar's
// inbound HTTP connection managers, before authorization, as upstream's authn policy applier
// builds it. The root namespace's and the workload's namespace's RequestAuthentications whose
// selector matches apply together: every JWT rule (sorted by issuer) is a provider
// `origins-<i>`, and a request must carry, for each, a valid token or none at all. A bad token
// gets 401 from Envoy; no token passes through (an AuthorizationPolicy requiring
// `requestPrincipals` then answers 403). The token's payload goes to the filter's metadata
// (`payload`), where authorization reads `request.auth.*`.
//
// JWKS: a rule's inline `jwks`, or what istiod fetched from its `jwksUri` (push.jwks, filled
// by the server; upstream's default "istiod" fetch mode); until a key set is fetched, or when
// the fetch fails, a public key whose private half nobody has, so no token validates (fail
// closed, as upstream).
import {
  JwtAuthentication,
  type JwtProvider,
  type JwtRequirement,
} from "../envoy/third_party/envoy/extensions/filters/http/jwt_authn/v3/config.ts";
import type { HttpFilter } from "../envoy/third_party/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.ts";
import { pack } from "../envoy/types.ts";
import type { MeshProxy } from "../proxy.ts";
import { type PolicyTargetRef, type PushContext, policyAppliesTo } from "./context.ts";

export interface JwtRule {
  issuer?: string;
  audiences?: string[];
  jwksUri?: string;
  jwks?: string;
  fromHeaders?: { name?: string; prefix?: string }[];
  fromParams?: string[];
  fromCookies?: string[];
  outputPayloadToHeader?: string;
  forwardOriginalToken?: boolean;
  outputClaimToHeaders?: { header?: string; claim?: string }[];
  timeout?: string;
}

export interface RequestAuthentication {
  metadata?: { name?: string; namespace?: string; creationTimestamp?: string };
  spec?: {
    selector?: { matchLabels?: Record<string, string> };
    targetRef?: PolicyTargetRef;
    targetRefs?: PolicyTargetRef[];
    jwtRules?: JwtRule[];
  };
}

/**
 * A JWKS with one RSA public key whose private key was discarded when it was generated (as
 * upstream's PublicOnlyJwks, a key of our own): what a provider gets while its jwksUri is not
 * fetched, so that no token validates.
 */
export const PUBLIC_ONLY_JWKS = `{
  "keys": [
    {
      "e": "AQAB",
      "kid": "rigger-public-only",
      "kty": "RSA",
      "n": "uqWLcE0Je2v0PqVbwCRiALyW0FTcq2Ot72gwOU3IIu6no77BRtFo0tTItONUel7LOwd4fXisa5N93aF6P0eA-0tDUH599fR_wlmIJWuhG-Ht1s7K2hGAB9BwCxDPzePr8_EgE6Vq3ouY0HTsi8vk7gvcXN4LQ70l_H37vIYDdDJBFS-3iCsVMu8yTXI1Z5rbjZ_Rid_cerA2MEm6JV_7rEsTppX99EcqHPvBgX1bLzFK0WiZMPXpCuzSzH7_cAczbHXuTNdL-rK6lE8bWP6cmfzI_ZIUiePxVS44Jg2GNoKz8S9dBLwD-_oTogRNtbvm46LT_gWG-R2ggbC0TQYsEw"
    }
  ]
}`;

/** The RequestAuthentications that apply to a proxy's workload: the root namespace's and its own, by selector. */
export function requestAuthenticationsFor(push: PushContext, proxy: MeshProxy): RequestAuthentication[] {
  return (push.requestAuthentications ?? []).filter((r) => policyAppliesTo(push, proxy, r));
}

function provider(push: PushContext, rule: JwtRule): JwtProvider {
  const jwks = rule.jwks || (rule.jwksUri ? push.jwks?.get(rule.jwksUri) : undefined) || PUBLIC_ONLY_JWKS;
  return {
    issuer: rule.issuer ?? "",
    audiences: rule.audiences ?? [],
    localJwks: { inlineString: jwks },
    forward: rule.forwardOriginalToken ?? false,
    fromHeaders: (rule.fromHeaders ?? []).map((h) => ({ name: h.name ?? "", valuePrefix: h.prefix ?? "" })),
    fromParams: rule.fromParams ?? [],
    fromCookies: rule.fromCookies ?? [],
    forwardPayloadHeader: rule.outputPayloadToHeader ?? "",
    payloadInMetadata: "payload",
    normalizePayloadInMetadata: { spaceDelimitedClaims: ["scope", "permission"] },
    claimToHeaders: (rule.outputClaimToHeaders ?? []).map((c) => ({ headerName: c.header ?? "", claimName: c.claim ?? "" })),
  };
}

/** The inbound JWT filter for a proxy, or none when no RequestAuthentication applies. */
export function jwtFilter(push: PushContext, proxy: MeshProxy): HttpFilter[] {
  const rules = requestAuthenticationsFor(push, proxy)
    .flatMap((r) => r.spec?.jwtRules ?? [])
    // Upstream sorts by issuer, stably.
    .map((rule, i) => ({ rule, i }))
    .sort((a, b) =>
      (a.rule.issuer ?? "") < (b.rule.issuer ?? "") ? -1 : (a.rule.issuer ?? "") > (b.rule.issuer ?? "") ? 1 : a.i - b.i,
    )
    .map(({ rule }) => rule);
  if (rules.length === 0) return [];
  const providers: Record<string, JwtProvider> = {};
  const each: JwtRequirement[] = [];
  const any: JwtRequirement[] = [];
  rules.forEach((rule, i) => {
    const name = `origins-${i}`;
    // A gateway routes on claims (claim-to-header, matches on them): its route is chosen again.
    providers[name] = { ...provider(push, rule), ...(proxy.type === "router" ? { clearRouteCache: true } : {}) };
    // This provider's token is valid, or absent.
    each.push({ requiresAny: { requirements: [{ providerName: name }, { allowMissing: {} }] } });
    any.push({ providerName: name });
  });
  const requires: JwtRequirement =
    each.length === 1
      ? (each[0] as JwtRequirement)
      : { requiresAny: { requirements: [...any, { requiresAll: { requirements: each } }] } };
  return [
    {
      name: "envoy.filters.http.jwt_authn",
      typedConfig: pack(JwtAuthentication, {
        rules: [{ match: { prefix: "/" }, requires }],
        providers,
        bypassCorsPreflight: true,
      }),
    },
  ];
}
