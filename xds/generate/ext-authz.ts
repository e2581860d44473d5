// CUSTOM AuthorizationPolicies: the external authorizer (Envoy's ext_authz filter) named by the
// policy's provider, one of meshConfig.extensionProviders of kind envoyExtAuthzHttp or
// envoyExtAuthzGrpc, as upstream's authz builder (extauthz.go) configures it.
//
// The filter asks the provider's service (the outbound cluster of its host and port) only about
// requests a CUSTOM rule matches: an RBAC filter before it evaluates the rules as shadow rules,
// which record the matching rule's name (prefixed `istio-ext-authz`) in dynamic metadata, and
// the ext_authz filter is enabled by that metadata. An HTTP provider governs HTTP only; a gRPC
// one also TCP (Envoy's network ext_authz filter).
//
// A provider that cannot be used (unknown, several for one workload, a service not in the
// registry, a bad port or statusOnError) makes the caller deny what the rules match instead
// (fail closed), with the reason among the policy's problems.
import type { HeaderValue } from "../envoy/third_party/envoy/config/core/v3/base.ts";
import { ApiVersion } from "../envoy/third_party/envoy/config/core/v3/config_source.ts";
import type { GrpcService } from "../envoy/third_party/envoy/config/core/v3/grpc_service.ts";
import type { ExtAuthz as HttpExtAuthz } from "../envoy/third_party/envoy/extensions/filters/http/ext_authz/v3/ext_authz.ts";
import type { ExtAuthz as TcpExtAuthz } from "../envoy/third_party/envoy/extensions/filters/network/ext_authz/v3/ext_authz.ts";
import type { MetadataMatcher } from "../envoy/third_party/envoy/type/matcher/v3/metadata.ts";
import type { ListStringMatcher, StringMatcher } from "../envoy/third_party/envoy/type/matcher/v3/string.ts";
import { StatusCode } from "../envoy/third_party/envoy/type/v3/http_status.ts";
import { lookupCluster, type PushContext } from "./context.ts";
import { duration } from "./duration.ts";

/** The prefix of CUSTOM rules' names, which enables the ext_authz filter. */
export const EXT_AUTHZ_PREFIX = "istio-ext-authz";
/** The RBAC filter's shadow-rule stat prefix for CUSTOM rules (and its metadata key's). */
export const EXT_AUTHZ_SHADOW_PREFIX = "istio_ext_authz_";

interface BodySettings {
  maxRequestBytes?: number;
  allowPartialMessage?: boolean;
  packAsBytes?: boolean;
}

interface HttpProvider {
  service?: string;
  port?: number;
  timeout?: string;
  pathPrefix?: string;
  failOpen?: boolean;
  statusOnError?: string;
  includeRequestHeadersInCheck?: string[];
  includeHeadersInCheck?: string[];
  includeAdditionalHeadersInCheck?: Record<string, string>;
  includeRequestBodyInCheck?: BodySettings;
  headersToUpstreamOnAllow?: string[];
  headersToDownstreamOnDeny?: string[];
  headersToDownstreamOnAllow?: string[];
}

interface GrpcProvider {
  service?: string;
  port?: number;
  timeout?: string;
  failOpen?: boolean;
  statusOnError?: string;
  includeRequestBodyInCheck?: BodySettings;
}

/** What an ext_authz provider becomes: the HTTP filter, and for gRPC providers the TCP one. */
export interface BuiltExtAuthz {
  http: HttpExtAuthz;
  tcp?: TcpExtAuthz;
}

const VALID_STATUS = new Set<number>(Object.values(StatusCode).filter((v) => v >= 0));

/** Enabled when the RBAC filter named `filter` recorded a CUSTOM rule as the matching shadow rule. */
function enabledBy(filter: string): MetadataMatcher {
  return {
    filter,
    path: [{ key: `${EXT_AUTHZ_SHADOW_PREFIX}shadow_effective_policy_id` }],
    value: { stringMatch: { prefix: EXT_AUTHZ_PREFIX } },
  };
}

/** `*x` a suffix, `x*` a prefix, else exact; all ignoring case (upstream's generateHeaders). */
function headerList(headers: string[] | undefined): ListStringMatcher | undefined {
  if (!headers?.length) return undefined;
  return {
    patterns: headers.map((h): StringMatcher => {
      if (h.startsWith("*")) return { suffix: h.slice(1), ignoreCase: true };
      if (h.endsWith("*")) return { prefix: h.slice(0, -1), ignoreCase: true };
      return { exact: h, ignoreCase: true };
    }),
  };
}

const timeoutOf = (t: string | undefined) => duration(t) ?? { seconds: 600 };

const bodyOf = (b: BodySettings | undefined) =>
  b
    ? {
        withRequestBody: {
          maxRequestBytes: b.maxRequestBytes ?? 0,
          allowPartialMessage: b.allowPartialMessage ?? false,
          packAsBytes: b.packAsBytes ?? false,
        },
      }
    : {};

/** What is shared by both kinds: the port, the service's cluster and statusOnError, or the errors. */
function target(
  push: PushContext,
  p: { service?: string; port?: number; statusOnError?: string; timeout?: string },
  errors: string[],
) {
  const port = p.port ?? 0;
  if (!Number.isInteger(port) || port < 1 || port > 65535) errors.push(`port must be in the range [1, 65535], found: ${port}`);
  const found = lookupCluster(push, p.service ?? "", port);
  if (typeof found === "string") errors.push(found);
  let status: number | undefined;
  if (p.statusOnError) {
    status = Number(p.statusOnError);
    if (!/^\d+$/.test(p.statusOnError) || !VALID_STATUS.has(status))
      errors.push(`unsupported statusOnError ${JSON.stringify(p.statusOnError)}`);
  }
  if (p.timeout !== undefined && !duration(p.timeout)) errors.push(`invalid timeout ${JSON.stringify(p.timeout)}`);
  return { found: typeof found === "string" ? undefined : found, status };
}

function buildHttp(push: PushContext, p: HttpProvider, errors: string[]): BuiltExtAuthz | undefined {
  const { found, status } = target(push, p, errors);
  if (p.pathPrefix && !p.pathPrefix.startsWith("/"))
    errors.push(`pathPrefix must begin with \`/\`, found: ${JSON.stringify(p.pathPrefix)}`);
  for (const [field, values] of [
    ["includeRequestHeadersInCheck", p.includeRequestHeadersInCheck],
    ["includeHeadersInCheck", p.includeHeadersInCheck],
    ["headersToDownstreamOnDeny", p.headersToDownstreamOnDeny],
    ["headersToDownstreamOnAllow", p.headersToDownstreamOnAllow],
    ["headersToUpstreamOnAllow", p.headersToUpstreamOnAllow],
  ] as const)
    if (values?.includes("*")) errors.push(`a single wildcard ("*") is not supported, use a prefix or suffix: ${field}`);
  if (errors.length > 0 || !found) return undefined;
  const additional = Object.keys(p.includeAdditionalHeadersInCheck ?? {}).sort();
  const headersToAdd: HeaderValue[] = additional.map((key) => ({
    key,
    value: p.includeAdditionalHeadersInCheck?.[key] ?? "",
  }));
  const response =
    p.headersToUpstreamOnAllow?.length || p.headersToDownstreamOnDeny?.length || p.headersToDownstreamOnAllow?.length
      ? {
          authorizationResponse: {
            allowedUpstreamHeaders: headerList(p.headersToUpstreamOnAllow),
            allowedClientHeaders: headerList(p.headersToDownstreamOnDeny),
            allowedClientHeadersOnSuccess: headerList(p.headersToDownstreamOnAllow),
          },
        }
      : {};
  const allowed = headerList(p.includeRequestHeadersInCheck) ?? headerList(p.includeHeadersInCheck);
  return {
    http: {
      ...(status !== undefined ? { statusOnError: { code: status as StatusCode } } : {}),
      failureModeAllow: p.failOpen ?? false,
      transportApiVersion: ApiVersion.V3,
      httpService: {
        pathPrefix: p.pathPrefix ?? "",
        // The URI is required but unused: the cluster is what Envoy calls.
        serverUri: { uri: `http://${found.hostname}`, cluster: found.cluster, timeout: timeoutOf(p.timeout) },
        ...(headersToAdd.length > 0 ? { authorizationRequest: { headersToAdd } } : {}),
        ...response,
      },
      filterEnabledMetadata: enabledBy("envoy.filters.http.rbac"),
      ...bodyOf(p.includeRequestBodyInCheck),
      ...(allowed ? { allowedHeaders: allowed } : {}),
    },
  };
}

function buildGrpc(push: PushContext, p: GrpcProvider, errors: string[]): BuiltExtAuthz | undefined {
  const { found, status } = target(push, p, errors);
  if (errors.length > 0 || !found) return undefined;
  const grpcService: GrpcService = {
    envoyGrpc: { clusterName: found.cluster, authority: found.hostname },
    timeout: timeoutOf(p.timeout),
  };
  return {
    http: {
      ...(status !== undefined ? { statusOnError: { code: status as StatusCode } } : {}),
      failureModeAllow: p.failOpen ?? false,
      grpcService,
      filterEnabledMetadata: enabledBy("envoy.filters.http.rbac"),
      transportApiVersion: ApiVersion.V3,
      ...bodyOf(p.includeRequestBodyInCheck),
    },
    tcp: {
      statPrefix: "tcp.",
      failureModeAllow: p.failOpen ?? false,
      transportApiVersion: ApiVersion.V3,
      grpcService,
      filterEnabledMetadata: enabledBy("envoy.filters.network.rbac"),
    },
  };
}

const cache = new WeakMap<PushContext, Map<string, BuiltExtAuthz | string>>();

/** Every ext_authz provider of the mesh config by name: what it builds, or why it cannot be used. */
function resolvedProviders(push: PushContext): Map<string, BuiltExtAuthz | string> {
  const cached = cache.get(push);
  if (cached) return cached;
  const resolved = new Map<string, BuiltExtAuthz | string>();
  (push.mesh.extensionProviders ?? []).forEach((provider, i) => {
    const http = provider?.envoyExtAuthzHttp as HttpProvider | undefined;
    const grpc = provider?.envoyExtAuthzGrpc as GrpcProvider | undefined;
    if (!http && !grpc) return;
    const errors: string[] = [];
    const name = provider.name ?? "";
    if (!name) errors.push(`extension provider name must not be empty, found empty at index: ${i}`);
    else if (resolved.has(name)) errors.push(`extension provider name must be unique, found duplicate: ${name}`);
    const built = http ? buildHttp(push, http, errors) : buildGrpc(push, grpc as GrpcProvider, errors);
    resolved.set(name, errors.length > 0 || !built ? `provider ${JSON.stringify(name)}: ${errors.join("; ")}` : built);
  });
  cache.set(push, resolved);
  return resolved;
}

/** The ext_authz filters for the providers named by a workload's CUSTOM policies, or why there are none. */
export function extAuthzFor(push: PushContext, providers: string[]): BuiltExtAuthz | string {
  const resolved = resolvedProviders(push);
  if (resolved.size === 0) return "extension provider is either invalid or undefined";
  if (providers.length === 0) return "no provider specified in authorization policy";
  if (providers.some((p) => p !== providers[0]))
    return `only 1 provider can be used per workload, found multiple providers: ${[...new Set(providers)].join(", ")}`;
  const name = providers[0] as string;
  const built = resolved.get(name);
  if (built === undefined)
    return `available providers are [${[...resolved.keys()].join(", ")}] but found ${JSON.stringify(name)}`;
  return built;
}
