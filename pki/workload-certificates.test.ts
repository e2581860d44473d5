import "reflect-metadata";
import { createPrivateKey, X509Certificate } from "node:crypto";
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
