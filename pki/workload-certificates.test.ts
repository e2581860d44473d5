import "reflect-metadata";
import { createPrivateKey, webcrypto, X509Certificate } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { describe, expect, test } from "vitest";
import {
  CsrError,
  createCertificateAuthority,
  createCertificateRequest,
  loadCertificateAuthority,
  resignCertificateAuthority,
  signCertificateRequest,
} from "./certificates.ts";

const csrFor = (uri: string) => createCertificateRequest(uri, "attacker");

describe("workload certificates from CSRs", () => {
  test("carry the identity they are given, never the one the CSR asks for", async () => {
    const ca = await createCertificateAuthority("mesh", 1);
    const pem = await signCertificateRequest(ca, {
      csrPem: await csrFor("spiffe://cluster.local/ns/istio-system/sa/istiod"),
      uris: ["spiffe://cluster.local/ns/app/sa/web"],
      validSeconds: 3600,
    });
    const cert = new X509Certificate(pem);
    expect(cert.subjectAltName).toBe("URI:spiffe://cluster.local/ns/app/sa/web");
    expect(cert.subject ?? "").toBe("");
    expect(cert.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true);
    expect((Date.parse(cert.validTo) - Date.now()) / 1000).toBeCloseTo(3600, -1);
    // The SAN extension is critical when the subject is empty (RFC 5280 4.2.1.6).
    const san = new x509.X509Certificate(pem).getExtension(x509.SubjectAlternativeNameExtension);
    expect(san?.critical).toBe(true);
  });

  test("a malformed or forged CSR is refused", async () => {
    const ca = await createCertificateAuthority("mesh", 1);
    const request = { uris: ["spiffe://cluster.local/ns/a/sa/b"], validSeconds: 60 };
    await expect(signCertificateRequest(ca, { ...request, csrPem: "not a csr" })).rejects.toBeInstanceOf(CsrError);
    const good = await csrFor("spiffe://x");
    const der = Buffer.from(good.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
    der[der.length - 5] = (der[der.length - 5] ?? 0) ^ 0xff; // corrupt the signature
    const forged = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`;
    await expect(signCertificateRequest(ca, { ...request, csrPem: forged })).rejects.toThrow(/signature|PKCS#10/);
  });

  test("RSA CAs sign too, and load from a PKCS#1 key file", async () => {
    const created = await createCertificateAuthority("mesh-rsa", 1, "RSA-2048");
    const pkcs1 = createPrivateKey(created.keyPem).export({ type: "pkcs1", format: "pem" }).toString();
    expect(pkcs1).toContain("BEGIN RSA PRIVATE KEY");
    const ca = await loadCertificateAuthority(created.certPem, pkcs1);
    expect(ca.algorithm).toBe("RSA-2048");
    const pem = await signCertificateRequest(ca, {
      csrPem: await csrFor("x"),
      uris: ["spiffe://td/ns/a/sa/b"],
      validSeconds: 60,
    });
    expect(new X509Certificate(pem).verify(new X509Certificate(created.certPem).publicKey)).toBe(true);
  });

  test("a re-signed root keeps its key: certificates signed before still verify against it", async () => {
    const ca = await createCertificateAuthority("mesh", 1);
    const leaf = await signCertificateRequest(ca, {
      csrPem: await csrFor("x"),
      uris: ["spiffe://td/ns/a/sa/b"],
      validSeconds: 60,
    });
    const renewed = await resignCertificateAuthority(ca, 3650);
    const renewedCert = new X509Certificate(renewed.certPem);
    expect(renewedCert.serialNumber).not.toBe(new X509Certificate(ca.certPem).serialNumber);
    expect(renewedCert.subject).toBe("CN=mesh");
    expect(renewed.keyPem).toBe(ca.keyPem);
    expect(new X509Certificate(leaf).verify(renewedCert.publicKey)).toBe(true);
    expect((Date.parse(renewedCert.validTo) - Date.now()) / 86_400_000).toBeGreaterThan(3600);
  });

  test("a key that is not ECDSA P-256 or RSA is refused with a clear error", async () => {
    const ca = await createCertificateAuthority("mesh", 1);
    const { privateKey } = await import("node:crypto").then((c) => c.generateKeyPairSync("ed25519"));
    await expect(
      loadCertificateAuthority(ca.certPem, privateKey.export({ type: "pkcs8", format: "pem" }).toString()),
    ).rejects.toThrow("ECDSA P-256 or RSA is supported");
  });
});

describe("the key policy and lifetimes", () => {
  const csrWith = async (algorithm: object, signing: object) => {
    const keys = (await webcrypto.subtle.generateKey(algorithm as never, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: "CN=x", keys, signingAlgorithm: signing });
    return csr.toString("pem");
  };
  const request = { uris: ["spiffe://cluster.local/ns/a/sa/b"], validSeconds: 3600 };

  test.each([
    [
      "ECDSA P-521",
      { name: "ECDSA", namedCurve: "P-521" },
      { name: "ECDSA", hash: "SHA-512" },
      "ECDSA keys must use P-256 or P-384, not secp521r1",
    ],
    [
      "RSA 1024",
      { name: "RSASSA-PKCS1-v1_5", modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
      { name: "RSASSA-PKCS1-v1_5" },
      "RSA keys must have 2048 to 8192 bits, not 1024",
    ],
    ["Ed25519", { name: "Ed25519" }, { name: "Ed25519" }, "key type ed25519 is not accepted"],
  ])("a %s key is refused, named", async (_, algorithm, signing, message) => {
    const ca = await createCertificateAuthority("mesh", 1);
    const csrPem = await csrWith(algorithm, signing);
    await expect(signCertificateRequest(ca, { ...request, csrPem })).rejects.toThrow(message);
  });

  test("ECDSA P-384 and RSA 3072 keys are accepted", async () => {
    const ca = await createCertificateAuthority("mesh", 1);
    for (const [algorithm, signing] of [
      [
        { name: "ECDSA", namedCurve: "P-384" },
        { name: "ECDSA", hash: "SHA-384" },
      ],
      [
        { name: "RSASSA-PKCS1-v1_5", modulusLength: 3072, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
        { name: "RSASSA-PKCS1-v1_5" },
      ],
    ] as [object, object][]) {
      const csrPem = await csrWith(algorithm, signing);
      expect(await signCertificateRequest(ca, { ...request, csrPem })).toContain("BEGIN CERTIFICATE");
    }
  });

  test("a certificate never outlives its signer", async () => {
    const ca = await createCertificateAuthority("mesh", 1); // the CA expires in a day
    const pem = await signCertificateRequest(ca, {
      ...request,
      validSeconds: 90 * 24 * 3600,
      csrPem: await csrFor("spiffe://x"),
    });
    expect(new X509Certificate(pem).validTo).toBe(new X509Certificate(ca.certPem).validTo);
  });
});
