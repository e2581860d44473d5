// A Gateway API listener's certificateRefs judged for its status, with upstream's reasons and words.
import { beforeAll, expect, test } from "vitest";
import { createCertificateAuthority, issueCertificate, type PemPair } from "../../pki/certificates.ts";
import type { KubeGateway, KubeListener, ReferenceGrant } from "./gateway-api.ts";
import { certificateProblem, listenerCertificateConditions } from "./gateway-api-certificates.ts";
import { type CredentialSecret, credentialOf } from "./gateway-secrets.ts";

let good: PemPair;
let other: PemPair;
beforeAll(async () => {
  const ca = await createCertificateAuthority("test-ca", 1);
  good = await issueCertificate(ca, { commonName: "shop", dnsNames: ["shop.example.com"], usages: ["server"], validDays: 1 });
  other = await issueCertificate(ca, { commonName: "other", usages: ["server"], validDays: 1 });
});

const b64 = (s: string) => Buffer.from(s).toString("base64");
const secret = (namespace: string, name: string, data: Record<string, string>): CredentialSecret =>
  credentialOf({ metadata: { namespace, name }, data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])) });
const https = (name: string, refs: { name: string; namespace?: string; kind?: string; group?: string }[]): KubeListener => ({
  name,
  port: 443,
  protocol: "HTTPS",
  tls: { mode: "Terminate", certificateRefs: refs.map((r) => ({ group: "", kind: "Secret", ...r })) },
});
const gateway = (listeners: KubeListener[]): KubeGateway => ({
  metadata: { name: "edge", namespace: "edge" },
  spec: { gatewayClassName: "istio", listeners },
});
const lookup = (secrets: CredentialSecret[]) => (key: string) => secrets.find((s) => `${s.namespace}/${s.name}` === key);

test("a listener with a readable certificate is ResolvedRefs and Programmed; HTTP, passthrough and ISTIO_MUTUAL listeners are not judged", () => {
  const gw = gateway([
    https("https", [{ name: "shop-cert" }]),
    { name: "http", port: 80, protocol: "HTTP" },
    { name: "tls", port: 8443, protocol: "TLS", tls: { mode: "Passthrough" } },
    { name: "mesh", port: 9443, protocol: "HTTPS", tls: { options: { "gateway.istio.io/tls-terminate-mode": "ISTIO_MUTUAL" } } },
  ]);
  const out = listenerCertificateConditions(
    gw,
    [],
    lookup([secret("edge", "shop-cert", { "tls.crt": good.certPem, "tls.key": good.keyPem })]),
  );
  expect([...out.keys()]).toEqual(["https"]);
  expect(out.get("https")).toEqual([
    { type: "ResolvedRefs", status: "True", reason: "ResolvedRefs", message: "No errors found" },
    { type: "Programmed", status: "True", reason: "Programmed", message: "No errors found" },
  ]);
});

test("a missing Secret, a wrong kind and an ungranted namespace get upstream's reasons and messages", () => {
  const gw = gateway([
    https("missing", [{ name: "nope" }]),
    https("kind", [{ name: "cm", kind: "ConfigMap" }]),
    https("foreign", [{ name: "shared", namespace: "certs" }]),
  ]);
  const out = listenerCertificateConditions(
    gw,
    [],
    lookup([secret("certs", "shared", { "tls.crt": good.certPem, "tls.key": good.keyPem })]),
  );
  expect(out.get("missing")).toEqual([
    {
      type: "ResolvedRefs",
      status: "False",
      reason: "InvalidCertificateRef",
      message: "invalid certificate reference /Secret/nope., secret edge/nope not found",
    },
    { type: "Programmed", status: "False", reason: "Invalid", message: "Bad TLS configuration" },
  ]);
  expect(out.get("kind")?.[0]).toMatchObject({
    reason: "InvalidCertificateRef",
    message: "invalid certificate reference /ConfigMap/cm., only secret is allowed",
  });
  expect(out.get("foreign")?.[0]).toMatchObject({
    status: "False",
    reason: "RefNotPermitted",
    message: 'certificateRef shared/certs not accessible to a Gateway in namespace "edge" (missing a ReferenceGrant?)',
  });
});

test("a ReferenceGrant from Gateways of the namespace makes another namespace's Secret usable; the grant is checked before the Secret is looked at", () => {
  const grant: ReferenceGrant = {
    metadata: { name: "edge-certs", namespace: "certs" },
    spec: {
      from: [{ group: "gateway.networking.k8s.io", kind: "Gateway", namespace: "edge" }],
      to: [{ group: "", kind: "Secret" }],
    },
  };
  const gw = gateway([https("foreign", [{ name: "shared", namespace: "certs" }])]);
  const secrets = lookup([secret("certs", "shared", { "tls.crt": good.certPem, "tls.key": good.keyPem })]);
  expect(listenerCertificateConditions(gw, [grant], secrets).get("foreign")?.[0]?.status).toBe("True");
  // Without the grant, a Secret that does not exist reads the same as one that does.
  const absent = listenerCertificateConditions(
    gateway([https("foreign", [{ name: "absent", namespace: "certs" }])]),
    [],
    secrets,
  );
  expect(absent.get("foreign")?.[0]?.reason).toBe("RefNotPermitted");
});

test("one usable reference of two is enough; none usable joins every message under the first reason; three is too many", () => {
  const secrets = lookup([secret("edge", "shop-cert", { "tls.crt": good.certPem, "tls.key": good.keyPem })]);
  const oneGood = listenerCertificateConditions(gateway([https("l", [{ name: "nope" }, { name: "shop-cert" }])]), [], secrets);
  expect(oneGood.get("l")?.[0]?.status).toBe("True");
  const bad = listenerCertificateConditions(
    gateway([https("l", [{ name: "nope" }, { name: "x", namespace: "other" }])]),
    [],
    secrets,
  );
  expect(bad.get("l")?.[0]).toMatchObject({
    reason: "InvalidCertificateRef",
    message:
      'invalid certificate reference /Secret/nope., secret edge/nope not found; certificateRef x/other not accessible to a Gateway in namespace "edge" (missing a ReferenceGrant?)',
  });
  const three = listenerCertificateConditions(
    gateway([https("l", [{ name: "shop-cert" }, { name: "shop-cert" }, { name: "shop-cert" }])]),
    [],
    secrets,
  );
  expect(three.get("l")?.[0]).toMatchObject({
    reason: "InvalidCertificateRef",
    message: "TLS mode can only support up to 2 server certificates",
  });
});

test("what a Secret that is not a certificate and key says (upstream's ExtractCertInfo and X509KeyPair messages)", () => {
  expect(certificateProblem(secret("edge", "s", { "tls.crt": good.certPem, "tls.key": good.keyPem }))).toBeUndefined();
  expect(certificateProblem(secret("edge", "s", { cert: good.certPem, key: good.keyPem }))).toBeUndefined();
  expect(certificateProblem(secret("edge", "s", { "tls.crt": "", "tls.key": "" }))).toBe(
    'found keys "tls.crt" and "tls.key", but they were empty',
  );
  expect(certificateProblem(secret("edge", "s", { a: "1", b: "2", c: "3", d: "4" }))).toBe(
    "found secret, but didn't have expected keys (cert and key) or (tls.crt and tls.key); found: a, b, c, and 1 more...",
  );
  expect(certificateProblem(secret("edge", "s", { "tls.crt": "hello", "tls.key": good.keyPem }))).toBe(
    "the certificate is malformed: tls: failed to find any PEM data in certificate input",
  );
  expect(certificateProblem(secret("edge", "s", { "tls.crt": good.certPem, "tls.key": other.keyPem }))).toBe(
    "the certificate is malformed: tls: private key does not match public key",
  );
});
