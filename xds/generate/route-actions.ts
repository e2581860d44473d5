// What a VirtualService HTTP rule does besides choosing a destination, in upstream's shapes
// (pilot/pkg/networking/core/route): redirects, direct responses, header changes (set, add,
// remove; `:authority`/`host` becomes a host rewrite), fault injection (delays and aborts with
// their percentages), CORS, and mirrors with their percentages.
import type { HeaderValueOption } from "../envoy/third_party/envoy/config/core/v3/base.ts";
import { HeaderValueOption_HeaderAppendAction } from "../envoy/third_party/envoy/config/core/v3/base.ts";
import {
  type DirectResponseAction,
  type RedirectAction,
  RedirectAction_RedirectResponseCode,
  type RouteAction_RequestMirrorPolicy,
} from "../envoy/third_party/envoy/config/route/v3/route_components.ts";
import { CorsPolicy } from "../envoy/third_party/envoy/extensions/filters/http/cors/v3/cors.ts";
import { HTTPFault } from "../envoy/third_party/envoy/extensions/filters/http/fault/v3/fault.ts";
import type { StringMatcher } from "../envoy/third_party/envoy/type/matcher/v3/string.ts";
import { type FractionalPercent, FractionalPercent_DenominatorType } from "../envoy/third_party/envoy/type/v3/percent.ts";
import type { Any } from "../envoy/third_party/google/protobuf/any.ts";
import { pack } from "../envoy/types.ts";
import { duration } from "./duration.ts";

export interface StringMatch {
  exact?: string;
  prefix?: string;
  regex?: string;
}

export interface HeaderOperations {
  set?: Record<string, string>;
  add?: Record<string, string>;
  remove?: string[];
}

export interface Headers {
  request?: HeaderOperations;
  response?: HeaderOperations;
}

export interface HttpRedirect {
  uri?: string;
  authority?: string;
  port?: number;
  derivePort?: "FROM_PROTOCOL_DEFAULT" | "FROM_REQUEST_PORT";
  scheme?: string;
  redirectCode?: number;
}

export interface HttpDirectResponse {
  status?: number;
  body?: { string?: string; bytes?: string };
}

export interface HttpFaultInjection {
  delay?: { fixedDelay?: string; exponentialDelay?: string; percentage?: { value?: number }; percent?: number };
  abort?: { httpStatus?: number; grpcStatus?: string; percentage?: { value?: number } };
}

export interface CorsPolicySpec {
  allowOrigins?: StringMatch[];
  allowOrigin?: string[];
  allowMethods?: string[];
  allowHeaders?: string[];
  exposeHeaders?: string[];
  maxAge?: string;
  allowCredentials?: boolean;
  unmatchedPreflights?: "UNSPECIFIED" | "FORWARD" | "IGNORE";
}

const isInternal = (key: string) => key.startsWith(":") || key.toLowerCase() === "host";
const isAuthority = (key: string) => key.toLowerCase() === ":authority" || key.toLowerCase() === "host";

/** Upstream's translateAppendHeaders: sorted by name; `:authority`/`host` kept aside as the authority. */
function appendHeaders(headers: Record<string, string> | undefined, append: boolean) {
  let authority = "";
  const out: HeaderValueOption[] = [];
  for (const [key, value] of Object.entries(headers ?? {})) {
    if (isAuthority(key)) authority = value;
    if (isInternal(key)) continue;
    out.push({
      header: { key, value },
      appendAction: append
        ? HeaderValueOption_HeaderAppendAction.APPEND_IF_EXISTS_OR_ADD
        : HeaderValueOption_HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD,
    });
  }
  out.sort((a, b) =>
    (a.header?.key ?? "") < (b.header?.key ?? "") ? -1 : (a.header?.key ?? "") > (b.header?.key ?? "") ? 1 : 0,
  );
  return { out, authority };
}

export interface TranslatedHeaders {
  requestHeadersToAdd: HeaderValueOption[];
  responseHeadersToAdd: HeaderValueOption[];
  requestHeadersToRemove: string[];
  responseHeadersToRemove: string[];
  /** A rewrite of the request's authority (set wins over add). */
  authority: string;
}

/** Upstream's TranslateHeadersOperations. */
export function translateHeaders(headers: Headers): TranslatedHeaders {
  const set = appendHeaders(headers.request?.set, false);
  const add = appendHeaders(headers.request?.add, true);
  return {
    requestHeadersToAdd: [...set.out, ...add.out],
    responseHeadersToAdd: [...appendHeaders(headers.response?.set, false).out, ...appendHeaders(headers.response?.add, true).out],
    requestHeadersToRemove: (headers.request?.remove ?? []).filter((k) => !isInternal(k)),
    responseHeadersToRemove: (headers.response?.remove ?? []).filter((k) => !isInternal(k)),
    authority: set.authority || add.authority,
  };
}

const RESPONSE_CODES: Record<number, RedirectAction["responseCode"]> = {
  0: RedirectAction_RedirectResponseCode.MOVED_PERMANENTLY,
  301: RedirectAction_RedirectResponseCode.MOVED_PERMANENTLY,
  302: RedirectAction_RedirectResponseCode.FOUND,
  303: RedirectAction_RedirectResponseCode.SEE_OTHER,
  307: RedirectAction_RedirectResponseCode.TEMPORARY_REDIRECT,
  308: RedirectAction_RedirectResponseCode.PERMANENT_REDIRECT,
};

/** Upstream's ApplyRedirect; undefined for a status code Envoy cannot send (the route then has no action). */
export function redirectAction(redirect: HttpRedirect, listenPort: number, gatewaySemantics = false): RedirectAction | undefined {
  const out: RedirectAction = { hostRedirect: redirect.authority, pathRedirect: redirect.uri ?? "" };
  // The Gateway API's ReplacePrefixMatch, converted as `%PREFIX()%<new prefix>`.
  if (gatewaySemantics && redirect.uri?.startsWith("%PREFIX()%")) {
    delete out.pathRedirect;
    out.prefixRewrite = redirect.uri.slice("%PREFIX()%".length);
  }
  if (redirect.scheme) out.schemeRedirect = redirect.scheme;
  if (redirect.port !== undefined || redirect.derivePort !== undefined) {
    if (redirect.derivePort === "FROM_REQUEST_PORT") out.portRedirect = listenPort;
    if (redirect.port !== undefined) out.portRedirect = redirect.port;
    const scheme = redirect.scheme || "http";
    // No explicit :80 for http or :443 for https.
    if ((out.portRedirect === 80 && scheme === "http") || (out.portRedirect === 443 && scheme === "https"))
      delete out.portRedirect;
  }
  const code = RESPONSE_CODES[redirect.redirectCode ?? 0];
  if (code === undefined) return undefined;
  out.responseCode = code;
  return out;
}

/** Upstream's ApplyDirectResponse. */
export function directResponseAction(response: HttpDirectResponse): DirectResponseAction {
  const out: DirectResponseAction = { status: response.status ?? 0 };
  if (response.body?.string !== undefined) out.body = { inlineString: response.body.string };
  else if (response.body?.bytes !== undefined) out.body = { inlineBytes: Buffer.from(response.body.bytes, "base64") };
  return out;
}

/** A Percent (0-100, fractions allowed) as millionths, as upstream translates it. */
const percentage = (value: number): FractionalPercent => ({
  numerator: Math.trunc(value * 10000),
  denominator: FractionalPercent_DenominatorType.MILLION,
});
const hundredths = (value: number): FractionalPercent => ({
  numerator: value,
  denominator: FractionalPercent_DenominatorType.HUNDRED,
});

/** gRPC status names (validation has accepted only these) and their codes. */
const GRPC_STATUS: Record<string, number> = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
};

/** Upstream's TranslateFault, packed for the route's typed_per_filter_config; undefined when nothing is left. */
export function faultConfig(fault: HttpFaultInjection): Any | undefined {
  const out: HTTPFault = {};
  if (fault.delay) {
    const fixed = duration(fault.delay.fixedDelay);
    if (fixed)
      out.delay = {
        fixedDelay: fixed,
        percentage:
          fault.delay.percentage !== undefined
            ? percentage(fault.delay.percentage.value ?? 0)
            : hundredths(fault.delay.percent ?? 0),
      };
  }
  if (fault.abort) {
    const abort = fault.abort;
    const grpc = abort.grpcStatus !== undefined ? GRPC_STATUS[abort.grpcStatus] : undefined;
    if (abort.httpStatus !== undefined || grpc !== undefined)
      out.abort = {
        ...(abort.httpStatus !== undefined ? { httpStatus: abort.httpStatus } : { grpcStatus: grpc }),
        ...(abort.percentage !== undefined ? { percentage: percentage(abort.percentage.value ?? 0) } : {}),
      };
  }
  if (!out.delay && !out.abort) return undefined;
  return pack(HTTPFault, out);
}

function stringMatcher(m: StringMatch): StringMatcher {
  if (m.exact !== undefined) return { exact: m.exact };
  if (m.prefix !== undefined) return { prefix: m.prefix };
  return { safeRegex: { regex: m.regex ?? "" } };
}

/** Upstream's TranslateCORSPolicy, packed for the route's typed_per_filter_config. */
export function corsConfig(cors: CorsPolicySpec): Any {
  const out: CorsPolicy = {
    forwardNotMatchingPreflights: cors.unmatchedPreflights !== "IGNORE",
    filterEnabled: { defaultValue: hundredths(100) },
    allowCredentials: cors.allowCredentials,
    allowHeaders: (cors.allowHeaders ?? []).join(","),
    allowMethods: (cors.allowMethods ?? []).join(","),
    exposeHeaders: (cors.exposeHeaders ?? []).join(","),
  };
  if (cors.allowOrigins) out.allowOriginStringMatch = cors.allowOrigins.map(stringMatcher);
  else if (cors.allowOrigin) out.allowOriginStringMatch = cors.allowOrigin.map((exact) => ({ exact }));
  const maxAge = duration(cors.maxAge);
  if (maxAge) out.maxAge = String(maxAge.seconds);
  return pack(CorsPolicy, out);
}

/**
 * A mirror of requests to `cluster` (upstream's TranslateRequestMirrorPolicy); undefined at 0 %.
 * `whole`: the deprecated integer `mirrorPercent`, in hundredths.
 */
export function mirrorPolicy(
  cluster: string,
  percent: number | undefined,
  whole = false,
): RouteAction_RequestMirrorPolicy | undefined {
  if (percent !== undefined && percent <= 0) return undefined;
  const fraction = percent === undefined ? hundredths(100) : whole ? hundredths(percent) : percentage(percent);
  return { cluster, runtimeFraction: { defaultValue: fraction }, traceSampled: false };
}
