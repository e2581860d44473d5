// Building X.509 certificates: a self-signed CA, leaf certificates it signs, and workload
// certificates from CSRs. ECDSA P-256 by default: signing is ~10x cheaper than RSA-2048 and
// every Kubernetes component and Envoy accepts it; RSA 2048/4096 CAs are available for meshes
// that require them. Signing runs on Node's native WebCrypto.
import "reflect-metadata"; // @peculiar/x509 uses tsyringe, which needs this polyfill loaded first
import { createPrivateKey, createPublicKey, type KeyObject, randomBytes, webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ECDSA_P256 = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

export type KeyAlgorithm = "ECDSA-P256" | "RSA-2048" | "RSA-4096";

/** WebCrypto parameters: generating (and importing) a key, and signing with it. */
function algorithmParams(algorithm: KeyAlgorithm): {
  generate: webcrypto.RsaHashedKeyGenParams | webcrypto.EcKeyGenParams;
  sign: object;
} {
  if (algorithm === "ECDSA-P256") return { generate: ECDSA_P256, sign: ECDSA_P256 };
  const rsa = {
    name: "RSASSA-PKCS1-v1_5",
    hash: "SHA-256",
    modulusLength: algorithm === "RSA-4096" ? 4096 : 2048,
    publicExponent: new Uint8Array([1, 0, 1]),
  };
  return { generate: rsa, sign: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } };
}
const CLOCK_SKEW_MS = 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

/** A certificate and its private key, both PEM. */
export interface PemPair {
  certPem: string;
  keyPem: string;
}

/** A CA that can sign further certificates. */
export interface CertificateAuthority extends PemPair {
  certificate: x509.X509Certificate;
  privateKey: CryptoKey;
  algorithm: KeyAlgorithm;
}

export type Usage = "server" | "client";

export interface LeafRequest {
  commonName: string;
  organizations?: string[];
  dnsNames?: string[];
  ipAddresses?: string[];
  uris?: string[];
  usages: Usage[];
  validDays: number;
}

export async function createCertificateAuthority(
  commonName: string,
  validDays: number,
  algorithm: KeyAlgorithm = "ECDSA-P256",
  organizations: string[] = [],
): Promise<CertificateAuthority> {
  const keys = await generateKeys(algorithm);
  return selfSigned(keys, distinguishedName(commonName, organizations), validDays, algorithm);
}

/** The same CA re-signed with its own key for a new validity period: chains it signed still verify. */
export async function resignCertificateAuthority(ca: CertificateAuthority, validDays: number): Promise<CertificateAuthority> {
  const publicKey = await ca.certificate.publicKey.export(algorithmParams(ca.algorithm).generate, ["verify"]);
  return selfSigned({ privateKey: ca.privateKey, publicKey }, ca.certificate.subject, validDays, ca.algorithm, ca.keyPem);
}

async function selfSigned(
  keys: CryptoKeyPair,
  name: x509.JsonName | string,
  validDays: number,
  algorithm: KeyAlgorithm,
  keyPem?: string,
): Promise<CertificateAuthority> {
  const notBefore = new Date(Date.now() - CLOCK_SKEW_MS);
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name,
    notBefore,
    notAfter: new Date(notBefore.getTime() + validDays * DAY_MS),
    keys,
    signingAlgorithm: algorithmParams(algorithm).sign,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    certificate,
    privateKey: keys.privateKey,
    algorithm,
    certPem: certificate.toString("pem"),
    keyPem: keyPem ?? (await privateKeyPem(keys.privateKey)),
  };
}

export async function issueCertificate(ca: CertificateAuthority, request: LeafRequest): Promise<PemPair> {
  const keys = await generateKeys();
  const notBefore = new Date(Date.now() - CLOCK_SKEW_MS);
  const altNames: x509.JsonGeneralName[] = [
    ...(request.dnsNames ?? []).map((value) => ({ type: "dns" as const, value })),
    ...(request.ipAddresses ?? []).map((value) => ({ type: "ip" as const, value })),
    ...(request.uris ?? []).map((value) => ({ type: "url" as const, value })),
  ];
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
    new x509.ExtendedKeyUsageExtension(request.usages.map(extendedKeyUsage), false),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(ca.certificate),
  ];
  if (altNames.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(altNames, false));
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: distinguishedName(request.commonName, request.organizations ?? []),
    issuer: ca.certificate.subject,
    notBefore,
    notAfter: new Date(Date.now() + request.validDays * DAY_MS),
    publicKey: keys.publicKey,
    signingKey: ca.privateKey,
    signingAlgorithm: algorithmParams(ca.algorithm).sign,
    extensions,
  });
  return { certPem: certificate.toString("pem"), keyPem: await privateKeyPem(keys.privateKey) };
}

/** A bare key pair (for example a service-account token signing key), both PEM. */
export async function createSigningKeyPair(): Promise<{ privateKeyPem: string; publicKeyPem: string }> {
  const keys = await generateKeys();
  const spki = await webcrypto.subtle.exportKey("spki", keys.publicKey);
  return { privateKeyPem: await privateKeyPem(keys.privateKey), publicKeyPem: pem("PUBLIC KEY", spki) };
}

async function generateKeys(algorithm: KeyAlgorithm = "ECDSA-P256"): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(algorithmParams(algorithm).generate, true, ["sign", "verify"])) as CryptoKeyPair;
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  return pem("PRIVATE KEY", await webcrypto.subtle.exportKey("pkcs8", key));
}

function pem(label: string, der: ArrayBuffer): string {
  const body = Buffer.from(der)
    .toString("base64")
    .replace(/(.{64})/g, "$1\n")
    .replace(/\n$/, "");
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

function distinguishedName(commonName: string, organizations: string[]): x509.JsonName {
  return [...organizations.map((o) => ({ O: [o] })), { CN: [commonName] }];
}

function extendedKeyUsage(usage: Usage): string {
  return usage === "server" ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth;
}

/**
 * 126 random bits. The first byte is kept in 0x40–0x7f: top bit clear so the DER
 * integer is positive, and non-zero so no encoder strips it (serials keep 16 bytes).
 */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x3f) | 0x40;
  return bytes.toString("hex");
}

/** A throwaway CA and a serving certificate for 127.0.0.1 and localhost signed by it. */
export async function loopbackServingCertificate(commonName: string, validDays = 1): Promise<PemPair & { caPem: string }> {
  const ca = await createCertificateAuthority(`${commonName}-ca`, validDays);
  const serving = await issueCertificate(ca, {
    commonName,
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1"],
    usages: ["server"],
    validDays,
  });
  return { ...serving, caPem: ca.certPem };
}

/**
 * A CA from its PEM certificate and private key, in any PEM form a CA file uses (PKCS#8,
 * PKCS#1 "RSA PRIVATE KEY", SEC1 "EC PRIVATE KEY"). ECDSA P-256 and RSA keys are supported.
 */
export async function loadCertificateAuthority(certPem: string, keyPem: string): Promise<CertificateAuthority> {
  const certificate = new x509.X509Certificate(certPem);
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    throw new Error("the CA private key is not a PEM private key");
  }
  let algorithm: KeyAlgorithm;
  if (key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1") algorithm = "ECDSA-P256";
  else if (key.asymmetricKeyType === "rsa")
    algorithm = (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 4096 ? "RSA-4096" : "RSA-2048";
  else
    throw new Error(
      `the CA private key is ${key.asymmetricKeyType} ${key.asymmetricKeyDetails?.namedCurve ?? ""}; ECDSA P-256 or RSA is supported`,
    );
  const der = key.export({ type: "pkcs8", format: "der" });
  const privateKey = await webcrypto.subtle.importKey("pkcs8", der, algorithmParams(algorithm).generate, true, ["sign"]);
  return { certificate, privateKey, algorithm, certPem, keyPem };
}

export class CsrError extends Error {}

/** The AuthorityKeyIdentifier of certificates `ca` signs: a hash of its key, computed once per CA. */
const authorityKeyIdentifiers = new WeakMap<CertificateAuthority, Promise<x509.AuthorityKeyIdentifierExtension>>();
function authorityKeyIdentifier(ca: CertificateAuthority): Promise<x509.AuthorityKeyIdentifierExtension> {
  let aki = authorityKeyIdentifiers.get(ca);
  if (!aki) {
    aki = x509.AuthorityKeyIdentifierExtension.create(ca.certificate);
    authorityKeyIdentifiers.set(ca, aki);
  }
  return aki;
}

export interface WorkloadCertificateRequest {
  csrPem: string;
  /** SAN URIs (the SPIFFE identity); whatever the CSR asks for is ignored. */
  uris: string[];
  validSeconds: number;
}

/**
 * Signs a workload certificate for the CSR's public key. Only the key is taken from the
 * CSR (after checking its signature); subject and SANs come from the caller, so a CSR cannot
 * ask for someone else's identity. Subject is empty, so the SAN extension is critical.
 */
/**
 * The key policy for workload certificates: ECDSA on P-256 or P-384, or RSA of 2048 to 8192
 * bits (what Istio's proxies generate is ECDSA P-256 or RSA 2048). A problem, or undefined.
 */
export function workloadKeyProblem(spki: ArrayBuffer): string | undefined {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" });
  } catch {
    return "the CSR's public key cannot be read";
  }
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === "ec") {
    if (details.namedCurve === "prime256v1" || details.namedCurve === "secp384r1") return undefined;
    return `ECDSA keys must use P-256 or P-384, not ${details.namedCurve ?? "an unnamed curve"}`;
  }
  if (key.asymmetricKeyType === "rsa") {
    const bits = details.modulusLength ?? 0;
    if (bits >= 2048 && bits <= 8192) return undefined;
    return `RSA keys must have 2048 to 8192 bits, not ${bits}`;
  }
  return `key type ${key.asymmetricKeyType ?? "unknown"} is not accepted: use ECDSA (P-256, P-384) or RSA (2048 bits or more)`;
}

export async function signCertificateRequest(ca: CertificateAuthority, request: WorkloadCertificateRequest): Promise<string> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(request.csrPem);
  } catch {
    throw new CsrError("the CSR is not a PEM-encoded PKCS#10 certificate request");
  }
  // The key is checked before the signature: verifying costs grow with the key, and this bounds it.
  const keyProblem = workloadKeyProblem(csr.publicKey.rawData);
  if (keyProblem) throw new CsrError(keyProblem);
  if (!(await csr.verify().catch(() => false))) throw new CsrError("the CSR's signature does not verify");
  const notBefore = new Date(Date.now() - 60_000);
  // Never past the signer's own expiry: a chain is only as valid as its shortest link.
  const notAfter = new Date(Math.min(Date.now() + request.validSeconds * 1000, ca.certificate.notAfter.getTime()));
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: [],
    issuer: ca.certificate.subject,
    notBefore,
    notAfter,
    publicKey: csr.publicKey,
    signingKey: ca.privateKey,
    signingAlgorithm: algorithmParams(ca.algorithm).sign,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
      await authorityKeyIdentifier(ca),
      new x509.SubjectAlternativeNameExtension(
        request.uris.map((value) => ({ type: "url" as const, value })),
        true,
      ),
    ],
  });
  return certificate.toString("pem");
}

/** An intermediate CA signed by `parent` (for plugged-in CA setups and their tests). */
export async function signIntermediate(
  parent: CertificateAuthority,
  commonName: string,
  validDays: number,
): Promise<CertificateAuthority> {
  const keys = await generateKeys(parent.algorithm);
  const notBefore = new Date(Date.now() - CLOCK_SKEW_MS);
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: distinguishedName(commonName, []),
    issuer: parent.certificate.subject,
    notBefore,
    notAfter: new Date(notBefore.getTime() + validDays * DAY_MS),
    publicKey: keys.publicKey,
    signingKey: parent.privateKey,
    signingAlgorithm: algorithmParams(parent.algorithm).sign,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(parent.certificate),
    ],
  });
  return {
    certificate,
    privateKey: keys.privateKey,
    algorithm: parent.algorithm,
    certPem: certificate.toString("pem"),
    keyPem: await privateKeyPem(keys.privateKey),
  };
}

/** A PEM CSR for a fresh ECDSA P-256 key asking for SAN URI `uri` (what a workload's agent sends; tests and benchmarks). */
export async function createCertificateRequest(uri: string, organization = "rigger"): Promise<string> {
  const keys = await generateKeys();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [{ O: [organization] }],
    keys,
    signingAlgorithm: ECDSA_P256,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: "url", value: uri }])],
  });
  return csr.toString("pem");
}
