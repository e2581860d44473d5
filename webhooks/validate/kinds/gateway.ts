// Gateway rules (networking.istio.io): servers, hosts, ports, TLS.
import { dnsLabel, ip, labels, PROTOCOLS, port, strictWildcardDomain } from "../fields.ts";
import { at, isObj, type Obj, objects, type Report, strings } from "../report.ts";

export function validateGateway(spec: Obj, report: Report, name: string): void {
  if (name.includes(".")) report.error("metadata.name", `invalid gateway name: "${name}"`);
  const servers = objects(report, "spec.servers", spec.servers);
  if (servers.length === 0) report.error("spec.servers", "gateway must have at least one server");
  for (const message of labels(spec.selector)) report.error("spec.selector", message);
  const portNames = new Set<string>();
  for (const [server, path] of servers) {
    const hosts = strings(report, at(path, "hosts"), server.hosts);
    if (hosts.length === 0) report.error(at(path, "hosts"), "server config must contain at least one host");
    for (const [host, hpath] of hosts) gatewayHost(host, hpath, report);
    const p = server.port;
    let protocol = "";
    if (!isObj(p)) report.error(at(path, "port"), "port is required");
    else {
      protocol = String(p.protocol ?? "").toUpperCase();
      if (!PROTOCOLS.has(protocol) && protocol !== "HTTP_PROXY")
        report.error(at(path, "port.protocol"), `invalid protocol "${String(p.protocol ?? "")}"`);
      const unix = typeof server.bind === "string" && server.bind.startsWith("unix://");
      if (!(unix && p.number === 0)) report.error(at(path, "port.number"), port(p.number));
      if (typeof p.name !== "string" || p.name === "") report.error(at(path, "port.name"), "port name must be set");
      else {
        if (portNames.has(p.name))
          report.error(at(path, "port.name"), `port names in servers must be unique: duplicate name ${p.name}`);
        portNames.add(p.name);
      }
      if (p.targetPort !== undefined) report.error(at(path, "port.targetPort"), "targetPort has no impact on Gateways");
    }
    serverTls(server.tls, at(path, "tls"), protocol, report);
  }
}

function gatewayHost(value: string, path: string, report: Report): void {
  const slash = value.indexOf("/");
  const ns = slash >= 0 ? value.slice(0, slash) : "";
  const host = slash >= 0 ? value.slice(slash + 1) : value;
  if (slash >= 0 && ns !== "*" && ns !== "." && dnsLabel(ns)) report.error(path, `invalid namespace value "${ns}" in gateway`);
  if (ip(host) === undefined) return;
  if (host !== "*" && !host.startsWith("*") && !host.includes(".")) {
    report.error(path, "short names (non FQDN) are not allowed");
    return;
  }
  report.error(path, strictWildcardDomain(host));
}

function serverTls(tls: unknown, path: string, protocol: string, report: Report): void {
  const secure = protocol === "HTTPS" || protocol === "TLS";
  if (!isObj(tls)) {
    if (secure) report.error(path, "server must have TLS settings for HTTPS/TLS protocols");
    return;
  }
  const onlyRedirect = Object.keys(tls).every((k) => k === "httpsRedirect");
  if (protocol === "HTTP" && !onlyRedirect) report.error(path, "server cannot have TLS settings for plain text HTTP ports");
  else if (!secure && protocol !== "HTTP" && protocol !== "" && !onlyRedirect)
    report.error(path, "server cannot have TLS settings for non HTTPS/TLS ports");
  if (tls.httpsRedirect === true && protocol !== "HTTP" && protocol !== "")
    report.warn(at(path, "httpsRedirect"), "tls.httpsRedirect should only be used with http servers");
  if (!secure) return;
  cipherWarnings(tls, path, report);
  const mode = String(tls.mode ?? "PASSTHROUGH");
  const hasCredential = Boolean(tls.credentialName) || (Array.isArray(tls.credentialNames) && tls.credentialNames.length > 0);
  const inline = Boolean(tls.serverCertificate) || Boolean(tls.privateKey);
  const sources = [
    Boolean(tls.credentialName),
    Array.isArray(tls.credentialNames) && tls.credentialNames.length > 0,
    inline,
    Array.isArray(tls.tlsCertificates) && tls.tlsCertificates.length > 0,
  ];
  if (sources.filter(Boolean).length > 1)
    report.error(
      path,
      "only one of credential_name, credential_names, server_certificate/private_key, tls_certificates should be specified",
    );
  switch (mode) {
    case "SIMPLE":
      if (!hasCredential && !(Array.isArray(tls.tlsCertificates) && tls.tlsCertificates.length > 0)) {
        if (!tls.serverCertificate) report.error(at(path, "serverCertificate"), "SIMPLE TLS requires a server certificate");
        if (!tls.privateKey) report.error(at(path, "privateKey"), "SIMPLE TLS requires a private key");
      }
      if (tls.caCrl) report.error(at(path, "caCrl"), "CRL is not supported with SIMPLE TLS");
      break;
    case "MUTUAL":
    case "OPTIONAL_MUTUAL":
      if (!hasCredential && !(Array.isArray(tls.tlsCertificates) && tls.tlsCertificates.length > 0)) {
        if (!tls.serverCertificate) report.error(at(path, "serverCertificate"), "MUTUAL TLS requires a server certificate");
        if (!tls.privateKey) report.error(at(path, "privateKey"), "MUTUAL TLS requires a private key");
        if (!tls.caCertificates) report.error(at(path, "caCertificates"), "MUTUAL TLS requires a client CA bundle");
      }
      if (hasCredential && tls.caCrl) report.error(at(path, "caCrl"), "CRL is not supported with credentialName");
      break;
    case "ISTIO_MUTUAL":
      if (tls.privateKey) report.error(at(path, "privateKey"), "ISTIO_MUTUAL TLS cannot have associated private key");
      if (tls.serverCertificate)
        report.error(at(path, "serverCertificate"), "ISTIO_MUTUAL TLS cannot have associated server certificate");
      if (tls.caCertificates) report.error(at(path, "caCertificates"), "ISTIO_MUTUAL TLS cannot have associated CA bundle");
      if (tls.credentialName) report.error(at(path, "credentialName"), "ISTIO_MUTUAL TLS cannot have associated credentialName");
      break;
    case "PASSTHROUGH":
    case "AUTO_PASSTHROUGH":
      if (inline || hasCredential) report.warn(path, `${mode} mode does not use certificates, they will be ignored`);
      break;
    default:
      report.error(at(path, "mode"), `unknown TLS mode "${mode}"`);
  }
}

// Cipher suite names the proxy (BoringSSL) accepts.
const CIPHERS = new Set([
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-CHACHA20-POLY1305",
  "ECDHE-ECDSA-AES128-SHA",
  "ECDHE-RSA-AES128-SHA",
  "ECDHE-ECDSA-AES256-SHA",
  "ECDHE-RSA-AES256-SHA",
  "AES128-GCM-SHA256",
  "AES256-GCM-SHA384",
  "AES128-SHA",
  "AES256-SHA",
  "DES-CBC3-SHA",
]);

function cipherWarnings(tls: Obj, path: string, report: Report): void {
  const ciphers = Array.isArray(tls.cipherSuites) ? tls.cipherSuites.map(String) : [];
  const below12 = tls.minProtocolVersion === "TLSV1_0" || tls.minProtocolVersion === "TLSV1_1";
  if (below12 && ciphers.length === 0) {
    report.warn(
      at(path, "minProtocolVersion"),
      "TLS version below TLSV1_2 require setting compatible ciphers as by default they no longer include compatible ciphers.",
    );
  }
  const invalid = ciphers.filter((c) => !CIPHERS.has(c));
  if (invalid.length > 0) report.warn(at(path, "cipherSuites"), `ignoring invalid cipher suites: [${invalid.join(" ")}]`);
  const duplicates = [...new Set(ciphers.filter((c, i) => ciphers.indexOf(c) !== i))];
  if (duplicates.length > 0) report.warn(at(path, "cipherSuites"), `ignoring duplicate cipher suites: [${duplicates.join(" ")}]`);
}
