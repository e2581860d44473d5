// Building X.509 certificates: a self-signed CA and leaf certificates it signs.
// ECDSA P-256 throughout: signing is ~10x cheaper than RSA-2048 and every
// Kubernetes component and Envoy accepts it.
import "reflect-metadata"; // @peculiar/x509 uses tsyringe, which needs this polyfill loaded first
import { randomBytes, webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ECDSA_P256 = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
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

export async function createCertificateAuthority(commonName: string, validDays: number): Promise<CertificateAuthority> {
  const keys = await generateKeys();
  const notBefore = new Date(Date.now() - CLOCK_SKEW_MS);
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: distinguishedName(commonName, []),
    notBefore,
    notAfter: new Date(notBefore.getTime() + validDays * DAY_MS),
    keys,
    signingAlgorithm: ECDSA_P256,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    certificate,
    privateKey: keys.privateKey,
    certPem: certificate.toString("pem"),
    keyPem: await privateKeyPem(keys.privateKey),
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
    notAfter: new Date(notBefore.getTime() + request.validDays * DAY_MS),
    publicKey: keys.publicKey,
    signingKey: ca.privateKey,
    signingAlgorithm: ECDSA_P256,
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

async function generateKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ECDSA_P256, true, ["sign", "verify"])) as CryptoKeyPair;
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

/** A CA from its PEM certificate and PKCS#8 ECDSA P-256 key (as createCertificateAuthority writes them). */
export async function loadCertificateAuthority(certPem: string, keyPem: string): Promise<CertificateAuthority> {
  const certificate = new x509.X509Certificate(certPem);
  const der = Buffer.from(keyPem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
  const privateKey = await webcrypto.subtle.importKey("pkcs8", der, ECDSA_P256, true, ["sign"]);
  return { certificate, privateKey, certPem, keyPem };
}
