import { describe, expect, test } from "vitest";
import { AuthenticationError, certificateCaller } from "./authenticate.ts";

describe("certificateCaller", () => {
  const verified = (subjectaltname: string) => ({ transportSecurityType: "ssl", sslPeerCertificate: { subjectaltname } });

  test("a verified certificate's SPIFFE URI of the trust domain names the caller", () => {
    expect(certificateCaller(verified("URI:spiffe://cluster.local/ns/shop/sa/web"), "cluster.local")).toEqual({
      namespace: "shop",
      serviceAccount: "web",
    });
    expect(
      certificateCaller(
        verified("DNS:web.shop, URI:spiffe://other/ns/a/sa/b, URI:spiffe://cluster.local/ns/shop/sa/web"),
        "cluster.local",
      ),
    ).toEqual({ namespace: "shop", serviceAccount: "web" });
  });

  test("no TLS, or no verified certificate: no caller (a token may still say who it is)", () => {
    expect(certificateCaller({}, "cluster.local")).toBeUndefined();
    expect(certificateCaller(null, "cluster.local")).toBeUndefined();
    expect(certificateCaller({ transportSecurityType: "ssl" }, "cluster.local")).toBeUndefined();
  });

  test("a verified certificate naming no workload of this trust domain is refused", () => {
    for (const sans of [
      "URI:spiffe://example.org/ns/shop/sa/web",
      "DNS:istiod.istio-system.svc",
      "URI:spiffe://cluster.local/ns/shop",
    ]) {
      expect(() => certificateCaller(verified(sans), "cluster.local"), sans).toThrow(AuthenticationError);
    }
  });
});
