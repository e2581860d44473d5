// DestinationRule rules (networking.istio.io): host, subsets, traffic policy.
import { dnsLabel, duration, labels, port, wildcardDomain } from "../fields.ts";
import { at, isObj, type Obj, objects, type Report } from "../report.ts";
import { exportTo, workloadSelector } from "./common.ts";

export function validateDestinationRule(spec: Obj, report: Report, namespace: string): void {
  if (typeof spec.host !== "string" || spec.host === "") report.error("spec.host", "empty domain name not allowed");
  else report.error("spec.host", wildcardDomain(spec.host));
  exportTo(report, "spec.exportTo", spec.exportTo, namespace, false);
  workloadSelector(report, "spec.workloadSelector", spec.workloadSelector);
  const exportsBeyond = Array.isArray(spec.exportTo) && spec.exportTo.some((e) => e !== "." && e !== namespace);
  if (spec.workloadSelector !== undefined && exportsBeyond) {
    report.error("spec.exportTo", "destination rule with workload selector cannot have exportTo beyond current namespace");
  }
  if (spec.trafficPolicy !== undefined) trafficPolicy(spec.trafficPolicy, "spec.trafficPolicy", report);
  const names = new Set<string>();
  for (const [subset, path] of objects(report, "spec.subsets", spec.subsets)) {
    const name = typeof subset.name === "string" ? subset.name : "";
    if (name === "") report.error(at(path, "name"), "subset name is required");
    else if (dnsLabel(name)) report.error(at(path, "name"), `subset name is invalid: ${name}`);
    if (names.has(name)) report.error(at(path, "name"), `duplicate subset names: ${name}`);
    names.add(name);
    for (const message of labels(subset.labels)) report.error(at(path, "labels"), message);
    if (subset.trafficPolicy !== undefined) trafficPolicy(subset.trafficPolicy, at(path, "trafficPolicy"), report);
  }
}

function trafficPolicy(policy: unknown, path: string, report: Report): void {
  if (!isObj(policy)) return;
  const fields = [
    "loadBalancer",
    "connectionPool",
    "outlierDetection",
    "tls",
    "portLevelSettings",
    "tunnel",
    "proxyProtocol",
    "retryBudget",
  ];
  if (!fields.some((f) => policy[f] !== undefined && policy[f] !== null)) {
    report.error(path, "traffic policy must have at least one field");
    return;
  }
  if (policy.tunnel !== undefined && policy.proxyProtocol !== undefined)
    report.error(path, "tunnel and proxyProtocol must not be set together");
  if (policy.loadBalancer !== undefined)
    loadBalancer(policy.loadBalancer, at(path, "loadBalancer"), report, policy.outlierDetection !== undefined);
  if (policy.connectionPool !== undefined) connectionPool(policy.connectionPool, at(path, "connectionPool"), report);
  if (policy.outlierDetection !== undefined) outlierDetection(policy.outlierDetection, at(path, "outlierDetection"), report);
  if (policy.tls !== undefined) clientTls(policy.tls, at(path, "tls"), report);
  for (const [setting, spath] of objects(report, at(path, "portLevelSettings"), policy.portLevelSettings)) {
    if (!isObj(setting.port)) report.error(at(spath, "port"), "port must be specified");
    else report.error(at(spath, "port.number"), port(setting.port.number));
    if (setting.loadBalancer !== undefined)
      loadBalancer(setting.loadBalancer, at(spath, "loadBalancer"), report, setting.outlierDetection !== undefined);
    if (setting.connectionPool !== undefined) connectionPool(setting.connectionPool, at(spath, "connectionPool"), report);
    if (setting.outlierDetection !== undefined) outlierDetection(setting.outlierDetection, at(spath, "outlierDetection"), report);
    if (setting.tls !== undefined) clientTls(setting.tls, at(spath, "tls"), report);
  }
}

function loadBalancer(lb: unknown, path: string, report: Report, hasOutlierDetection: boolean): void {
  if (!isObj(lb)) return;
  const hash = lb.consistentHash;
  if (isObj(hash)) {
    if (isObj(hash.httpCookie) && !hash.httpCookie.name)
      report.error(at(path, "consistentHash.httpCookie"), "name required for HttpCookie");
    if (isObj(hash.httpCookie) && hash.httpCookie.ttl !== undefined && hash.httpCookie.ttl !== "0s")
      report.error(at(path, "consistentHash.httpCookie.ttl"), duration(hash.httpCookie.ttl));
    if (hash.minimumRingSize !== undefined)
      report.warn(
        at(path, "consistentHash.minimumRingSize"),
        "consistent hash MinimumRingSize is deprecated, use ConsistentHashLB's RingHash configuration instead",
      );
    if (isObj(hash.maglev) && hash.maglev.tableSize !== undefined) {
      const size = Number(hash.maglev.tableSize);
      if (!isPrime(size) || size >= 5000011)
        report.error(at(path, "consistentHash.maglev.tableSize"), "table size must be a prime number less than 5000011");
    }
  }
  if (lb.localityLbSetting !== undefined && lb.zoneAwareLbSetting !== undefined)
    report.error(path, "only one of localityLbSetting and zoneAwareLbSetting can be set");
  const locality = lb.localityLbSetting;
  if (isObj(locality)) {
    const lpath = at(path, "localityLbSetting");
    const distribute = objects(report, at(lpath, "distribute"), locality.distribute);
    const failover = objects(report, at(lpath, "failover"), locality.failover);
    if (distribute.length > 0 && failover.length > 0)
      report.error(lpath, "can not simultaneously set 'distribute' and 'failover'");
    for (const [d, dpath] of distribute) {
      if (!isObj(d.to)) continue;
      let total = 0;
      for (const [zone, weight] of Object.entries(d.to)) {
        const w = Number(weight);
        if (w < 1 || w > 100) report.error(at(at(dpath, "to"), zone), `locality weight must be in range [1, 100]`);
        total += w;
      }
      if (total !== 100) report.error(at(dpath, "to"), `total locality weight ${total} != 100`);
    }
    for (const [f, fpath] of failover) {
      if (f.from === f.to) report.error(fpath, "locality lb failover settings must specify different regions");
      for (const side of ["from", "to"]) {
        const value = String(f[side] ?? "");
        if (value.includes("/") || value.includes("*")) report.error(at(fpath, side), "locality lb failover only specify region");
      }
    }
    if (failover.length > 0 && !hasOutlierDetection) report.warn(lpath, "outlier detection policy must be provided for failover");
  }
  if (isObj(lb.warmup)) {
    const warm = lb.warmup;
    if (warm.duration === undefined) report.error(at(path, "warmup.duration"), "duration is required");
    else report.error(at(path, "warmup.duration"), duration(warm.duration));
    if (isObj(warm.minimumPercent) && Number(warm.minimumPercent.value) > 100)
      report.error(at(path, "warmup.minimumPercent"), "minimumPercent must be between 0 and 100");
    if (isObj(warm.aggression) && Number(warm.aggression.value) <= 0)
      report.error(at(path, "warmup.aggression"), "aggression must be greater than 0");
  }
}

function connectionPool(pool: unknown, path: string, report: Report): void {
  if (!isObj(pool)) return;
  if (pool.tcp === undefined && pool.http === undefined) {
    report.error(path, "connection pool must have at least one field");
    return;
  }
  const counts: [Obj | undefined, string, string[]][] = [
    [isObj(pool.tcp) ? pool.tcp : undefined, "tcp", ["maxConnections"]],
    [
      isObj(pool.http) ? pool.http : undefined,
      "http",
      ["http1MaxPendingRequests", "http2MaxRequests", "maxRequestsPerConnection", "maxRetries", "maxConcurrentStreams"],
    ],
  ];
  for (const [obj, side, fields] of counts) {
    if (!obj) continue;
    for (const field of fields) {
      if (typeof obj[field] === "number" && (obj[field] as number) < 0)
        report.error(at(at(path, side), field), `${field} must be non-negative`);
    }
  }
  if (isObj(pool.tcp)) {
    const tcp = pool.tcp;
    if (tcp.connectTimeout !== undefined) report.error(at(path, "tcp.connectTimeout"), duration(tcp.connectTimeout));
    if (tcp.maxConnectionDuration !== undefined)
      report.error(at(path, "tcp.maxConnectionDuration"), duration(tcp.maxConnectionDuration));
    if (tcp.idleTimeout !== undefined && tcp.idleTimeout !== "0s")
      report.error(at(path, "tcp.idleTimeout"), duration(tcp.idleTimeout));
    if (isObj(tcp.tcpKeepalive)) {
      for (const f of ["time", "interval"])
        if (tcp.tcpKeepalive[f] !== undefined) report.error(at(path, `tcp.tcpKeepalive.${f}`), duration(tcp.tcpKeepalive[f]));
    }
  }
  if (isObj(pool.http)) {
    const http = pool.http;
    // Unlike tcp.idleTimeout, an http idle timeout of 0s is refused.
    if (http.idleTimeout !== undefined) report.error(at(path, "http.idleTimeout"), duration(http.idleTimeout));
    if (http.useClientProtocol === true && http.h2UpgradePolicy === "UPGRADE")
      report.error(at(path, "http"), "use client protocol must not be true when h2UpgradePolicy is UPGRADE");
  }
}

function outlierDetection(od: unknown, path: string, report: Report): void {
  if (!isObj(od)) return;
  if (od.consecutiveErrors !== undefined)
    report.warn(
      at(path, "consecutiveErrors"),
      "outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors or consecutive5xxErrors instead",
    );
  for (const f of ["interval", "baseEjectionTime"]) if (od[f] !== undefined) report.error(at(path, f), duration(od[f]));
  for (const f of ["maxEjectionPercent", "minHealthPercent"]) {
    if (typeof od[f] === "number" && ((od[f] as number) < 0 || (od[f] as number) > 100))
      report.error(at(path, f), `${f} must be in range [0, 100]`);
  }
  if (od.consecutiveLocalOriginFailures !== undefined && od.splitExternalLocalOriginErrors !== true) {
    report.error(
      at(path, "consecutiveLocalOriginFailures"),
      "consecutive local origin errors is set but split local origin errors is not set",
    );
  }
}

function clientTls(tls: unknown, path: string, report: Report): void {
  if (!isObj(tls)) return;
  const inline = ["clientCertificate", "privateKey", "caCertificates"].filter((f) => tls[f]);
  if (tls.credentialName && inline.length > 0)
    report.error(path, "cannot specify client certificates or CA certificate when credentialName is set");
  if (tls.mode === "MUTUAL" && !tls.credentialName) {
    if (!tls.clientCertificate) report.error(at(path, "clientCertificate"), "client certificate required for mutual tls");
    if (!tls.privateKey) report.error(at(path, "privateKey"), "private key required for mutual tls");
  }
  if (tls.insecureSkipVerify === true) {
    if (tls.caCertificates) report.error(path, "cannot specify CaCertificates when InsecureSkipVerify is set true");
    if (tls.credentialName) report.error(path, "cannot specify CredentialName when InsecureSkipVerify is set true");
    if (Array.isArray(tls.subjectAltNames) && tls.subjectAltNames.length > 0)
      report.error(path, "cannot specify SubjectAltNames when InsecureSkipVerify is set true");
  }
}

function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  for (let i = 2; i * i <= n; i++) if (n % i === 0) return false;
  return true;
}
