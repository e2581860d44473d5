// `make bench-signing`: how fast one process signs workload certificates from CSRs, without
// the network or TokenReview: rigger's signer (@peculiar/x509 on Node's native WebCrypto) with
// ECDSA P-256 and RSA 2048 CAs, against node-forge (pure JavaScript; RSA only) doing the same
// job. Sequential, single core. Prints a table; asserts nothing.
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import forge from "node-forge";
import { createCertificateAuthority, type KeyAlgorithm, signCertificateRequest } from "../pki/certificates.ts";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const EC = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };

async function csr(): Promise<string> {
  const keys = (await webcrypto.subtle.generateKey(EC, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  return (await x509.Pkcs10CertificateRequestGenerator.create({ name: "O=bench", keys, signingAlgorithm: EC })).toString("pem");
}

async function rate(sign: () => Promise<unknown> | unknown): Promise<number> {
  for (let i = 0; i < 20; i++) await sign(); // warm-up
  let n = 0;
  const end = performance.now() + SECONDS * 1000;
  const t0 = performance.now();
  while (performance.now() < end) {
    await sign();
    n++;
  }
  return n / ((performance.now() - t0) / 1000);
}

async function webcryptoRate(algorithm: KeyAlgorithm, csrPem: string): Promise<number> {
  const ca = await createCertificateAuthority(`bench ${algorithm}`, 1, algorithm);
  return rate(() => signCertificateRequest(ca, { csrPem, uris: ["spiffe://cluster.local/ns/a/sa/b"], validSeconds: 3600 }));
}

/** node-forge: parse and verify an RSA CSR, build the certificate, sign it with an RSA 2048 CA. */
function forgeRate(): Promise<number> {
  const caKeys = forge.pki.rsa.generateKeyPair(2048);
  const caCert = forge.pki.createCertificate();
  caCert.publicKey = caKeys.publicKey;
  caCert.serialNumber = "01";
  caCert.validity.notBefore = new Date();
  caCert.validity.notAfter = new Date(Date.now() + 86_400_000);
  caCert.setSubject([{ name: "commonName", value: "bench forge" }]);
  caCert.setIssuer(caCert.subject.attributes);
  caCert.setExtensions([{ name: "basicConstraints", cA: true }]);
  caCert.sign(caKeys.privateKey, forge.md.sha256.create());
  // forge cannot read ECDSA CSRs; an RSA one stands in.
  const workload = forge.pki.rsa.generateKeyPair(2048);
  const request = forge.pki.createCertificationRequest();
  request.publicKey = workload.publicKey;
  request.setSubject([{ name: "organizationName", value: "bench" }]);
  request.sign(workload.privateKey, forge.md.sha256.create());
  const csrPem = forge.pki.certificationRequestToPem(request);
  let serial = 2;
  return rate(() => {
    const parsed = forge.pki.certificationRequestFromPem(csrPem);
    if (!parsed.verify()) throw new Error("CSR does not verify");
    const cert = forge.pki.createCertificate();
    cert.publicKey = parsed.publicKey as forge.pki.rsa.PublicKey;
    cert.serialNumber = (serial++).toString(16).padStart(2, "0");
    cert.validity.notBefore = new Date();
    cert.validity.notAfter = new Date(Date.now() + 3_600_000);
    cert.setIssuer(caCert.subject.attributes);
    cert.setExtensions([
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
      { name: "extKeyUsage", serverAuth: true, clientAuth: true },
      { name: "subjectAltName", altNames: [{ type: 6, value: "spiffe://cluster.local/ns/a/sa/b" }] },
    ]);
    cert.sign(caKeys.privateKey, forge.md.sha256.create());
    return forge.pki.certificateToPem(cert);
  });
}

const csrPem = await csr();
const rows: [string, number][] = [
  ["rigger (WebCrypto), ECDSA P-256 CA", await webcryptoRate("ECDSA-P256", csrPem)],
  ["rigger (WebCrypto), RSA 2048 CA", await webcryptoRate("RSA-2048", csrPem)],
  ["rigger (WebCrypto), RSA 4096 CA", await webcryptoRate("RSA-4096", csrPem)],
  ["node-forge, RSA 2048 CA", await forgeRate()],
];
console.log(
  `\nWorkload certificates signed per second, one process, sequential, ${SECONDS}s each (CSR parsed and verified, certificate built and signed)`,
);
console.log("| signer | certificates/s |");
console.log("|---|---|");
for (const [name, value] of rows) console.log(`| ${name} | ${value.toFixed(0)} |`);
