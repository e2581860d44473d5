// security.istio.io rules: AuthorizationPolicy, PeerAuthentication, RequestAuthentication.
import { cidrOrIp, port } from "../fields.ts";
import { at, isObj, type Obj, objects, type Report, strings } from "../report.ts";
import { workloadSelector } from "./common.ts";

const WHEN_KEYS = [
  /^request\.headers\[[^\]]+\]$/,
  /^(source|remote|destination)\.ip$/,
  /^source\.(namespace|serviceAccount|principal|trustDomain)$/,
  /^request\.auth\.(principal|audiences|presenter)$/,
  /^request\.auth\.claims\[.+\]$/,
  /^destination\.port$/,
  /^connection\.sni$/,
  /^experimental\.envoy\.filters\..+$/,
];
const SOURCE_IDENTITY = [
  "principals",
  "notPrincipals",
  "namespaces",
  "notNamespaces",
  "serviceAccounts",
  "notServiceAccounts",
  "requestPrincipals",
  "notRequestPrincipals",
];

export function validateAuthorizationPolicy(spec: Obj, report: Report): void {
  const selection = ["selector", "targetRef", "targetRefs"].filter(
    (f) => spec[f] !== undefined && spec[f] !== null && !(Array.isArray(spec[f]) && spec[f].length === 0),
  );
  if (selection.length > 1) report.error("spec", "only one of targetRefs, targetRef or workloadSelector can be set");
  workloadSelector(report, "spec.selector", spec.selector);
  const refs = [
    ...(isObj(spec.targetRef) ? [[spec.targetRef, "spec.targetRef"] as [Obj, string]] : []),
    ...objects(report, "spec.targetRefs", spec.targetRefs),
  ];
  for (const [ref, path] of refs) {
    const kind = `${ref.group ?? ""}/${ref.kind ?? ""}`;
    const allowed = [
      "/Service",
      "networking.istio.io/ServiceEntry",
      "gateway.networking.k8s.io/Gateway",
      "gateway.networking.k8s.io/GatewayClass",
    ];
    if (!allowed.includes(kind))
      report.error(
        path,
        `targetRef must be to one of: core/Service, networking.istio.io/ServiceEntry, gateway.networking.k8s.io/Gateway, gateway.networking.k8s.io/GatewayClass but was ${kind}`,
      );
    if (ref.namespace)
      report.error(at(path, "namespace"), "targetRef namespace must not be set; cross namespace references are not allowed");
  }
  const action = String(spec.action ?? "ALLOW");
  const rules = objects(report, "spec.rules", spec.rules);
  if (action === "CUSTOM") {
    if (rules.length === 0)
      report.error(
        "spec.rules",
        "CUSTOM action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request",
      );
    else if (!isObj(spec.provider) || !spec.provider.name)
      report.error("spec.provider.name", "`provider.name` must not be empty");
  } else if (spec.provider !== undefined) report.error("spec.provider", "provider is only allowed with CUSTOM action");
  if (action === "DENY" && rules.some(([rule]) => onlyHttpAttributes(rule))) {
    report.warn(
      "spec.rules",
      "configured AuthorizationPolicy will deny all traffic to TCP ports under its scope due to the use of only HTTP attributes in a DENY rule; it is recommended to explicitly specify the port",
    );
  }
  if (action === "DENY" && spec.rules === undefined)
    report.error(
      "spec.rules",
      "DENY action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request",
    );
  if (!["ALLOW", "DENY", "AUDIT", "CUSTOM"].includes(action)) report.error("spec.action", `unknown action "${action}"`);

  for (const [rule, path] of rules) {
    if (rule.from !== undefined && Array.isArray(rule.from) && rule.from.length === 0)
      report.error(at(path, "from"), "`from` must not be empty");
    if (rule.to !== undefined && Array.isArray(rule.to) && rule.to.length === 0)
      report.error(at(path, "to"), "`to` must not be empty");
    for (const [from, fpath] of objects(report, at(path, "from"), rule.from)) {
      const source = from.source;
      if (!isObj(source) || Object.keys(source).length === 0) {
        report.error(at(fpath, "source"), "`source` must not be empty");
        continue;
      }
      nonEmptyStrings(source, at(fpath, "source"), report);
      if (action === "CUSTOM") {
        for (const field of SOURCE_IDENTITY)
          if (source[field] !== undefined)
            report.error(at(at(fpath, "source"), field), `From.${field} is currently not supported with CUSTOM action`);
      }
      if (
        (source.serviceAccounts !== undefined || source.notServiceAccounts !== undefined) &&
        (source.namespaces !== undefined || source.principals !== undefined)
      ) {
        report.error(at(fpath, "source"), "cannot set serviceAccounts with namespaces or principals");
      }
      for (const field of ["ipBlocks", "notIpBlocks", "remoteIpBlocks", "notRemoteIpBlocks"]) {
        for (const [block, bpath] of strings(report, at(at(fpath, "source"), field), source[field])) {
          const problem = cidrOrIp(block);
          if (problem) report.error(bpath, `bad CIDR range (${block}): ${problem}`);
        }
      }
      for (const field of ["serviceAccounts", "notServiceAccounts"]) {
        const accounts = strings(report, at(at(fpath, "source"), field), source[field]);
        if (accounts.length > 16) report.error(at(at(fpath, "source"), field), "a maximum of 16 service accounts is allowed");
        for (const [sa, spath] of accounts) {
          if (sa.includes("*")) report.error(spath, "wildcard is not supported in serviceAccounts");
          else if (sa.split("/").length > 2 || sa.split("/").some((part) => part === ""))
            report.error(spath, `serviceAccount must be of the form "sa" or "ns/sa", got "${sa}"`);
        }
      }
    }
    for (const [to, tpath] of objects(report, at(path, "to"), rule.to)) {
      const operation = to.operation;
      if (!isObj(operation) || Object.keys(operation).length === 0) {
        report.error(at(tpath, "operation"), "`operation` must not be empty");
        continue;
      }
      nonEmptyStrings(operation, at(tpath, "operation"), report);
      for (const field of ["ports", "notPorts"]) {
        for (const [p, ppath] of strings(report, at(at(tpath, "operation"), field), operation[field])) {
          const n = Number(p);
          if (!/^\d+$/.test(p) || n > 65535) report.error(ppath, `invalid port: ${p}`);
        }
      }
      for (const [field, name] of [
        ["paths", "Paths"],
        ["notPaths", "NotPaths"],
      ] as const) {
        for (const [p, ppath] of strings(report, at(at(tpath, "operation"), field), operation[field])) {
          const problem = pathTemplateProblem(p);
          if (problem)
            report.error(ppath, `invalid or unsupported path ${p.replace(/^\/+|\/+$/g, "")}, found in ${name}. ${problem}`);
        }
      }
    }
    for (const [when, wpath] of objects(report, at(path, "when"), rule.when)) {
      const key = typeof when.key === "string" ? when.key : "";
      if (key === "") report.error(at(wpath, "key"), "`key` must not be empty");
      else if (!WHEN_KEYS.some((re) => re.test(key))) report.error(at(wpath, "key"), `unknown attribute: ${key}`);
      if (action === "CUSTOM" && (key.startsWith("source.") || key.startsWith("request.auth.")))
        report.error(at(wpath, "key"), `${key} is currently not supported with CUSTOM action`);
      if (
        (when.values === undefined || (Array.isArray(when.values) && when.values.length === 0)) &&
        (when.notValues === undefined || (Array.isArray(when.notValues) && when.notValues.length === 0))
      ) {
        report.error(wpath, `at least one of values or not_values must be set for key: ${key}`);
      }
    }
  }
}

const HTTP_ONLY_OPERATION = ["hosts", "notHosts", "methods", "notMethods", "paths", "notPaths"];
const HTTP_ONLY_SOURCE = ["requestPrincipals", "notRequestPrincipals"];

/** A rule only HTTP traffic can match: TCP connections under the policy would be denied outright. */
function onlyHttpAttributes(rule: Obj): boolean {
  const operations = (Array.isArray(rule.to) ? rule.to : []).map((t) => (isObj(t) && isObj(t.operation) ? t.operation : {}));
  const sources = (Array.isArray(rule.from) ? rule.from : []).map((f) => (isObj(f) && isObj(f.source) ? f.source : {}));
  const conditions = (Array.isArray(rule.when) ? rule.when : []).filter(isObj);
  const usesHttp =
    operations.some((o) => HTTP_ONLY_OPERATION.some((f) => o[f] !== undefined)) ||
    sources.some((src) => HTTP_ONLY_SOURCE.some((f) => src[f] !== undefined)) ||
    conditions.some((w) => typeof w.key === "string" && w.key.startsWith("request."));
  const hasPorts = operations.some((o) => o.ports !== undefined || o.notPorts !== undefined);
  return usesHttp && !hasPorts;
}

function nonEmptyStrings(obj: Obj, path: string, report: Report): void {
  for (const [field, value] of Object.entries(obj)) {
    if (!Array.isArray(value)) continue;
    value.forEach((v, i) => {
      if (v === "") report.error(at(at(path, field), i), "empty value is not allowed");
    });
  }
}

export function validatePeerAuthentication(spec: Obj, report: Report): void {
  workloadSelector(report, "spec.selector", spec.selector);
  const hasSelector =
    isObj(spec.selector) && isObj(spec.selector.matchLabels) && Object.keys(spec.selector.matchLabels).length > 0;
  if (spec.portLevelMtls !== undefined) {
    if (!hasSelector) report.error("spec.portLevelMtls", "mesh/namespace peer authentication cannot have port level mTLS");
    if (!isObj(spec.portLevelMtls) || Object.keys(spec.portLevelMtls).length === 0)
      report.error("spec.portLevelMtls", "port level mTLS, if defined, must have at least one element");
    else for (const p of Object.keys(spec.portLevelMtls)) report.error(at("spec.portLevelMtls", p), port(Number(p)));
  }
}

export function validateRequestAuthentication(spec: Obj, report: Report): void {
  workloadSelector(report, "spec.selector", spec.selector);
  for (const [rule, path] of objects(report, "spec.jwtRules", spec.jwtRules)) {
    if (!rule.issuer && !rule.jwksUri) report.error(path, "issuer or jwksUri must be non-empty string");
    if (typeof rule.jwksUri === "string" && rule.jwksUri) {
      let scheme = "";
      try {
        scheme = new URL(rule.jwksUri).protocol.replace(":", "");
      } catch {
        report.error(at(path, "jwksUri"), `invalid jwks URI ${rule.jwksUri}`);
      }
      if (scheme && scheme !== "http" && scheme !== "https")
        report.error(at(path, "jwksUri"), `URI scheme "${scheme}" is not supported`);
    }
    if (typeof rule.jwks === "string" && rule.jwks) {
      try {
        const keys = JSON.parse(rule.jwks) as { keys?: { d?: string }[] };
        if (keys.keys?.some((k) => k.d !== undefined)) report.warn(at(path, "jwks"), "JWKS contains private key material");
      } catch (err) {
        report.error(at(path, "jwks"), `jwks parse error: ${(err as Error).message}`);
      }
    }
    for (const field of ["audiences", "fromParams", "fromCookies"]) {
      for (const [value, vpath] of strings(report, at(path, field), rule[field]))
        if (value === "") report.error(vpath, `${field} must be non-empty string`);
    }
    for (const [header, hpath] of objects(report, at(path, "fromHeaders"), rule.fromHeaders))
      if (!header.name) report.error(at(hpath, "name"), "location header name must be non-empty string");
    if (
      typeof rule.outputPayloadToHeader === "string" &&
      rule.outputPayloadToHeader &&
      !/^[-_A-Za-z0-9]+$/.test(rule.outputPayloadToHeader)
    ) {
      report.error(
        at(path, "outputPayloadToHeader"),
        `outputPayloadToHeader ${rule.outputPayloadToHeader} is not a valid header name`,
      );
    }
    for (const [claim, cpath] of objects(report, at(path, "outputClaimToHeaders"), rule.outputClaimToHeaders)) {
      if (typeof claim.header !== "string" || !/^[-_A-Za-z0-9]+$/.test(claim.header))
        report.error(at(cpath, "header"), `invalid header name: ${String(claim.header ?? "")}`);
      if (!claim.claim) report.error(at(cpath, "claim"), "claim must be non-empty string");
    }
  }
}

/**
 * What is wrong with a path's templates (upstream's CheckValidPathTemplate): `{*}` and `{**}`
 * are whole segments, `{**}` is the last one (upstream 1.27 lets a literal follow it, which
 * Envoy then rejects: see testdata/intended-differences.yaml), and beside a template every
 * segment is a plain literal.
 */
function pathTemplateProblem(path: string): string | undefined {
  const templated = path.includes("{*}") || path.includes("{**}");
  let matchAny = false;
  for (const glob of path.replace(/^\/+|\/+$/g, "").split("/")) {
    if (matchAny) return "{**} is not the last operator";
    if (glob === "{*}") continue;
    if (glob === "{**}") {
      matchAny = true;
      continue;
    }
    if (/[{}]/.test(glob)) return "Contains '{' or '}' beyond a supported path template";
    if (templated && !/^[a-zA-Z0-9\-._~%!$&'()+,;:@=]+$/.test(glob))
      return `Contains segment ${glob} with invalid string literal`;
  }
  return undefined;
}
