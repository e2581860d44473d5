// Which credentialName Secrets a gateway pod is sent, and what a server without its certificate
// gets (no filter chain), beyond what the parity scenario can show (upstream's fake has no SDS).
import { expect, test } from "vitest";
import { parseNode } from "../proxy.ts";
import { buildRegistry } from "../registry/registry.ts";
import { DEFAULT_MESH, type PushContext } from "./context.ts";
import { gatewayListeners, type IstioGateway } from "./gateway.ts";
import { credentialProblems, credentialSecret, credentialsOf, referencedSecrets } from "./gateway-secrets.ts";

const proxy = parseNode({
  id: "router~10.0.0.9~ingress-1.istio-ingress~istio-ingress.svc.cluster.local",
  metadata: { NAMESPACE: "istio-ingress", LABELS: { istio: "ingressgateway" } },
});
const b64 = (s: string) => Buffer.from(s).toString("base64");
const https = (name: string, host: string, tls: object) => ({
  port: { number: 443, name, protocol: "HTTPS" },
  hosts: [host],
  tls,
});
const gateway = (name: string, namespace: string, servers: object[]): IstioGateway => ({
  metadata: { name, namespace, creationTimestamp: "2026-01-01T00:00:00Z" },
  spec: { selector: { istio: "ingressgateway" }, servers: servers as NonNullable<IstioGateway["spec"]>["servers"] },
});
const push: PushContext = {
  version: 1,
  mesh: DEFAULT_MESH,
  peerAuthentications: [],
  registry: buildRegistry({ services: [], endpointSlices: [], pods: [] }),
  gateways: [
    gateway("edge", "istio-ingress", [
      https("https-shop", "shop.example.com", { mode: "SIMPLE", credentialName: "shop-cert" }),
      https("https-secure", "secure.example.com", { mode: "MUTUAL", credentialName: "secure-cert" }),
      https("https-missing", "missing.example.com", { mode: "SIMPLE", credentialName: "missing-cert" }),
    ]),
    // Another namespace's Gateway naming a Secret of the gateway's namespace: not served.
    gateway("foreign", "shop", [
      https("https-foreign", "foreign.example.com", { mode: "SIMPLE", credentialName: "foreign-cert" }),
    ]),
  ],
  credentials: credentialsOf([
    { metadata: { name: "shop-cert", namespace: "istio-ingress" }, data: { "tls.crt": b64("CERT"), "tls.key": b64("KEY") } },
    { metadata: { name: "foreign-cert", namespace: "istio-ingress" }, data: { "tls.crt": b64("CERT3"), "tls.key": b64("KEY3") } },
    {
      metadata: { name: "secure-cert", namespace: "istio-ingress" },
      data: { "tls.crt": b64("CERT2"), "tls.key": b64("KEY2"), "ca.crt": b64("CA2"), "other-key": b64("never kept") },
    },
  ]),
};

test("a gateway is sent the certificates its own namespace's Gateways name, from Secrets of that namespace", () => {
  const shop = credentialSecret(push, proxy, "kubernetes://shop-cert");
  expect(typeof shop).toBe("object");
  expect(
    Buffer.from(
      (shop as { tlsCertificate: { certificateChain: { inlineBytes: Uint8Array } } }).tlsCertificate.certificateChain.inlineBytes,
    ).toString(),
  ).toBe("CERT");
  const ca = credentialSecret(push, proxy, "kubernetes://secure-cert-cacert");
  expect(
    Buffer.from(
      (ca as { validationContext: { trustedCa: { inlineBytes: Uint8Array } } }).validationContext.trustedCa.inlineBytes,
    ).toString(),
  ).toBe("CA2");
  // A SIMPLE server's Secret has no CA resource; nothing unnamed is served; no other namespace's.
  expect(credentialSecret(push, proxy, "kubernetes://shop-cert-cacert")).toMatch(/no Gateway in istio-ingress names it/);
  expect(credentialSecret(push, proxy, "kubernetes://unnamed")).toMatch(/no Gateway in istio-ingress names it/);
  expect(credentialSecret(push, proxy, "kubernetes://shop/shop-cert")).toMatch(/no Gateway in istio-ingress names it/);
  // The Secret exists in the gateway's namespace, but only a Gateway of another namespace names it.
  expect(credentialSecret(push, proxy, "kubernetes://foreign-cert")).toMatch(/no Gateway in istio-ingress names it/);
  expect(credentialSecret(push, proxy, "kubernetes://missing-cert")).toMatch(/Secret istio-ingress\/missing-cert does not exist/);
  // Keys other than certificates are never kept.
  expect(push.credentials?.get("istio-ingress/secure-cert")?.data).not.toHaveProperty("other-key");
});

test("a server whose certificate is missing gets no filter chain; the port's other servers keep theirs", () => {
  const [listener] = gatewayListeners(push, proxy);
  expect(listener?.name).toBe("0.0.0.0_443");
  expect(listener?.filterChains?.map((c) => c.filterChainMatch?.serverNames)).toEqual([
    ["shop.example.com"],
    ["secure.example.com"],
  ]);
  // Without Secrets at all (istiod reading none), no HTTPS chain: no listener.
  expect(gatewayListeners({ ...push, credentials: undefined, version: 2 }, proxy)).toEqual([]);
});

test("in istiod, only a gateway that authenticated as a ServiceAccount allowed to read Secrets gets them", () => {
  const allowed = { namespace: "istio-ingress", serviceAccount: "ingress" };
  const live: PushContext = { ...push, version: 3, secretReaders: (who) => who.serviceAccount === "ingress" };
  // The plaintext port: no identity, no Secrets, no HTTPS chains.
  expect(credentialSecret(live, proxy, "kubernetes://shop-cert")).toMatch(/did not authenticate/);
  expect(gatewayListeners(live, proxy)).toEqual([]);
  const other = { ...proxy, verifiedIdentity: { namespace: "istio-ingress", serviceAccount: "default" } };
  expect(credentialSecret(live, other, "kubernetes://shop-cert")).toBe(
    "kubernetes://shop-cert: ServiceAccount istio-ingress/default may not list Secrets in istio-ingress (SubjectAccessReview)",
  );
  expect(gatewayListeners(live, other)).toEqual([]);
  // A CA alone is not a secret to guard (upstream serves it without the review).
  expect(typeof credentialSecret(live, other, "kubernetes://secure-cert-cacert")).toBe("object");
  const verified = { ...proxy, verifiedIdentity: allowed };
  expect(typeof credentialSecret(live, verified, "kubernetes://shop-cert")).toBe("object");
  expect(gatewayListeners(live, verified)[0]?.filterChains?.length).toBe(2);
});

test("the Secrets Gateways name (and their CA Secrets) are the ones whose changes are pushed", () => {
  expect([...referencedSecrets(push.gateways ?? [])].sort()).toEqual([
    "istio-ingress/missing-cert",
    "istio-ingress/missing-cert-cacert",
    "istio-ingress/secure-cert",
    "istio-ingress/secure-cert-cacert",
    "istio-ingress/shop-cert",
    "istio-ingress/shop-cert-cacert",
    "shop/foreign-cert",
    "shop/foreign-cert-cacert",
  ]);
});

test("what istiod logs of a Gateway whose Secrets are missing, incomplete or in another namespace", () => {
  const edge = push.gateways?.[0] as IstioGateway;
  expect(credentialProblems(push, edge)).toEqual([
    "server https-missing (port 443): kubernetes://missing-cert: Secret istio-ingress/missing-cert does not exist",
  ]);
  const odd = gateway("odd", "istio-ingress", [
    https("https-cross", "cross.example.com", { mode: "SIMPLE", credentialName: "shop/shop-cert" }),
    https("https-noca", "noca.example.com", { mode: "MUTUAL", credentialName: "shop-cert" }),
  ]);
  expect(credentialProblems(push, odd)).toEqual([
    "server https-cross (port 443): kubernetes://shop/shop-cert: a Secret of another namespace is not served (no ReferenceGrant support for Istio Gateways)",
    "server https-noca (port 443): kubernetes://shop-cert-cacert: no ca.crt in Secret istio-ingress/shop-cert-cacert or istio-ingress/shop-cert",
  ]);
});
