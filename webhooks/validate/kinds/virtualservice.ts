// VirtualService rules (networking.istio.io): hosts, gateways, http/tls/tcp routes.
import { cidrOrIp, dnsLabel, duration, durationSeconds, fqdn, ip, labels, port, re2, wildcardDomain } from "../fields.ts";
import { at, isObj, type Obj, objects, type Report, strings } from "../report.ts";
import { exportTo } from "./common.ts";

const RETRY_ON = new Set([
  "5xx",
  "gateway-error",
  "reset",
  "reset-before-request",
  "connect-failure",
  "retriable-4xx",
  "refused-stream",
  "retriable-status-codes",
  "retriable-headers",
  "envoy-ratelimited",
  "http3-post-connect-failure",
  "cancelled",
  "deadline-exceeded",
  "internal",
  "resource-exhausted",
  "unavailable",
]);
const CORS_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "*"]);
const GRPC_STATUS = new Set([
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
]);
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export function validateVirtualService(spec: Obj, report: Report, namespace: string): void {
  const hosts = strings(report, "spec.hosts", spec.hosts);
  const gateways = strings(report, "spec.gateways", spec.gateways);
  const boundToMesh = gateways.length === 0 || gateways.some(([g]) => g === "mesh");

  if (hosts.length === 0) {
    // No hosts: a delegate VirtualService, only usable from another one's http routes.
    if (gateways.length > 0) report.error("spec.gateways", "delegate virtual service must have no gateways specified");
    if (spec.tls !== undefined) report.error("spec.tls", "delegate virtual service must have no tls route specified");
    if (spec.tcp !== undefined) report.error("spec.tcp", "delegate virtual service must have no tcp route specified");
  }
  const seen = new Map<string, string>();
  for (const [host, path] of hosts) {
    if (host === "*" && boundToMesh) {
      report.error(path, "wildcard host * is not allowed for virtual services bound to the mesh gateway");
      continue;
    }
    if (!host.startsWith("outbound_.") && ip(host) !== undefined) report.error(path, wildcardDomain(host));
    const key = host.toLowerCase();
    const duplicate = seen.get(key);
    if (duplicate !== undefined) report.error(path, `duplicate hosts in virtual service: ${duplicate} & ${host}`);
    seen.set(key, host);
  }
  for (const [gateway, path] of gateways) {
    if (gateway === "mesh") continue;
    const slash = gateway.indexOf("/");
    if (slash >= 0) {
      const ns = gateway.slice(0, slash);
      const name = gateway.slice(slash + 1);
      if (dnsLabel(ns)) report.error(path, `invalid value for namespace: "${ns}"`);
      if (dnsLabel(name)) report.error(path, `invalid value for gateway name: "${name}"`);
    } else {
      const problem = fqdn(gateway);
      if (problem) report.error(path, `invalid gateway name "${gateway}": ${problem}`);
      else if (gateway.split(".").length === 2) {
        const [gw, ns] = gateway.split(".");
        report.warn(path, `using legacy gatewayName format "${gateway}"; prefer the <namespace>/<name> format: "${ns}/${gw}"`);
      }
    }
  }
  if (spec.http === undefined && spec.tls === undefined && spec.tcp === undefined) {
    report.error("spec", "http, tcp or tls must be provided in virtual service");
  }
  exportTo(report, "spec.exportTo", spec.exportTo, namespace, false);

  const http = objects(report, "spec.http", spec.http);
  for (const [route, path] of http) httpRoute(route, path, report, hosts.length > 0, gateways.length > 0);
  unreachableRules(http, report);
  for (const [route, path] of objects(report, "spec.tls", spec.tls))
    tlsRoute(
      route,
      path,
      report,
      hosts.map(([h]) => h),
    );
  for (const [route, path] of objects(report, "spec.tcp", spec.tcp)) tcpRoute(route, path, report);
}

function routeName(route: Obj, i: number): string {
  return typeof route.name === "string" && route.name ? `"${route.name}"` : `#${i}`;
}

/**
 * Warnings for rules and matches that can never be reached, in upstream's terms: a rule
 * after a catch-all, a match that repeats an earlier one, and a URI prefix already covered
 * by an earlier, otherwise identical prefix match.
 */
function unreachableRules(http: [Obj, string][], report: Report): void {
  const seen = new Map<string, number>();
  let catchAll = -1;
  const prefixes: { route: number; match: string; prefix: string; rest: string }[] = [];
  http.forEach(([route, path], i) => {
    const matches = Array.isArray(route.match) ? route.match : [];
    if (matches.length === 0) {
      if (catchAll >= 0)
        report.warn(path, `virtualService rule ${routeName(route, i)} not used (only the last rule can have no matches)`);
      catchAll = i;
      return;
    }
    let duplicates = 0;
    matches.forEach((match, m) => {
      if (catchAll >= 0) {
        report.warn(path, `virtualService rule ${routeName(route, i)} not used (route without matches defined before)`);
        return;
      }
      const matchName = isObj(match) && typeof match.name === "string" && match.name ? `"${match.name}"` : `#${m}`;
      const key = matchKey(match);
      const earlier = seen.get(key);
      if (earlier !== undefined) {
        const [earlierRoute] = http[earlier] ?? [{}];
        report.warn(
          at(path, "match"),
          `virtualService rule ${routeName(route, i)} match ${matchName} is not used (duplicate/overlapping match in rule ${routeName(earlierRoute, earlier)})`,
        );
        duplicates++;
        return;
      }
      seen.set(key, i);
      if (isObj(match) && isObj(match.uri) && typeof match.uri.prefix === "string" && match.uri.prefix !== "") {
        // Everything but the URI (and the name) must be equal for one prefix to cover another; no method means GET.
        const rest = canonicalJson({ method: { exact: "GET" }, ...without(match, ["uri", "name"]) });
        prefixes.push({ route: i, match: matchName, prefix: match.uri.prefix, rest });
      }
    });
    if (duplicates === matches.length)
      report.warn(path, `virtualService rule ${routeName(route, i)} not used (all matches used by prior rules)`);
  });
  prefixes.forEach((a, ai) => {
    for (const b of prefixes.slice(ai + 1)) {
      if (b.prefix === a.prefix || !b.prefix.startsWith(a.prefix) || b.rest !== a.rest) continue;
      const [routeA] = http[a.route] ?? [{}];
      const [routeB, pathB] = http[b.route] ?? [{}, ""];
      report.warn(
        at(pathB, "match"),
        `virtualService rule ${routeName(routeB, b.route)} match ${b.match} of prefix ${b.prefix} is not used (duplicate/overlapping match in rule ${a.match} of prefix ${a.prefix} on ${routeName(routeA, a.route)})`,
      );
    }
  });
}

/** A match without its name, with keys sorted, so equal matches compare equal. */
function matchKey(match: unknown): string {
  return isObj(match) ? canonicalJson(without(match, ["name"])) : JSON.stringify(match);
}

function without(obj: Obj, keys: string[]): Obj {
  return Object.fromEntries(Object.entries(obj).filter(([k]) => !keys.includes(k)));
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (isObj(value))
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`)
      .join(",")}}`;
  return JSON.stringify(value);
}

function httpRoute(route: Obj, path: string, report: Report, rootWithHosts: boolean, withGateways: boolean): void {
  const has = (k: string) => route[k] !== undefined && route[k] !== null;
  if (has("delegate")) {
    if (!rootWithHosts) report.error(at(path, "delegate"), "http delegate only applies to root virtual service");
    if (has("route") || has("redirect")) report.error(path, "http delegate cannot contain route or redirect");
  } else if (!has("route") && !has("redirect") && !has("directResponse")) {
    report.error(path, "HTTP route, redirect or direct_response is required");
  }
  if (has("route") && has("redirect")) report.error(path, "HTTP route cannot contain both route and redirect");
  if (has("redirect")) {
    for (const other of ["fault", "rewrite", "directResponse"])
      if (has(other))
        report.error(
          path,
          `HTTP route cannot contain both ${other === "directResponse" ? "direct_response" : other} and redirect`,
        );
  }
  if (has("directResponse")) {
    for (const other of ["route", "fault", "rewrite"])
      if (has(other)) report.error(path, `HTTP route cannot contain both ${other} and direct_response`);
  }
  if (has("mirror") && has("mirrors")) report.error(path, "HTTP route cannot contain both mirror and mirrors");

  for (const [match, mpath] of objects(report, at(path, "match"), route.match)) httpMatch(match, mpath, report, withGateways);
  const destinations = objects(report, at(path, "route"), route.route);
  let total = 0;
  for (const [dest, dpath] of destinations) {
    destination(dest.destination, at(dpath, "destination"), report);
    const weight = dest.weight;
    if (weight !== undefined) {
      if (typeof weight !== "number" || !Number.isInteger(weight)) report.error(at(dpath, "weight"), "weight must be an integer");
      else {
        if (weight < 0) report.error(at(dpath, "weight"), `weight ${weight} < 0`);
        total += weight;
      }
    }
    headers(dest.headers, at(dpath, "headers"), report);
  }
  if (destinations.length > 1 && total === 0) report.error(at(path, "route"), "total destination weight = 0");
  headers(route.headers, at(path, "headers"), report);
  if (has("timeout")) {
    const t = durationSeconds(route.timeout);
    if (t === 0) report.error(at(path, "timeout"), "timeout must be greater than 0s");
    else report.error(at(path, "timeout"), duration(route.timeout));
  }
  if (has("retries")) retries(route.retries, at(path, "retries"), report);
  if (has("fault")) fault(route.fault, at(path, "fault"), report);
  if (has("mirror")) destination(route.mirror, at(path, "mirror"), report);
  for (const [mirror, mpath] of objects(report, at(path, "mirrors"), route.mirrors)) {
    if (!isObj(mirror.destination)) report.error(mpath, "destination is required for mirrors");
    else destination(mirror.destination, at(mpath, "destination"), report);
    percentage(mirror.percentage, at(mpath, "percentage"), report);
  }
  if (isObj(route.mirrorPercentage)) {
    const value = Number(route.mirrorPercentage.value ?? 0);
    if (value > 100)
      report.error(at(path, "mirrorPercentage"), `mirror_percentage must have a max value of 100 (it has ${value.toFixed(6)})`);
    if (value < 0)
      report.error(at(path, "mirrorPercentage"), `mirror_percentage must have a min value of 0 (it has ${value.toFixed(6)})`);
  }
  if (has("mirrorPercent"))
    report.warn(at(path, "mirrorPercent"), "using deprecated setting mirrorPercent, consider using mirrorPercentage instead");
  if (has("redirect")) redirect(route.redirect, at(path, "redirect"), report);
  if (has("rewrite")) rewrite(route.rewrite, at(path, "rewrite"), report);
  if (isObj(route.directResponse)) {
    const status = route.directResponse.status;
    if (typeof status !== "number" || status < 200 || status > 600)
      report.error(at(path, "directResponse.status"), `status ${String(status)} is not in range 200-600`);
  }
  if (has("corsPolicy")) cors(route.corsPolicy, at(path, "corsPolicy"), report);
}

function httpMatch(match: Obj, path: string, report: Report, withGateways: boolean): void {
  for (const field of ["uri", "scheme", "method", "authority"]) {
    const m = match[field];
    if (m === undefined) continue;
    stringMatch(m, at(path, field), report, field !== "uri", field);
  }
  for (const field of ["headers", "withoutHeaders", "queryParams"]) {
    const map = match[field];
    if (map === undefined) continue;
    if (!isObj(map)) {
      report.error(at(path, field), "must be a map");
      continue;
    }
    for (const [name, m] of Object.entries(map)) {
      const mpath = at(at(path, field), name);
      if (field !== "queryParams") {
        const claim = name.startsWith("@request.auth.claims.");
        if (claim && !withGateways)
          report.error(mpath, `JWT claim based routing (key: ${name}) is only supported for gateway, found no gateways: []`);
        if (!claim && !HEADER_NAME.test(name.startsWith(":") ? name.slice(1) : name))
          report.error(mpath, `header name "${name}" is not a valid header name`);
      }
      stringMatch(m, mpath, report, true, name);
    }
  }
  if (match.port !== undefined) report.error(at(path, "port"), port(match.port));
  for (const message of labels(match.sourceLabels)) report.error(at(path, "sourceLabels"), message);
  if (typeof match.sourceNamespace === "string" && match.sourceNamespace)
    report.error(at(path, "sourceNamespace"), dnsLabel(match.sourceNamespace));
}

function stringMatch(m: unknown, path: string, report: Report, prefixMustBeSet: boolean, name: string): void {
  if (!isObj(m)) return;
  if (prefixMustBeSet && m.prefix === "") report.error(path, `"${name}": prefix string match should not be empty`);
  if (typeof m.regex === "string") {
    const problem = re2(m.regex);
    if (problem) report.error(path, `"${name}": ${problem}`);
  }
}

function destination(dest: unknown, path: string, report: Report): void {
  if (!isObj(dest)) {
    report.error(path, "destination is required");
    return;
  }
  const host = dest.host;
  if (host === "*") report.error(at(path, "host"), "invalid destination host *");
  else if (typeof host !== "string" || host === "") report.error(at(path, "host"), "destination host is required");
  else report.error(at(path, "host"), wildcardDomain(host));
  if (typeof dest.subset === "string" && dest.subset && dnsLabel(dest.subset))
    report.error(at(path, "subset"), `subset name is invalid: ${dest.subset}`);
  if (isObj(dest.port) && dest.port.number !== undefined) report.error(at(path, "port.number"), port(dest.port.number));
}

function headers(h: unknown, path: string, report: Report): void {
  if (!isObj(h)) return;
  for (const side of ["request", "response"] as const) {
    const ops = h[side];
    if (!isObj(ops)) continue;
    for (const op of ["set", "add"] as const) {
      const map = ops[op];
      if (!isObj(map)) continue;
      for (const [name, value] of Object.entries(map)) {
        const p = at(at(at(path, side), op), name);
        if (name.toLowerCase() === "host") report.error(p, `invalid header "${name}": cannot set Host header`);
        else if (name.startsWith(":") && !(side === "request" && name === ":authority"))
          report.error(p, `invalid header "${name}": cannot set pseudo header`);
        if (typeof value === "string" && hasUnescapedPercent(value)) {
          report.error(p, "header value configuration: invalid header configuration. Un-escaped %");
        }
        if (typeof value === "string" && hasControlCharacter(value))
          report.error(p, `invalid header value "${value}": contains control characters`);
      }
    }
    for (const [name, p] of strings(report, at(at(path, side), "remove"), ops.remove)) {
      if (name.toLowerCase() === "host") report.error(p, `invalid header "${name}": cannot set Host header`);
    }
  }
}

function retries(r: unknown, path: string, report: Report): void {
  if (!isObj(r)) return;
  const attempts = r.attempts;
  if (typeof attempts === "number" && attempts < 0) report.error(at(path, "attempts"), "attempts cannot be negative");
  if (attempts === 0 && Object.keys(r).some((k) => k !== "attempts"))
    report.error(path, "http retry policy configured when attempts are set to 0 (disabled)");
  if (r.perTryTimeout !== undefined) report.error(at(path, "perTryTimeout"), duration(r.perTryTimeout));
  if (r.backoff !== undefined) report.error(at(path, "backoff"), duration(r.backoff));
  if (typeof r.retryOn === "string" && r.retryOn !== "") {
    for (const policy of r.retryOn.split(",").map((p) => p.trim())) {
      if (!RETRY_ON.has(policy) && !/^\d{3}$/.test(policy))
        report.error(at(path, "retryOn"), `"${policy}" is not a valid retryOn policy`);
    }
  }
}

function percentage(p: unknown, path: string, report: Report): void {
  if (!isObj(p)) return;
  const value = Number(p.value ?? 0);
  if (value !== 0 && (value < 0.0001 || value > 100))
    report.error(path, `percentage ${value} is neither 0.0, nor in range [0.0001, 100.0]`);
}

function fault(f: unknown, path: string, report: Report): void {
  if (!isObj(f)) return;
  if (!isObj(f.abort) && !isObj(f.delay)) {
    report.error(path, "HTTP fault injection must have an abort and/or a delay");
    return;
  }
  if (isObj(f.abort)) {
    const abort = f.abort;
    const apath = at(path, "abort");
    percentage(abort.percentage, at(apath, "percentage"), report);
    if (abort.httpStatus !== undefined) {
      const status = abort.httpStatus;
      if (typeof status !== "number" || status < 200 || status > 600)
        report.error(at(apath, "httpStatus"), `HTTP status ${String(status)} is not in range 200-599`);
    } else if (abort.grpcStatus !== undefined) {
      if (!GRPC_STATUS.has(String(abort.grpcStatus)))
        report.error(at(apath, "grpcStatus"), `gRPC status "${String(abort.grpcStatus)}" is not supported`);
    } else if (abort.http2Error !== undefined) {
      report.error(at(apath, "http2Error"), "HTTP/2 abort fault injection not supported yet");
    } else {
      report.warn(apath, "abort configured, but error type not set");
    }
  }
  if (isObj(f.delay)) {
    const delay = f.delay;
    const dpath = at(path, "delay");
    percentage(delay.percentage, at(dpath, "percentage"), report);
    if (delay.exponentialDelay !== undefined) report.error(at(dpath, "exponentialDelay"), "exponentialDelay not supported yet");
    else if (delay.fixedDelay === undefined) report.error(at(dpath, "fixedDelay"), "fixedDelay is required");
    else report.error(at(dpath, "fixedDelay"), duration(delay.fixedDelay));
  }
}

// Istio 1.27's HTTPRedirect has no prefix_rewrite (later releases add it), so it is not checked here.
function redirect(r: unknown, path: string, report: Report): void {
  if (!isObj(r)) return;
  if (!r.uri && !r.authority && !r.scheme && !r.port && !r.derivePort)
    report.error(path, "redirect must specify URI, authority, scheme, or port");
  if (r.redirectCode !== undefined) {
    const code = Number(r.redirectCode);
    if (code < 300 || code > 399) report.error(at(path, "redirectCode"), `${code} is not a valid redirect code, must be 3xx`);
  }
  if (r.scheme !== undefined && r.scheme !== "http" && r.scheme !== "https") {
    report.error(at(path, "scheme"), `scheme must be http or https, got "${String(r.scheme)}"`);
  }
}

function rewrite(r: unknown, path: string, report: Report): void {
  if (!isObj(r)) return;
  if (r.uri !== undefined && r.uriRegexRewrite !== undefined)
    report.error(path, "rewrite may only contain one of URI or UriRegexRewrite");
  if (!r.uri && !r.uriRegexRewrite && !r.authority)
    report.error(
      path,
      "rewrite must specify at least one of URI, UriRegexRewrite, or authority. Only one of URI or UriRegexRewrite may be specified",
    );
  if (isObj(r.uriRegexRewrite)) {
    const rr = r.uriRegexRewrite;
    if (typeof rr.match !== "string" || rr.match === "")
      report.error(at(path, "uriRegexRewrite.match"), "UriRegexRewrite requires both Rewrite and Match fields to be specified");
    else report.error(at(path, "uriRegexRewrite.match"), re2(rr.match));
    if (typeof rr.rewrite !== "string")
      report.error(at(path, "uriRegexRewrite.rewrite"), "UriRegexRewrite requires both Rewrite and Match fields to be specified");
  }
}

function cors(c: unknown, path: string, report: Report): void {
  if (!isObj(c)) return;
  for (const [method, p] of strings(report, at(path, "allowMethods"), c.allowMethods)) {
    if (!CORS_METHODS.has(method)) report.error(p, `${method} is not a valid HTTP method`);
  }
  for (const [origin, p] of objects(report, at(path, "allowOrigins"), c.allowOrigins)) {
    if (Object.keys(origin).length === 0) report.error(p, "'origin' is required");
    if (typeof origin.regex === "string") report.error(p, re2(origin.regex));
  }
  if (c.maxAge !== undefined) {
    const seconds = durationSeconds(c.maxAge);
    if (seconds === undefined) report.error(at(path, "maxAge"), `invalid duration ${JSON.stringify(c.maxAge)}`);
    else if (!Number.isInteger(seconds))
      report.error(at(path, "maxAge"), "max_age duration is accurate only to seconds precision");
  }
}

function tlsRoute(route: Obj, path: string, report: Report, hosts: string[]): void {
  const matches = objects(report, at(path, "match"), route.match);
  if (matches.length === 0) report.error(at(path, "match"), "TLS route must have at least one match condition");
  for (const [match, mpath] of matches) {
    const snis = strings(report, at(mpath, "sniHosts"), match.sniHosts);
    if (snis.length === 0) report.error(at(mpath, "sniHosts"), "TLS match must have at least one SNI host");
    for (const [sni, spath] of snis) {
      if (!ip(sni)) {
        report.warn(spath, "IP address in SNI is not supported and will be ignored");
        continue;
      }
      report.error(spath, wildcardDomain(sni));
      if (!hosts.some((h) => hostCovers(h, sni)))
        report.error(
          spath,
          `SNI host "${sni}" is not a compatible subset of any of the virtual service hosts: [${hosts.join(", ")}]`,
        );
    }
    for (const [d, dpath] of strings(report, at(mpath, "destinationSubnets"), match.destinationSubnets))
      report.error(dpath, cidrOrIp(d));
    if (match.port !== undefined) report.error(at(mpath, "port"), port(match.port));
  }
  const destinations = objects(report, at(path, "route"), route.route);
  if (destinations.length === 0) report.error(at(path, "route"), "TLS route is required");
  for (const [dest, dpath] of destinations) destination(dest.destination, at(dpath, "destination"), report);
}

function tcpRoute(route: Obj, path: string, report: Report): void {
  for (const [match, mpath] of objects(report, at(path, "match"), route.match)) {
    for (const [d, dpath] of strings(report, at(mpath, "destinationSubnets"), match.destinationSubnets))
      report.error(dpath, cidrOrIp(d));
    if (match.port !== undefined) report.error(at(mpath, "port"), port(match.port));
  }
  const destinations = objects(report, at(path, "route"), route.route);
  if (destinations.length === 0) report.error(at(path, "route"), "TCP route is required");
  for (const [dest, dpath] of destinations) destination(dest.destination, at(dpath, "destination"), report);
}

/** Whether host pattern `pattern` (possibly `*.x` or `*`) includes `host`. */
function hostCovers(pattern: string, host: string): boolean {
  if (pattern === "*") return true;
  if (pattern.startsWith("*")) return host.endsWith(pattern.slice(1)) || host === pattern;
  if (host.startsWith("*")) return pattern.endsWith(host.slice(1));
  return pattern === host;
}

/** Control characters other than tab, which header values may not carry. */
function hasControlCharacter(value: string): boolean {
  return [...value].some((c) => {
    const code = c.charCodeAt(0);
    return (code < 0x20 && code !== 0x09) || code === 0x7f;
  });
}

/**
 * Envoy reads `%NAME%` and `%NAME(args)%` in header values as variables and `%%` as a
 * literal percent sign; any other `%` is an error on the proxy.
 */
function hasUnescapedPercent(value: string): boolean {
  let i = 0;
  while (i < value.length) {
    if (value[i] !== "%") i++;
    else if (value[i + 1] === "%") i += 2;
    else {
      const variable = /^%[A-Z][A-Z0-9_]*(\([^)]*\))?(:[0-9]+)?%/.exec(value.slice(i));
      if (!variable) return true;
      i += variable[0].length;
    }
  }
  return false;
}
