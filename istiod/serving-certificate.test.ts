import { X509Certificate } from "node:crypto";
import { describe, expect, test } from "vitest";
import { createCertificateAuthority, loadCertificateAuthority } from "../pki/certificates.ts";
import { issueServingCertificate, servingDnsNames } from "./serving-certificate.ts";

describe("the control plane's serving certificate", () => {
  test("names the revision's Services and extra hosts; IPs go in IP SANs", () => {
    expect(servingDnsNames({ namespace: "istio-system", revision: "canary", extra: ["127.0.0.1", "istiod.example"] })).toEqual({
      dns: [
        "istiod.istio-system.svc",
        "istiod.istio-system.svc.cluster.local",
        "istiod-canary.istio-system.svc",
        "istiod-canary.istio-system.svc.cluster.local",
        "istiod.example",
      ],
      ips: ["127.0.0.1"],
    });
    expect(servingDnsNames({ namespace: "x", revision: "" }).dns).toEqual(["istiod.x.svc", "istiod.x.svc.cluster.local"]);
    // Revision tags pointing at the revision: their Services too.
    expect(servingDnsNames({ namespace: "x", revision: "b", tags: ["prod-stable"] }).dns).toContain(
      "istiod-revision-tag-prod-stable.x.svc",
    );
  });

  test("is signed by the CA as stored in istio-ca-secret and verifies against it", async () => {
    const created = await createCertificateAuthority("test-ca", 1);
    const ca = await loadCertificateAuthority(created.certPem, created.keyPem);
    const pair = await issueServingCertificate(ca, { namespace: "istio-system", revision: "canary", extra: ["127.0.0.1"] }, 1);
    const cert = new X509Certificate(pair.certPem);
    expect(cert.verify(new X509Certificate(created.certPem).publicKey)).toBe(true);
    expect(cert.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(cert.checkHost("istiod-canary.istio-system.svc")).toBe("istiod-canary.istio-system.svc");
  });
});
