// The remaining kinds: ServiceEntry, Sidecar, EnvoyFilter, WasmPlugin, Telemetry,
// WorkloadEntry, WorkloadGroup, ProxyConfig.
import { cidrOrIp, dnsLabel, ip, labels, PROTOCOLS, port, wildcardDomain } from "../fields.ts";
import { at, isObj, type Obj, objects, type Report, strings } from "../report.ts";
import { exportTo, workloadSelector } from "./common.ts";
import { checkPatchValue } from "./envoy-types.ts";

export function validateServiceEntry(spec: Obj, report: Report, namespace: string): void {
  const hosts = strings(report, "spec.hosts", spec.hosts);
  if (hosts.length === 0) report.error("spec.hosts", "service entry must have at least one host");
  const resolution = String(spec.resolution ?? "NONE");
  for (const [host, path] of hosts) {
    if (host === "*") report.error(path, "invalid host *");
    else {
      report.error(path, wildcardDomain(host));
      if (host.startsWith("*") && !host.startsWith("*.")) report.warn(path, `service entry host ${host} is a partial wildcard`);
    }
  }
  for (const [address, path] of strings(report, "spec.addresses", spec.addresses)) {
    const problem = cidrOrIp(address);
    if (problem) report.error(path, problem);
    else if (address.includes("/") && resolution !== "NONE" && resolution !== "STATIC")
      report.error(path, "CIDR addresses are allowed only for NONE/STATIC resolution types");
  }
  const ports = objects(report, "spec.ports", spec.ports);
  const names = new Set<string>();
  const numbers = new Set<number>();
  for (const [p, path] of ports) {
    if (typeof p.name !== "string" || p.name === "") report.error(at(path, "name"), "port name must be set");
    else {
      if (dnsLabel(p.name)) report.error(at(path, "name"), `invalid port name: ${p.name}`);
      if (names.has(p.name)) report.error(at(path, "name"), `service entry port name ${p.name} already defined`);
      names.add(p.name);
    }
    report.error(at(path, "number"), port(p.number));
    if (typeof p.number === "number") {
      if (numbers.has(p.number)) report.error(at(path, "number"), `service entry port ${p.number} already defined`);
      numbers.add(p.number);
    }
    const protocol = String(p.protocol ?? "").toUpperCase();
    if (protocol !== "" && protocol !== "HBONE" && !PROTOCOLS.has(protocol))
      report.error(at(path, "protocol"), `unsupported protocol: ${String(p.protocol)}`);
  }
  if (spec.workloadSelector !== undefined && spec.endpoints !== undefined)
    report.error("spec", "only one of WorkloadSelector or Endpoints is allowed in Service Entry");
  workloadSelector(report, "spec.workloadSelector", spec.workloadSelector, "labels");
  const endpoints = objects(report, "spec.endpoints", spec.endpoints);
  switch (resolution) {
    case "NONE":
      if (endpoints.length > 0) report.error("spec.endpoints", "no endpoints should be provided for resolution type none");
      break;
    case "STATIC":
      for (const [ep, path] of endpoints) {
        const address = String(ep.address ?? "");
        if (!address.startsWith("unix://") && ip(address))
          report.error(at(path, "address"), `endpoint address ${address} is not a valid IP address`);
        if (isObj(ep.ports))
          for (const name of Object.keys(ep.ports))
            if (!names.has(name)) report.error(at(path, "ports"), `endpoint port ${name} is not defined by the service entry`);
      }
      break;
    case "DNS":
      if (endpoints.length === 0)
        for (const [host, path] of hosts)
          if (host.startsWith("*")) report.error(path, "hosts must be FQDN if no endpoints are provided for resolution mode DNS");
      break;
    case "DNS_ROUND_ROBIN":
      if (endpoints.length > 1)
        report.error("spec.endpoints", "there must only be 0 or 1 endpoint for resolution mode DNS_ROUND_ROBIN");
      break;
    default:
      report.error("spec.resolution", `unknown resolution "${resolution}"`);
  }
  if (resolution !== "NONE" && hosts.length > 1) {
    const nonHttp = ports.some(
      ([p]) => !["HTTP", "HTTPS", "HTTP2", "GRPC", "TLS", "GRPC-WEB"].includes(String(p.protocol ?? "").toUpperCase()),
    );
    if (nonHttp) report.error("spec", "multiple hosts provided with non-HTTP, non-TLS ports");
  }
  exportTo(report, "spec.exportTo", spec.exportTo, namespace, true);
}

export function validateSidecar(spec: Obj, report: Report): void {
  if (Object.keys(spec).length === 0) {
    report.error("spec", "sidecar: empty configuration provided");
    return;
  }
  workloadSelector(report, "spec.workloadSelector", spec.workloadSelector, "labels");
  const ingressPorts = new Set<number>();
  for (const [ingress, path] of objects(report, "spec.ingress", spec.ingress)) {
    if (!isObj(ingress.port)) report.error(at(path, "port"), "sidecar: port is required for ingress listeners");
    else {
      report.error(at(path, "port.number"), port(ingress.port.number));
      const n = Number(ingress.port.number);
      if (ingressPorts.has(n)) report.error(at(path, "port.number"), `sidecar: ports on IP bound listeners must be unique`);
      ingressPorts.add(n);
    }
    if (typeof ingress.defaultEndpoint === "string" && ingress.defaultEndpoint !== "") {
      const ok =
        /^(127\.0\.0\.1|0\.0\.0\.0|\[::1\]|\[::\]):\d+$/.test(ingress.defaultEndpoint) ||
        ingress.defaultEndpoint.startsWith("unix://");
      if (!ok)
        report.error(
          at(path, "defaultEndpoint"),
          "sidecar: defaultEndpoint must be of form 127.0.0.1:<port>, 0.0.0.0:<port>, [::1]:port, [::]:port, unix://filepath, or unset",
        );
    }
    if (isObj(ingress.tls)) {
      const tls = ingress.tls;
      if (tls.httpsRedirect) report.error(at(path, "tls"), "sidecar: httpsRedirect is not supported");
      if (tls.credentialName) report.error(at(path, "tls"), "sidecar: credentialName is not currently supported");
      if (Array.isArray(tls.subjectAltNames) && tls.subjectAltNames.length > 0)
        report.error(at(path, "tls"), "sidecar: subjectAltNames is not supported in ingress tls");
      if (tls.mode === "ISTIO_MUTUAL" || tls.mode === "AUTO_PASSTHROUGH")
        report.error(at(path, "tls.mode"), `configuration is invalid: cannot have mode ${tls.mode} for ingress listeners`);
    }
  }
  const egress = objects(report, "spec.egress", spec.egress);
  if (Array.isArray(spec.egress) && spec.egress.length === 0)
    report.error("spec.egress", "sidecar: egress must not be empty when set");
  egress.forEach(([listener, path], i) => {
    if (!isObj(listener.port) && i < egress.length - 1)
      report.error(path, "sidecar: the egress listener with empty port should be the last listener in the list");
    if (isObj(listener.port)) report.error(at(path, "port.number"), port(listener.port.number));
    const seen = new Set<string>();
    const hosts = strings(report, at(path, "hosts"), listener.hosts);
    if (hosts.length === 0) report.error(at(path, "hosts"), "sidecar: egress listener must contain at least one host");
    for (const [host, hpath] of hosts) {
      const slash = host.indexOf("/");
      if (slash <= 0) {
        report.error(hpath, "sidecar: host must be of form namespace/dnsName");
        continue;
      }
      const ns = host.slice(0, slash);
      const name = host.slice(slash + 1);
      if (ns !== "*" && ns !== "." && ns !== "~" && dnsLabel(ns.startsWith("~") ? ns.slice(1) : ns))
        report.error(hpath, `invalid namespace value "${ns}" in sidecar`);
      report.error(hpath, name === "*" ? undefined : wildcardDomain(name));
      if (seen.has(host)) report.warn(hpath, `duplicate host: ${host}`);
      seen.add(host);
    }
  });
  if (
    spec.outboundTrafficPolicy !== undefined &&
    isObj(spec.outboundTrafficPolicy) &&
    spec.outboundTrafficPolicy.egressProxy !== undefined &&
    spec.outboundTrafficPolicy.mode !== "ALLOW_ANY"
  ) {
    report.error(
      "spec.outboundTrafficPolicy",
      "sidecar: egress_proxy must be set only with ALLOW_ANY outbound_traffic_policy mode",
    );
  }
}

export function validateEnvoyFilter(spec: Obj, report: Report): void {
  report.warn(
    "",
    "EnvoyFilter exposes internal implementation details that may change at any time. Prefer other APIs if possible, and exercise extreme caution, especially around upgrades.",
  );
  workloadSelector(report, "spec.workloadSelector", spec.workloadSelector, "labels");
  for (const [patch, path] of objects(report, "spec.configPatches", spec.configPatches)) {
    if (!patch.applyTo) report.error(at(path, "applyTo"), "Envoy filter: missing applyTo");
    if (!isObj(patch.patch)) {
      report.error(at(path, "patch"), "Envoy filter: missing patch");
      continue;
    }
    const op = patch.patch.operation;
    if (!op || op === "INVALID") report.error(at(path, "patch.operation"), "Envoy filter: missing patch operation");
    if (op !== "REMOVE" && patch.patch.value === undefined)
      report.error(at(path, "patch.value"), "Envoy filter: missing patch value for non-remove operation");
    if (isObj(patch.match) && isObj(patch.match.proxy) && typeof patch.match.proxy.proxyVersion === "string") {
      try {
        new RegExp(patch.match.proxy.proxyVersion);
      } catch (err) {
        report.error(
          at(path, "match.proxy.proxyVersion"),
          `Envoy filter: invalid regex for proxy version, [${(err as Error).message}]`,
        );
      }
    }
    matchFitsApplyTo(patch, path, report);
    if (patch.patch.value !== undefined)
      checkPatchValue(String(patch.applyTo ?? ""), patch.patch.value, at(path, "patch.value"), report);
  }
}

const LISTENER_CLASS = ["LISTENER", "FILTER_CHAIN", "NETWORK_FILTER", "HTTP_FILTER"];
const ROUTE_CLASS = ["ROUTE_CONFIGURATION", "VIRTUAL_HOST", "HTTP_ROUTE"];
const HCM = ["envoy.filters.network.http_connection_manager", "envoy.http_connection_manager"];

/** The match must be of the kind of object applyTo names: listener, route configuration or cluster. */
function matchFitsApplyTo(patch: Obj, path: string, report: Report): void {
  const applyTo = String(patch.applyTo ?? "");
  const match = isObj(patch.match) ? patch.match : undefined;
  const typed = match && (match.listener !== undefined || match.routeConfiguration !== undefined || match.cluster !== undefined);
  if (!match || !typed) return;
  const mpath = at(path, "match");
  if (LISTENER_CLASS.includes(applyTo)) {
    if (!isObj(match.listener)) {
      report.error(mpath, "Envoy filter: applyTo for listener class objects cannot have non listener match");
      return;
    }
    const filter =
      isObj(match.listener.filterChain) && isObj(match.listener.filterChain.filter)
        ? match.listener.filterChain.filter
        : undefined;
    if (!filter) return;
    const fpath = at(mpath, "listener.filterChain.filter");
    if (applyTo === "LISTENER" || applyTo === "FILTER_CHAIN")
      report.warn(fpath, `Envoy filter: filter match has no effect when used with ${applyTo}`);
    if (!filter.name) report.error(fpath, "Envoy filter: filter match has no name to match on");
    else if (isObj(filter.subFilter)) {
      if (applyTo !== "HTTP_FILTER")
        report.error(at(fpath, "subFilter"), "Envoy filter: subfilter match can be used with applyTo HTTP_FILTER only");
      else if (!HCM.includes(String(filter.name)))
        report.error(at(fpath, "subFilter"), `Envoy filter: subfilter match requires filter match with ${HCM[0]}`);
      else if (!filter.subFilter.name)
        report.error(at(fpath, "subFilter"), "Envoy filter: subfilter match has no name to match on");
    }
  } else if (ROUTE_CLASS.includes(applyTo) && !isObj(match.routeConfiguration)) {
    report.error(mpath, "Envoy filter: applyTo for http route class objects cannot have non route configuration match");
  } else if (applyTo === "CLUSTER" && !isObj(match.cluster)) {
    report.error(mpath, "Envoy filter: applyTo for cluster class objects cannot have non cluster match");
  }
}

export function validateWasmPlugin(spec: Obj, report: Report): void {
  if (typeof spec.url !== "string" || spec.url === "") report.error("spec.url", "url field needs to be set");
  else {
    const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(spec.url)?.[1]?.toLowerCase() ?? "";
    if (!["", "file", "http", "https", "oci"].includes(scheme)) report.error("spec.url", `unsupported scheme: ${scheme}`);
  }
  if (typeof spec.sha256 === "string" && spec.sha256 !== "" && !/^[0-9a-fA-F]{64}$/.test(spec.sha256))
    report.error("spec.sha256", "sha256 field must be 64 characters long");
  workloadSelector(report, "spec.selector", spec.selector);
  if (isObj(spec.vmConfig)) {
    const names = new Set<string>();
    for (const [env, path] of objects(report, "spec.vmConfig.env", spec.vmConfig.env)) {
      const name = String(env.name ?? "");
      if (name === "") report.error(at(path, "name"), "spec.vmConfig.env invalid");
      if (names.has(name)) report.error(at(path, "name"), `duplicate env name ${name}`);
      names.add(name);
      if (env.valueFrom === "HOST" && env.value !== undefined)
        report.error(at(path, "value"), "value may only be set when valueFrom is INLINE");
    }
  }
  for (const [m, path] of objects(report, "spec.match", spec.match)) {
    for (const [p, ppath] of objects(report, at(path, "ports"), m.ports)) report.error(at(ppath, "number"), port(p.number));
  }
}

export function validateTelemetry(spec: Obj, report: Report): void {
  workloadSelector(report, "spec.selector", spec.selector);
  const tracing = objects(report, "spec.tracing", spec.tracing);
  if (tracing.length > 1) report.warn("spec.tracing", "multiple tracing is not currently supported");
  for (const [t, path] of tracing) {
    const providers = objects(report, at(path, "providers"), t.providers);
    if (providers.length > 1) report.warn(at(path, "providers"), "multiple providers is not currently supported");
    for (const [p, ppath] of providers) if (!p.name) report.error(at(ppath, "name"), "must specify a provider name");
    if (isObj(t.randomSamplingPercentage) || typeof t.randomSamplingPercentage === "number") {
      const value = Number(isObj(t.randomSamplingPercentage) ? t.randomSamplingPercentage.value : t.randomSamplingPercentage);
      if (value < 0 || value > 100)
        report.error(at(path, "randomSamplingPercentage"), "randomSamplingPercentage must be in range [0.0, 100.0]");
    }
    if (isObj(t.customTags)) {
      for (const [name, tag] of Object.entries(t.customTags))
        if (!isObj(tag) || Object.keys(tag).length === 0) report.error(at(at(path, "customTags"), name), "tag type required");
    }
  }
  for (const section of ["metrics", "accessLogging"]) {
    for (const [entry, path] of objects(report, at("spec", section), spec[section])) {
      for (const [p, ppath] of objects(report, at(path, "providers"), entry.providers))
        if (!p.name) report.error(at(ppath, "name"), "must specify a provider name");
      for (const [o, opath] of objects(report, at(path, "overrides"), entry.overrides)) {
        if (!isObj(o.tagOverrides)) continue;
        for (const [tag, override] of Object.entries(o.tagOverrides)) {
          if (!isObj(override)) continue;
          if (override.operation !== "REMOVE" && !override.value)
            report.error(at(at(opath, "tagOverrides"), tag), "must specify a value for UPSERT");
          if (override.operation === "REMOVE" && override.value)
            report.error(at(at(opath, "tagOverrides"), tag), "cannot specify a value for REMOVE");
        }
      }
    }
  }
}

export function validateWorkloadEntry(spec: Obj, report: Report): void {
  workloadEntry(spec, "spec", report, true);
}

function workloadEntry(entry: Obj, path: string, report: Report, addressRequired: boolean): void {
  const address = typeof entry.address === "string" ? entry.address : "";
  if (address === "" && addressRequired && !entry.network) report.error(at(path, "address"), "address must be set");
  else if (address && !address.startsWith("unix://") && ip(address) && wildcardDomain(address))
    report.error(at(path, "address"), `invalid address ${address}`);
  for (const message of labels(entry.labels)) report.error(at(path, "labels"), message);
  if (isObj(entry.ports)) for (const [name, p] of Object.entries(entry.ports)) report.error(at(at(path, "ports"), name), port(p));
}

export function validateWorkloadGroup(spec: Obj, report: Report): void {
  if (!isObj(spec.template)) {
    report.error("spec.template", "template is required");
    return;
  }
  workloadEntry(spec.template, "spec.template", report, false);
  if (isObj(spec.metadata)) for (const message of labels(spec.metadata.labels)) report.error("spec.metadata.labels", message);
}

export function validateProxyConfig(spec: Obj, report: Report): void {
  workloadSelector(report, "spec.selector", spec.selector);
  if (isObj(spec.concurrency) || typeof spec.concurrency === "number") {
    const value = Number(isObj(spec.concurrency) ? spec.concurrency.value : spec.concurrency);
    if (value < 0) report.error("spec.concurrency", "concurrency must be greater than or equal to 0");
  }
}
