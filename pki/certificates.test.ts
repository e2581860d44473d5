import { createPrivateKey, createPublicKey, sign, verify, X509Certificate } from "node:crypto";
import { describe, expect, test } from "vitest";
import { createCertificateAuthority, createSigningKeyPair, issueCertificate } from "./certificates.ts";

describe("createCertificateAuthority", () => {
  test("makes a self-signed CA certificate valid for the asked number of days", async () => {
    const ca = await createCertificateAuthority("test-ca", 10);
    const cert = new X509Certificate(ca.certPem);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toBe("CN=test-ca");
    expect(cert.checkIssued(cert)).toBe(true);
    expect(cert.verify(cert.publicKey)).toBe(true);
    const lifetimeDays = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 86_400_000;
    expect(lifetimeDays).toBeCloseTo(10, 0);
    expect(createPrivateKey(ca.keyPem).asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
  });
});

describe("issueCertificate", () => {
  test("signs a serving certificate with the requested SANs and usages", async () => {
    const ca = await createCertificateAuthority("test-ca", 1);
    const leaf = await issueCertificate(ca, {
      commonName: "webhook",
      dnsNames: ["istiod.istio-system.svc"],
      ipAddresses: ["127.0.0.1"],
      uris: ["spiffe://cluster.local/ns/istio-system/sa/istiod"],
      usages: ["server"],
      validDays: 1,
    });
    const cert = new X509Certificate(leaf.certPem);
    const caCert = new X509Certificate(ca.certPem);
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(cert.checkHost("istiod.istio-system.svc")).toBe("istiod.istio-system.svc");
    expect(cert.subjectAltName).toContain("URI:spiffe://cluster.local/ns/istio-system/sa/istiod");
    expect(cert.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1"]); // serverAuth only
    // The private key matches the certificate's public key.
    expect(createPublicKey(leaf.keyPem).export({ format: "pem", type: "spki" })).toBe(
      cert.publicKey.export({ format: "pem", type: "spki" }),
    );
  });

  test("puts organisations in the subject, as Kubernetes reads groups from O=", async () => {
    const ca = await createCertificateAuthority("test-ca", 1);
    const leaf = await issueCertificate(ca, {
      commonName: "admin",
      organizations: ["system:masters"],
      usages: ["client"],
      validDays: 1,
    });
    const cert = new X509Certificate(leaf.certPem);
    expect(cert.subject.split("\n")).toEqual(["O=system:masters", "CN=admin"]);
    expect(cert.keyUsage).toEqual(["1.3.6.1.5.5.7.3.2"]); // clientAuth only
    expect(cert.subjectAltName).toBeUndefined();
  });

  test("gives every certificate a distinct positive serial number", async () => {
    const ca = await createCertificateAuthority("test-ca", 1);
    const serials = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const leaf = await issueCertificate(ca, { commonName: `c${i}`, usages: ["client"], validDays: 1 });
      const serial = new X509Certificate(leaf.certPem).serialNumber;
      expect(serial).toMatch(/^[4-7][0-9A-F]{31}$/i); // 16 bytes, positive
      serials.add(serial);
    }
    expect(serials.size).toBe(20);
  });
});

describe("createSigningKeyPair", () => {
  test("returns a PEM key pair whose halves sign and verify together", async () => {
    const pair = await createSigningKeyPair();
    const data = Buffer.from("token");
    const signature = sign("sha256", data, createPrivateKey(pair.privateKeyPem));
    expect(verify("sha256", data, createPublicKey(pair.publicKeyPem), signature)).toBe(true);
    expect(pair.publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
  });
});
