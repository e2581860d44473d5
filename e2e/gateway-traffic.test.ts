// Traffic entering the mesh through a gateway on the real node: an IstioGateway's pod (upstream's
// proxyv2 in router mode, configured by Rigger's istiod), Istio Gateways selecting it and
// VirtualServices bound to them. A client on this machine (curl on the node, outside the mesh)
// calls the gateway pod's port; every test counts what came back (status codes, which backend
// version answered, redirect locations), never what was configured.
import { execFileSync, spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { type CertificateAuthority, createCertificateAuthority, issueCertificate, type PemPair } from "../pki/certificates.ts";
import { versions } from "../versions.ts";
import { binaries, runOnRealNode } from "./cluster/local-cluster.ts";
import { droppedPackets } from "./cluster/network.ts";
import { reportMeasurements, waitFor } from "./support/kube.ts";
import {
  applyService,
  applyUntil as applyUntilSteady,
  cleanUpMesh,
  echoCall,
  echoDeployment,
  envoyAdmin,
  injectedNamespace,
  installMesh,
  isReady,
  json,
  kubectl,
  podPids,
  podsOf,
  waitForPods,
} from "./support/mesh-node.ts";

const APP = "gwt-app";
const OTHER = "gwt-other";
const EDGE = "gwt-edge";
/** A namespace whose hand-made gateway's ServiceAccount may not read Secrets (at first). */
const ROGUE = "gwt-rogue";
/** A namespace outside the mesh (a service reached through the egress gateway) and the egress gateway's. */
const EXTERNAL = "gwt-external";
const EGRESS = "gwt-egress";
/** The Gateway API gateway's namespace. */
const KUBE_GW = "gwt-kube";
const local = inject("localCluster");
const measured: Record<string, string> = {};
let gatewayIp = "";

interface Answer {
  code: number;
  version?: string;
  location?: string;
}

/** One request from the node to the gateway pod's port 80 with `host` as Host. */
function call(host: string, path: string, headers: string[] = []): Answer {
  const out = execFileSync(
    "curl",
    [
      "-s",
      "--max-time",
      "5",
      "-H",
      `Host: ${host}`,
      ...headers.flatMap((h) => ["-H", h]),
      "-D",
      "-",
      "-o",
      "-",
      `http://${gatewayIp}:80${path}`,
    ],
    { encoding: "utf8" },
  );
  const code = Number(/^HTTP\/[\d.]+ (\d+)/m.exec(out)?.[1] ?? 0);
  return {
    code,
    version: /ServiceVersion=(\S+)/.exec(out)?.[1],
    location: /^location: (\S+)/im.exec(out)?.[1],
  };
}

/** What `count` requests got: status codes and versions, counted. */
function tally(host: string, path: string, count = 10, headers: string[] = []): Record<string, number> {
  const seen: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const a = call(host, path, headers);
    const key = a.version ? `${a.code} ${a.version}` : String(a.code);
    seen[key] = (seen[key] ?? 0) + 1;
  }
  return seen;
}

/** Applies objects and waits until `observed` holds steadily; records how long the change took to show. */
async function applyUntil(what: string, objects: object[], observed: () => boolean): Promise<void> {
  const seconds = await applyUntilSteady(what, objects, observed);
  measured[`${what}: applied → first observed`] = `${seconds.toFixed(1)} s`;
}

const gateway = (name: string, namespace: string, servers: object[]) => ({
  apiVersion: "networking.istio.io/v1",
  kind: "Gateway",
  metadata: { name, namespace },
  spec: { selector: { istio: "ingressgateway" }, servers },
});

const virtualService = (name: string, namespace: string, spec: object) => ({
  apiVersion: "networking.istio.io/v1",
  kind: "VirtualService",
  metadata: { name, namespace },
  spec,
});

/** PEM files of the HTTPS tests (a throwaway CA's), by name. */
const pemDir = mkdtempSync(join(tmpdir(), "gwt-tls-"));
const pemFile = (name: string, pem: string) => {
  const path = join(pemDir, name);
  writeFileSync(path, pem);
  return path;
};

interface HttpsAnswer {
  /** 0 when no HTTP answer came (the handshake failed, the connection was refused). */
  code: number;
  version?: string;
  /** curl's exit code and message when it failed (35: handshake, 56: peer reset, 7: refused). */
  error?: string;
}

/** One HTTPS request from the node to `ip`:443 by SNI `host`, trusting `ca`, presenting `client` if given. */
function httpsCall(ip: string, host: string, path: string, ca: string, client?: { cert: string; key: string }): HttpsAnswer {
  const out = spawnSync(
    "curl",
    [
      "-sS",
      "--max-time",
      "5",
      "--resolve",
      `${host}:443:${ip}`,
      "--cacert",
      ca,
      ...(client ? ["--cert", client.cert, "--key", client.key] : []),
      "-o",
      "-",
      "-w",
      "\\nHTTP_CODE=%{http_code}",
      `https://${host}${path}`,
    ],
    { encoding: "utf8" },
  );
  const code = Number(/HTTP_CODE=(\d+)/.exec(out.stdout)?.[1] ?? 0);
  return {
    code,
    version: /ServiceVersion=(\S+)/.exec(out.stdout)?.[1],
    ...(out.status !== 0 ? { error: `curl ${out.status}: ${out.stderr.trim().split("\n").pop()}` } : {}),
  };
}

/** What `count` HTTPS requests got: status codes (0: no answer) and versions, counted. */
function httpsTally(ip: string, host: string, ca: string, client?: { cert: string; key: string }, count = 10) {
  const seen: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const a = httpsCall(ip, host, "/", ca, client);
    const key = a.code ? `${a.code}${a.version ? ` ${a.version}` : ""}` : "no answer";
    seen[key] = (seen[key] ?? 0) + 1;
  }
  return seen;
}

/**
 * A TLS handshake by openssl s_client with `host` as SNI and extra options (a protocol version):
 * the server certificate's SHA-256 fingerprint when one came, and what openssl said.
 */
function handshake(
  ip: string,
  host: string,
  options: string[] = [],
): { fingerprint?: string; protocol?: string; output: string } {
  const out = spawnSync("openssl", ["s_client", "-connect", `${ip}:443`, "-servername", host, ...options], {
    input: "",
    encoding: "utf8",
    timeout: 10_000,
  });
  const output = `${out.stdout}\n${out.stderr}`;
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(out.stdout)?.[0];
  return {
    fingerprint: pem ? new X509Certificate(pem).fingerprint256 : undefined,
    protocol: /Protocol\s*:\s*(\S+)/.exec(out.stdout)?.[1] ?? /New, (TLSv[\d.]+)/.exec(out.stdout)?.[1],
    output,
  };
}

const tlsSecret = (name: string, namespace: string, pair: PemPair, ca?: string) => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name, namespace },
  type: "kubernetes.io/tls",
  stringData: { "tls.crt": pair.certPem, "tls.key": pair.keyPem, ...(ca ? { "ca.crt": ca } : {}) },
});

/** The Gateway API's CRDs applied, the gateway namespace on the real node, and the operator's GatewayClass istio there. */
async function installGatewayApi(): Promise<void> {
  kubectl(["apply", "--server-side", "-f", binaries.gatewayApiCrds]);
  runOnRealNode(KUBE_GW);
  await waitFor("GatewayClass istio", async () => {
    try {
      return kubectl(["get", "gatewayclass", "istio", "-o", "name"]).trim() ? true : undefined;
    } catch {
      return undefined;
    }
  });
}

/** The gateway namespace and the Gateway API's CRDs removed (as the other suites expect to find them). */
function removeGatewayApi(): void {
  kubectl(["delete", "namespace", KUBE_GW, "--ignore-not-found", "--wait=true", "--timeout=90s"]);
  kubectl(["delete", "-f", binaries.gatewayApiCrds, "--ignore-not-found", "--wait=true", "--timeout=60s"]);
}

/** The address of the one ready pod `selector` picks in `namespace`. */
async function readyPodIp(namespace: string, selector: string, what: string): Promise<string> {
  const [pod] = await waitForPods(namespace, selector, 1, isReady, what);
  if (!pod) throw new Error(`no pod for ${what}`);
  return json<{ status: { podIP: string } }>(["-n", namespace, "get", "pod", pod.metadata.name]).status.podIP;
}

/** Applies objects in one request (a List). */
const applyObjects = (items: object[]) =>
  kubectl(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items }));

const only = (seen: Record<string, number>, key: string) => Object.keys(seen).join(",") === key;

describe.runIf(local)("traffic through an ingress gateway on the real node", () => {
  beforeAll(async () => {
    cleanUpMesh([APP, OTHER, EDGE, ROGUE, EXTERNAL, EGRESS, KUBE_GW]);
    await installMesh();
    injectedNamespace(APP);
    injectedNamespace(OTHER);
    kubectl(["apply", "-f", "-"], echoDeployment("backend", APP, ["--port=8080", "--version=v1"]));
    applyService("backend", APP, { app: "backend" }, [{ name: "http", port: 80, targetPort: 8080 }]);
    kubectl(["apply", "-f", "-"], echoDeployment("other", OTHER, ["--port=8080", "--version=v2"]));
    applyService("other", OTHER, { app: "other" }, [{ name: "http", port: 80, targetPort: 8080 }]);
    runOnRealNode(EDGE);
    kubectl(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "operator.rigger.dev/v1alpha1",
        kind: "IstioGateway",
        metadata: { name: "istio-ingressgateway", namespace: EDGE },
        // Images are imported, never pulled (`image: auto` would be pulled Always).
        spec: { replicas: 1, autoscaling: { enabled: false }, imagePullPolicy: "IfNotPresent" },
      }),
    );
    await waitForPods(APP, "app=backend", 1, isReady, "the backend Ready");
    await waitForPods(OTHER, "app=other", 1, isReady, "the other backend Ready");
    const [pod] = await waitForPods(EDGE, "istio=ingressgateway", 1, isReady, "the gateway pod Ready");
    if (!pod) throw new Error("no gateway pod");
    gatewayIp = json<{ status: { podIP: string } }>(["-n", EDGE, "get", "pod", pod.metadata.name]).status.podIP;
  }, 400_000);

  afterAll(() => {
    reportMeasurements("gateway traffic", measured);
    rmSync(pemDir, { recursive: true, force: true });
    cleanUpMesh([APP, OTHER, EDGE, ROGUE, EXTERNAL, EGRESS, KUBE_GW]);
  }, 200_000);

  test("an HTTP server and a VirtualService bound to its Gateway: requests by Host reach the backends; other hosts 404", async () => {
    await applyUntil(
      "a Gateway on port 80 for shop.example.com and its VirtualService",
      [
        gateway("web-gw", APP, [{ port: { number: 80, name: "http", protocol: "HTTP" }, hosts: ["shop.example.com"] }]),
        virtualService("shop", APP, {
          hosts: ["shop.example.com"],
          gateways: ["web-gw"],
          http: [
            { match: [{ uri: { prefix: "/api" } }], route: [{ destination: { host: "backend" } }] },
            { match: [{ uri: { exact: "/old" } }], redirect: { uri: "/new" } },
            { route: [{ destination: { host: `other.${OTHER}.svc.cluster.local` } }] },
          ],
        }),
      ],
      () => only(tally("shop.example.com", "/api/items", 3), "200 v1"),
    );
    const seen = {
      api: tally("shop.example.com", "/api/items"),
      rest: tally("shop.example.com", "/elsewhere"),
      unknownHost: tally("nobody.example.com", "/api/items"),
    };
    const redirect = call("shop.example.com", "/old");
    measured["Host shop.example.com: /api, /elsewhere; Host nobody.example.com"] = JSON.stringify(seen);
    expect(seen).toEqual({ api: { "200 v1": 10 }, rest: { "200 v2": 10 }, unknownHost: { "404": 10 } });
    expect(redirect).toEqual({ code: 301, location: "http://shop.example.com/new", version: undefined });
  });

  test("httpsRedirect: a server's hosts answer with a redirect to https, routes or not", async () => {
    await applyUntil(
      "a Gateway server with httpsRedirect",
      [
        gateway("redirect-gw", EDGE, [
          {
            port: { number: 80, name: "http-secure", protocol: "HTTP" },
            hosts: ["secure.example.com"],
            tls: { httpsRedirect: true },
          },
        ]),
      ],
      () => call("secure.example.com", "/x").code === 301,
    );
    const answer = call("secure.example.com", "/account?id=1");
    measured["httpsRedirect: secure.example.com/account?id=1"] = JSON.stringify(answer);
    expect(answer).toEqual({ code: 301, location: "https://secure.example.com/account?id=1", version: undefined });
    // The other Gateway's host on the same port is untouched.
    expect(call("shop.example.com", "/api/1")).toEqual({ code: 200, version: "v1", location: undefined });
  });

  test("a VirtualService of another namespace binds <namespace>/<name>; a match naming the gateway applies there; weights split", async () => {
    await applyUntil(
      "a VirtualService in gwt-other bound to gwt-app/web-gw",
      [
        gateway("web-gw", APP, [
          { port: { number: 80, name: "http", protocol: "HTTP" }, hosts: ["shop.example.com", `${OTHER}/*.other.example.com`] },
        ]),
        virtualService("other", OTHER, {
          hosts: ["app.other.example.com"],
          gateways: [`${APP}/web-gw`, "mesh"],
          http: [
            {
              match: [{ headers: { "x-canary": { exact: "yes" } }, gateways: [`${APP}/web-gw`] }],
              route: [{ destination: { host: `backend.${APP}.svc.cluster.local` } }],
            },
            {
              route: [
                { destination: { host: `backend.${APP}.svc.cluster.local` }, weight: 80 },
                { destination: { host: "other" }, weight: 20 },
              ],
            },
          ],
        }),
      ],
      () => call("app.other.example.com", "/", ["x-canary: yes"]).version === "v1",
    );
    const canary = tally("app.other.example.com", "/", 10, ["x-canary: yes"]);
    const split = tally("app.other.example.com", "/", 200);
    measured["app.other.example.com: x-canary: yes; 200 calls at 80/20"] = JSON.stringify({ canary, split });
    expect(canary).toEqual({ "200 v1": 10 });
    expect((split["200 v1"] ?? 0) + (split["200 v2"] ?? 0)).toBe(200);
    // 80/20 of 200: 40 expected on v2; well within 20..60 unless the split is not applied.
    expect(split["200 v2"] ?? 0).toBeGreaterThanOrEqual(20);
    expect(split["200 v2"] ?? 0).toBeLessThanOrEqual(60);
    // A host the server does not take (the VirtualService's namespace only gets *.other.example.com).
    expect(tally("app.else.example.com", "/", 3)).toEqual({ "404": 3 });
  });

  describe("HTTPS servers with credentialName certificates, served by istiod over SDS", () => {
    let serverCa: CertificateAuthority;
    let caFile = "";
    let client = { cert: "", key: "" };
    let stranger = { cert: "", key: "" };
    let shopPair: PemPair;
    let securePair: PemPair;
    const serving = (host: string) =>
      issueCertificate(serverCa, { commonName: host, dnsNames: [host], usages: ["server"], validDays: 1 });

    beforeAll(async () => {
      serverCa = await createCertificateAuthority("gateway-e2e-server-ca", 1);
      caFile = pemFile("server-ca.pem", serverCa.certPem);
      // Clients' certificates: one from the CA the MUTUAL server trusts, one from another CA.
      const clientCa = await createCertificateAuthority("gateway-e2e-client-ca", 1);
      const otherCa = await createCertificateAuthority("gateway-e2e-other-ca", 1);
      const issueClient = (ca: CertificateAuthority, name: string) =>
        issueCertificate(ca, { commonName: name, dnsNames: [`${name}.example.com`], usages: ["client"], validDays: 1 });
      const [good, bad] = await Promise.all([issueClient(clientCa, "client"), issueClient(otherCa, "stranger")]);
      client = { cert: pemFile("client.pem", good.certPem), key: pemFile("client-key.pem", good.keyPem) };
      stranger = { cert: pemFile("stranger.pem", bad.certPem), key: pemFile("stranger-key.pem", bad.keyPem) };
      [shopPair, securePair] = await Promise.all([serving("shop.example.com"), serving("secure.example.com")]);
      applyObjects([tlsSecret("shop-cert", EDGE, shopPair), tlsSecret("secure-cert", EDGE, securePair, clientCa.certPem)]);
    });

    test("SIMPLE and MUTUAL servers share port 443 by SNI; MUTUAL needs a client certificate from its CA; TLS versions as configured", async () => {
      await applyUntil(
        "a Gateway with SIMPLE, MUTUAL and a missing-Secret server on 443, and its VirtualService",
        [
          gateway("tls-gw", EDGE, [
            {
              port: { number: 443, name: "https-shop", protocol: "HTTPS" },
              hosts: ["shop.example.com"],
              tls: { mode: "SIMPLE", credentialName: "shop-cert", maxProtocolVersion: "TLSV1_2" },
            },
            {
              port: { number: 443, name: "https-secure", protocol: "HTTPS" },
              hosts: ["secure.example.com"],
              // The seed's example.
              tls: {
                mode: "MUTUAL",
                credentialName: "secure-cert",
                minProtocolVersion: "TLSV1_2",
                maxProtocolVersion: "TLSV1_3",
              },
            },
            {
              port: { number: 443, name: "https-missing", protocol: "HTTPS" },
              hosts: ["late.example.com"],
              tls: { mode: "SIMPLE", credentialName: "late-cert" },
            },
          ]),
          virtualService("tls", APP, {
            hosts: ["shop.example.com", "secure.example.com", "late.example.com"],
            gateways: [`${EDGE}/tls-gw`],
            http: [{ route: [{ destination: { host: "backend" } }] }],
          }),
        ],
        () => httpsCall(gatewayIp, "shop.example.com", "/", caFile).code === 200,
      );
      const seen = {
        simple: httpsTally(gatewayIp, "shop.example.com", caFile),
        mutualWithCertificate: httpsTally(gatewayIp, "secure.example.com", caFile, client),
        mutualWithout: httpsTally(gatewayIp, "secure.example.com", caFile, undefined, 5),
        mutualOtherCa: httpsTally(gatewayIp, "secure.example.com", caFile, stranger, 5),
        missingSecret: httpsTally(gatewayIp, "late.example.com", caFile, undefined, 5),
      };
      measured["HTTPS on 443: SIMPLE, MUTUAL with / without / other CA's certificate, missing Secret"] = JSON.stringify(seen);
      expect(seen).toEqual({
        simple: { "200 v1": 10 },
        mutualWithCertificate: { "200 v1": 10 },
        mutualWithout: { "no answer": 5 },
        mutualOtherCa: { "no answer": 5 },
        missingSecret: { "no answer": 5 },
      });
      // Without a certificate the connection fails in TLS (the handshake, or under TLS 1.3 the
      // first write or read after it, or the reset seen as a send/peer failure), never with an
      // HTTP answer.
      const refused = httpsCall(gatewayIp, "secure.example.com", "/", caFile);
      expect(refused.code).toBe(0);
      expect(refused.error).toMatch(/^curl (16|35|55|56):/);
      // Each server's certificate is its own Secret's.
      expect(handshake(gatewayIp, "shop.example.com").fingerprint).toBe(new X509Certificate(shopPair.certPem).fingerprint256);
      expect(handshake(gatewayIp, "secure.example.com").fingerprint).toBe(new X509Certificate(securePair.certPem).fingerprint256);
      // Protocol versions: shop's maximum is TLS 1.2, secure's range 1.2 to 1.3. A refusal must
      // be the server's (its protocol_version alert), not the client's own.
      const withClient = ["-cert", client.cert, "-key", client.key];
      const attempts = {
        shopDefault: handshake(gatewayIp, "shop.example.com"),
        shop13: handshake(gatewayIp, "shop.example.com", ["-tls1_3"]),
        secure13: handshake(gatewayIp, "secure.example.com", ["-tls1_3", ...withClient]),
        secure11: handshake(gatewayIp, "secure.example.com", ["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", ...withClient]),
      };
      const versions = Object.fromEntries(
        Object.entries(attempts).map(([k, a]) => [
          k,
          a.fingerprint ? a.protocol : /alert protocol version/.test(a.output) ? "refused by the server" : a.output.slice(-300),
        ]),
      );
      measured["TLS versions: shop (max 1.2), secure (1.2-1.3)"] = JSON.stringify(versions);
      expect(versions).toEqual({
        shopDefault: "TLSv1.2",
        shop13: "refused by the server",
        secure13: "TLSv1.3",
        secure11: "refused by the server",
      });
      // The server left out is named in istiod's log.
      const logs = kubectl(["-n", "istio-system", "logs", "-l", "app=istiod", "--tail=-1"]);
      expect(logs).toContain("Secret gwt-edge/late-cert does not exist");
    });

    test("a Secret created after its Gateway and a rotated Secret are served without restarting the gateway", async () => {
      const pod = podsOf(EDGE, "istio=ingressgateway")[0];
      const late = await serving("late.example.com");
      const seconds = await applyUntilSteady(
        "the missing Secret created",
        [tlsSecret("late-cert", EDGE, late)],
        () => httpsCall(gatewayIp, "late.example.com", "/", caFile).code === 200,
      );
      measured["Secret created after its Gateway: applied → first HTTPS answer"] = `${seconds.toFixed(1)} s`;
      expect(httpsTally(gatewayIp, "late.example.com", caFile)).toEqual({ "200 v1": 10 });
      // Rotation: a new certificate (new key) in the same Secret.
      const before = handshake(gatewayIp, "shop.example.com").fingerprint;
      const rotated = await serving("shop.example.com");
      const rotatedFingerprint = new X509Certificate(rotated.certPem).fingerprint256;
      expect(rotatedFingerprint).not.toBe(before);
      const rotation = await applyUntilSteady(
        "shop-cert rotated",
        [tlsSecret("shop-cert", EDGE, rotated)],
        () => handshake(gatewayIp, "shop.example.com").fingerprint === rotatedFingerprint,
      );
      measured["Secret rotated: applied → new certificate served"] = `${rotation.toFixed(1)} s`;
      expect(httpsTally(gatewayIp, "shop.example.com", caFile)).toEqual({ "200 v1": 10 });
      // The same pod, never restarted.
      const after = podsOf(EDGE, "istio=ingressgateway");
      expect(after.map((p) => p.metadata.name)).toEqual([pod?.metadata.name]);
      expect(after[0]?.status.containerStatuses?.every((c) => c.restartCount === 0)).toBe(true);
    });

    test("TCP and TLS passthrough servers: a TCP rule and an SNI route carry connections; the backend's own certificate reaches the client", async () => {
      // A backend in the mesh speaking TLS itself (its certificate from the same CA, for pass.example.com).
      const backendPair = await serving("pass.example.com");
      applyObjects([
        tlsSecret("tls-backend-cert", APP, backendPair),
        {
          apiVersion: "apps/v1",
          kind: "Deployment",
          metadata: { name: "tls-backend", namespace: APP },
          spec: {
            selector: { matchLabels: { app: "tls-backend" } },
            template: {
              metadata: { labels: { app: "tls-backend" } },
              spec: {
                containers: [
                  {
                    name: "app",
                    image: `localhost/istio/app:${versions.istio}`,
                    imagePullPolicy: "IfNotPresent",
                    args: ["--port=8443", "--tls=8443", "--crt=/certs/tls.crt", "--key=/certs/tls.key", "--version=tls"],
                    volumeMounts: [{ name: "certs", mountPath: "/certs", readOnly: true }],
                  },
                ],
                volumes: [{ name: "certs", secret: { secretName: "tls-backend-cert" } }],
              },
            },
          },
        },
      ]);
      applyService("tls-backend", APP, { app: "tls-backend" }, [{ name: "tls", port: 443, targetPort: 8443 }]);
      await waitForPods(APP, "app=tls-backend", 1, isReady, "the TLS backend Ready");
      const tcpCall = () => {
        const out = spawnSync("curl", ["-s", "--max-time", "5", `http://${gatewayIp}:31400/`], { encoding: "utf8" });
        return /ServiceVersion=(\S+)/.exec(out.stdout)?.[1] ?? `curl ${out.status}`;
      };
      const seconds = await applyUntilSteady(
        "a TCP server on 31400 and a passthrough server on 443, their VirtualServices",
        [
          gateway("l4-gw", EDGE, [
            { port: { number: 31400, name: "tcp", protocol: "TCP" }, hosts: ["*"] },
            {
              port: { number: 443, name: "tls-pass", protocol: "TLS" },
              hosts: ["pass.example.com"],
              tls: { mode: "PASSTHROUGH" },
            },
          ]),
          virtualService("l4-tcp", APP, {
            hosts: ["*"],
            gateways: [`${EDGE}/l4-gw`],
            tcp: [{ match: [{ port: 31400 }], route: [{ destination: { host: "backend", port: { number: 80 } } }] }],
          }),
          virtualService("l4-pass", APP, {
            hosts: ["pass.example.com"],
            gateways: [`${EDGE}/l4-gw`],
            tls: [
              {
                match: [{ port: 443, sniHosts: ["pass.example.com"] }],
                route: [{ destination: { host: "tls-backend", port: { number: 443 } } }],
              },
            ],
          }),
        ],
        () => tcpCall() === "v1" && httpsCall(gatewayIp, "pass.example.com", "/", caFile).version === "tls",
      );
      measured["TCP and passthrough servers: applied → first connection through"] = `${seconds.toFixed(1)} s`;
      const tcp: Record<string, number> = {};
      for (let i = 0; i < 10; i++) {
        const version = tcpCall();
        tcp[version] = (tcp[version] ?? 0) + 1;
      }
      const seen = {
        tcp,
        passthrough: httpsTally(gatewayIp, "pass.example.com", caFile),
        // The terminating server of another Gateway on the same port still answers by SNI.
        terminatedBeside: httpsTally(gatewayIp, "shop.example.com", caFile),
      };
      measured["TCP 31400 (10 connections); passthrough pass.example.com and terminated shop.example.com on 443"] =
        JSON.stringify(seen);
      expect(seen).toEqual({ tcp: { v1: 10 }, passthrough: { "200 tls": 10 }, terminatedBeside: { "200 v1": 10 } });
      // End to end TLS: the client saw the backend's certificate, not one of the gateway's.
      expect(handshake(gatewayIp, "pass.example.com").fingerprint).toBe(new X509Certificate(backendPair.certPem).fingerprint256);
    });

    test("a gateway whose ServiceAccount may not read its namespace's Secrets gets none, until a Role allows it", async () => {
      runOnRealNode(ROGUE);
      // A gateway made by hand (the gateway injection template), its ServiceAccount without rights.
      applyObjects([
        { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "rogue", namespace: ROGUE } },
        tlsSecret("rogue-cert", ROGUE, await serving("rogue.example.com")),
        {
          apiVersion: "apps/v1",
          kind: "Deployment",
          metadata: { name: "rogue-gateway", namespace: ROGUE },
          spec: {
            selector: { matchLabels: { istio: "rogue-gateway" } },
            template: {
              metadata: {
                labels: { istio: "rogue-gateway", "sidecar.istio.io/inject": "true" },
                annotations: { "inject.istio.io/templates": "gateway" },
              },
              spec: {
                serviceAccountName: "rogue",
                containers: [{ name: "istio-proxy", image: "auto", imagePullPolicy: "IfNotPresent" }],
              },
            },
          },
        },
        {
          apiVersion: "networking.istio.io/v1",
          kind: "Gateway",
          metadata: { name: "rogue-gw", namespace: ROGUE },
          spec: {
            selector: { istio: "rogue-gateway" },
            servers: [
              { port: { number: 80, name: "http", protocol: "HTTP" }, hosts: ["rogue.example.com"] },
              {
                port: { number: 443, name: "https", protocol: "HTTPS" },
                hosts: ["rogue.example.com"],
                tls: { mode: "SIMPLE", credentialName: "rogue-cert" },
              },
            ],
          },
        },
        virtualService("rogue", APP, {
          hosts: ["rogue.example.com"],
          gateways: [`${ROGUE}/rogue-gw`],
          http: [{ route: [{ destination: { host: "backend" } }] }],
        }),
      ]);
      const [pod] = await waitForPods(ROGUE, "istio=rogue-gateway", 1, isReady, "the hand-made gateway Ready");
      const ip = json<{ status: { podIP: string } }>(["-n", ROGUE, "get", "pod", pod?.metadata.name ?? ""]).status.podIP;
      const plain = () => {
        try {
          return execFileSync(
            "curl",
            [
              "-s",
              "-o",
              "/dev/null",
              "-w",
              "%{http_code}",
              "--max-time",
              "5",
              "-H",
              "Host: rogue.example.com",
              `http://${ip}:80/`,
            ],
            { encoding: "utf8" },
          );
        } catch {
          return "0";
        }
      };
      // Configured (its HTTP server answers), but no certificate: no HTTPS.
      await waitFor("the hand-made gateway's HTTP server", async () => (plain() === "200" ? true : undefined));
      const denied = httpsTally(ip, "rogue.example.com", caFile, undefined, 5);
      const logs = kubectl(["-n", "istio-system", "logs", "-l", "app=istiod", "--tail=-1"]);
      measured["gateway ServiceAccount without Secret rights: HTTP / HTTPS"] = JSON.stringify({ http: plain(), https: denied });
      expect(denied).toEqual({ "no answer": 5 });
      expect(logs).toMatch(/gwt-rogue\/rogue.*may not list Secrets in its namespace/);
      // The namespace's owner allows it: the next review (within 30 s) sends the certificate.
      const t0 = Date.now();
      kubectl(["-n", ROGUE, "create", "role", "read-secrets", "--verb=get,list,watch", "--resource=secrets"]);
      kubectl(["-n", ROGUE, "create", "rolebinding", "read-secrets", "--role=read-secrets", `--serviceaccount=${ROGUE}:rogue`]);
      await waitFor("HTTPS at the hand-made gateway once allowed", async () =>
        httpsCall(ip, "rogue.example.com", "/", caFile).code === 200 ? true : undefined,
      );
      measured["Secret rights granted → first HTTPS answer"] = `${((Date.now() - t0) / 1000).toFixed(1)} s`;
      expect(httpsTally(ip, "rogue.example.com", caFile)).toEqual({ "200 v1": 10 });
    });
  });

  test("egress: mesh traffic to a ServiceEntry host goes out through an egress gateway (its counters show every request)", async () => {
    runOnRealNode(EXTERNAL);
    runOnRealNode(EGRESS);
    // The outside service: a pod without a sidecar, known to the mesh only through a ServiceEntry.
    kubectl(["apply", "-f", "-"], echoDeployment("outside", EXTERNAL, ["--port=8080", "--version=outside"]));
    kubectl(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "operator.rigger.dev/v1alpha1",
        kind: "IstioGateway",
        metadata: { name: "istio-egressgateway", namespace: EGRESS },
        spec: { replicas: 1, autoscaling: { enabled: false }, imagePullPolicy: "IfNotPresent" },
      }),
    );
    const [outside] = await waitForPods(EXTERNAL, "app=outside", 1, isReady, "the outside service Ready");
    const [egress] = await waitForPods(EGRESS, "istio=egressgateway", 1, isReady, "the egress gateway Ready");
    const [client] = await waitForPods(APP, "app=backend", 1, isReady, "the client (a backend pod with its sidecar)");
    if (!outside || !egress || !client) throw new Error("pods missing");
    const outsideIp = json<{ status: { podIP: string } }>(["-n", EXTERNAL, "get", "pod", outside.metadata.name]).status.podIP;
    const clientPid = podPids(client, "backend").app;
    const egressPid = podPids(egress, "istio-proxy").proxy;
    const HOST = "egress-target.example.test";
    const cluster = `outbound|80||${HOST}`;
    // Requests the egress gateway sent to the outside service (per-host counters of its /clusters page).
    const egressCount = () =>
      envoyAdmin(egressPid, "/clusters")
        .split("\n")
        .filter((l) => l.startsWith(`${cluster}::`) && l.includes("::rq_total::"))
        .reduce((sum, l) => sum + Number(l.split("::").pop()), 0);
    const callOut = () => {
      try {
        // To the outside pod's address on port 80 (it listens on 8080): only the client sidecar's
        // route for the Host sends it anywhere that answers. No made-up address is ever dialled,
        // so nothing can leave the cluster's network even before the routes arrive.
        return /ServiceVersion=(\S+)/.exec(echoCall(clientPid, `http://${outsideIp}:80/`, ["-H", `Host:${HOST}`]))?.[1] ?? "none";
      } catch {
        return "failed";
      }
    };
    const seconds = await applyUntilSteady(
      "a ServiceEntry, an egress Gateway and a VirtualService sending the host through it",
      [
        {
          apiVersion: "networking.istio.io/v1",
          kind: "ServiceEntry",
          metadata: { name: "egress-target", namespace: APP },
          spec: {
            hosts: [HOST],
            ports: [{ number: 80, name: "http", protocol: "HTTP", targetPort: 8080 }],
            location: "MESH_EXTERNAL",
            resolution: "STATIC",
            endpoints: [{ address: outsideIp, ports: { http: 8080 } }],
          },
        },
        {
          apiVersion: "networking.istio.io/v1",
          kind: "Gateway",
          metadata: { name: "egress-gw", namespace: EGRESS },
          spec: {
            selector: { istio: "egressgateway" },
            servers: [{ port: { number: 80, name: "http", protocol: "HTTP" }, hosts: [HOST] }],
          },
        },
        virtualService("egress-route", APP, {
          hosts: [HOST],
          gateways: ["mesh", `${EGRESS}/egress-gw`],
          http: [
            {
              match: [{ gateways: ["mesh"], port: 80 }],
              route: [{ destination: { host: `istio-egressgateway.${EGRESS}.svc.cluster.local`, port: { number: 80 } } }],
            },
            {
              match: [{ gateways: [`${EGRESS}/egress-gw`], port: 80 }],
              route: [{ destination: { host: HOST, port: { number: 80 } } }],
            },
          ],
        }),
      ],
      () => callOut() === "outside" && egressCount() > 0,
    );
    const before = egressCount();
    const answers: Record<string, number> = {};
    for (let i = 0; i < 20; i++) {
      const version = callOut();
      answers[version] = (answers[version] ?? 0) + 1;
    }
    const through = egressCount() - before;
    measured["egress via the gateway: applied → first call out"] = `${seconds.toFixed(1)} s`;
    measured["egress: 20 calls from a sidecar to the ServiceEntry host (answers; requests counted at the egress gateway)"] =
      JSON.stringify({ answers, through });
    expect(answers).toEqual({ outside: 20 });
    expect(through).toBe(20);
  });

  test("Gateway API: an HTTPRoute through a Gateway of class istio (matches, a header filter, a redirect, a ReferenceGrant)", async () => {
    try {
      await installGatewayApi();
      applyObjects([
        {
          apiVersion: "gateway.networking.k8s.io/v1",
          kind: "Gateway",
          metadata: { name: "web", namespace: KUBE_GW },
          spec: {
            gatewayClassName: "istio",
            listeners: [
              {
                name: "http",
                hostname: "*.example.com",
                port: 80,
                protocol: "HTTP",
                allowedRoutes: { namespaces: { from: "All" } },
              },
            ],
          },
        },
      ]);
      const ip = await readyPodIp(KUBE_GW, "gateway.networking.k8s.io/gateway-name=web", "the Gateway API gateway Ready");
      const get = (path: string, headers: string[] = []) => {
        const out = spawnSync(
          "curl",
          [
            "-s",
            "--max-time",
            "5",
            "-H",
            "Host: api.example.com",
            ...headers.flatMap((h) => ["-H", h]),
            "-D",
            "-",
            `http://${ip}:80${path}`,
          ],
          { encoding: "utf8" },
        ).stdout;
        const code = /^HTTP\/[\d.]+ (\d+)/m.exec(out)?.[1] ?? "0";
        const version = /ServiceVersion=(\S+)/.exec(out)?.[1];
        const tagged = /RequestHeader=X-From:gw/i.test(out) ? " tagged" : "";
        const location = /^location: (\S+)/im.exec(out)?.[1];
        return `${code}${version ? ` ${version}` : ""}${tagged}${location ? ` -> ${location}` : ""}`;
      };
      const httpRoute = {
        apiVersion: "gateway.networking.k8s.io/v1",
        kind: "HTTPRoute",
        metadata: { name: "api", namespace: APP },
        spec: {
          parentRefs: [{ name: "web", namespace: KUBE_GW }],
          hostnames: ["api.example.com"],
          rules: [
            {
              matches: [{ headers: [{ name: "x-version", value: "v2" }] }],
              backendRefs: [{ name: "other", namespace: OTHER, port: 80 }],
            },
            {
              matches: [{ path: { type: "PathPrefix", value: "/api" } }],
              filters: [{ type: "RequestHeaderModifier", requestHeaderModifier: { add: [{ name: "X-From", value: "gw" }] } }],
              backendRefs: [{ name: "backend", port: 80 }],
            },
            {
              matches: [{ path: { type: "Exact", value: "/old" } }],
              filters: [
                {
                  type: "RequestRedirect",
                  requestRedirect: { path: { type: "ReplaceFullPath", replaceFullPath: "/new" }, statusCode: 302 },
                },
              ],
            },
            { backendRefs: [{ name: "backend", port: 80 }] },
          ],
        },
      };
      const seconds = await applyUntilSteady(
        "an HTTPRoute attached to the Gateway",
        [httpRoute],
        () => get("/api/items") === "200 v1 tagged",
      );
      /** The route's conditions for our controller: type → "<status> <reason>: <message>". */
      const routeConditions = () => {
        const live = json<{
          status?: {
            parents?: {
              controllerName: string;
              conditions?: { type: string; status: string; reason: string; message: string }[];
            }[];
          };
        }>(["-n", APP, "get", "httproute", "api"]);
        const ours = live.status?.parents?.find((p) => p.controllerName === "istio.io/gateway-controller");
        return Object.fromEntries((ours?.conditions ?? []).map((c) => [c.type, `${c.status} ${c.reason}: ${c.message}`]));
      };
      const beforeGrant = await waitFor("the HTTPRoute's status", async () => {
        const c = routeConditions();
        return c.Accepted && c.ResolvedRefs ? c : undefined;
      });
      measured["Gateway API: HTTPRoute applied → first answer through the gateway"] = `${seconds.toFixed(1)} s`;
      const count = (path: string, headers: string[] = []) => {
        const seen: Record<string, number> = {};
        for (let i = 0; i < 5; i++) {
          const a = get(path, headers);
          seen[a] = (seen[a] ?? 0) + 1;
        }
        return seen;
      };
      const seen = {
        api: count("/api/items"),
        // A prefix matches whole segments: /apis is not under /api.
        apis: count("/apis"),
        old: count("/old"),
        // Another namespace's backend without a ReferenceGrant: 500.
        otherWithoutGrant: count("/", ["x-version: v2"]),
      };
      applyObjects([
        {
          apiVersion: "gateway.networking.k8s.io/v1beta1",
          kind: "ReferenceGrant",
          metadata: { name: "from-app", namespace: OTHER },
          spec: {
            from: [{ group: "gateway.networking.k8s.io", kind: "HTTPRoute", namespace: APP }],
            to: [{ group: "", kind: "Service" }],
          },
        },
      ]);
      await waitFor("the ReferenceGrant taking effect", async () =>
        get("/", ["x-version: v2"]) === "200 v2" ? true : undefined,
      );
      const granted = count("/", ["x-version: v2"]);
      // The route's status as the operator writes it, with upstream's reasons and wording.
      const resolved = await waitFor("the HTTPRoute's ResolvedRefs after the grant", async () => {
        const c = routeConditions();
        return c.ResolvedRefs?.startsWith("True") ? c : undefined;
      });
      measured["Gateway API: 5 calls each"] = JSON.stringify({ ...seen, otherWithGrant: granted });
      expect(seen).toEqual({
        api: { "200 v1 tagged": 5 },
        apis: { "200 v1": 5 },
        old: { "302 -> http://api.example.com/new": 5 },
        otherWithoutGrant: { "500": 5 },
      });
      expect(granted).toEqual({ "200 v2": 5 });
      measured["Gateway API: HTTPRoute status before / after the ReferenceGrant"] = JSON.stringify({ beforeGrant, resolved });
      expect(beforeGrant).toEqual({
        Accepted: "True Accepted: Route was valid",
        ResolvedRefs: `False RefNotPermitted: backendRef other/${OTHER} not accessible to a HTTPRoute in namespace "${APP}" (missing a ReferenceGrant?)`,
      });
      expect(resolved).toEqual({
        Accepted: "True Accepted: Route was valid",
        ResolvedRefs: "True ResolvedRefs: All references resolved",
      });
    } finally {
      removeGatewayApi();
    }
  });

  test("Gateway API: an HTTPS listener's certificateRef served by istiod, and a GRPCRoute; listeners with bad certificateRefs shown in the Gateway's status", async () => {
    const dir = mkdtempSync(join(tmpdir(), "gwt-kube-"));
    try {
      await installGatewayApi();
      const ca = await createCertificateAuthority("gateway-api-e2e-ca", 1);
      const pair = await issueCertificate(ca, {
        commonName: "secure.example.com",
        dnsNames: ["secure.example.com"],
        usages: ["server"],
        validDays: 1,
      });
      const caPath = join(dir, "ca.pem");
      writeFileSync(caPath, ca.certPem);
      kubectl(["apply", "-f", "-"], echoDeployment("grpc-echo", APP, ["--grpc=7070", "--version=grpc"]));
      applyService("grpc-echo", APP, { app: "grpc-echo" }, [{ name: "grpc", port: 7070, targetPort: 7070 }]);
      applyObjects([
        tlsSecret("secure-web-cert", KUBE_GW, pair),
        {
          apiVersion: "gateway.networking.k8s.io/v1",
          kind: "Gateway",
          metadata: { name: "secure-web", namespace: KUBE_GW },
          spec: {
            gatewayClassName: "istio",
            listeners: [
              { name: "grpc", port: 80, protocol: "HTTP", allowedRoutes: { namespaces: { from: "All" } } },
              {
                name: "https",
                hostname: "secure.example.com",
                port: 443,
                protocol: "HTTPS",
                tls: { mode: "Terminate", certificateRefs: [{ name: "secure-web-cert" }] },
                allowedRoutes: { namespaces: { from: "All" } },
              },
              // Bad input: a Secret that does not exist (yet), another namespace's without a ReferenceGrant.
              {
                name: "https-later",
                hostname: "later.example.com",
                port: 443,
                protocol: "HTTPS",
                tls: { mode: "Terminate", certificateRefs: [{ name: "later-cert" }] },
              },
              {
                name: "https-foreign",
                hostname: "foreign.example.com",
                port: 443,
                protocol: "HTTPS",
                tls: { mode: "Terminate", certificateRefs: [{ name: "secure-web-cert", namespace: APP }] },
              },
            ],
          },
        },
      ]);
      const ip = await readyPodIp(KUBE_GW, "gateway.networking.k8s.io/gateway-name=secure-web", "the gateway Ready");
      await waitForPods(APP, "app=grpc-echo", 1, isReady, "the gRPC echo server Ready");
      const grpcCall = () => {
        try {
          return /ServiceVersion=(\S+)/.exec(echoCall(undefined, `grpc://${ip}:80`))?.[1] ?? "none";
        } catch {
          return "failed";
        }
      };
      const seconds = await applyUntilSteady(
        "an HTTPRoute on the HTTPS listener and a GRPCRoute on the other",
        [
          {
            apiVersion: "gateway.networking.k8s.io/v1",
            kind: "HTTPRoute",
            metadata: { name: "secure", namespace: APP },
            spec: {
              parentRefs: [{ name: "secure-web", namespace: KUBE_GW, sectionName: "https" }],
              hostnames: ["secure.example.com"],
              rules: [{ backendRefs: [{ name: "backend", port: 80 }] }],
            },
          },
          {
            apiVersion: "gateway.networking.k8s.io/v1",
            kind: "GRPCRoute",
            metadata: { name: "echo", namespace: APP },
            spec: {
              parentRefs: [{ name: "secure-web", namespace: KUBE_GW, sectionName: "grpc" }],
              rules: [
                { matches: [{ method: { service: "proto.EchoTestService" } }], backendRefs: [{ name: "grpc-echo", port: 7070 }] },
              ],
            },
          },
        ],
        () => httpsCall(ip, "secure.example.com", "/", caPath).code === 200 && grpcCall() === "grpc",
      );
      measured["Gateway API: HTTPS listener and GRPCRoute applied → first answers"] = `${seconds.toFixed(1)} s`;
      const grpc: Record<string, number> = {};
      for (let i = 0; i < 10; i++) {
        const v = grpcCall();
        grpc[v] = (grpc[v] ?? 0) + 1;
      }
      const seen = { https: httpsTally(ip, "secure.example.com", caPath), grpc };
      measured["Gateway API: 10 HTTPS calls (the listener's certificate) and 10 gRPC calls"] = JSON.stringify(seen);
      expect(seen).toEqual({ https: { "200 v1": 10 }, grpc: { grpc: 10 } });
      expect(handshake(ip, "secure.example.com").fingerprint).toBe(new X509Certificate(pair.certPem).fingerprint256);

      // The listeners' certificate conditions, written by istiod (it reads Secrets) beside the operator's.
      type Status = {
        listeners?: { name: string; conditions?: { type: string; status: string; reason: string; message: string }[] }[];
      };
      const gatewayJson = () =>
        JSON.parse(
          kubectl([
            "get",
            "gateways.gateway.networking.k8s.io",
            "secure-web",
            "-n",
            KUBE_GW,
            "-o",
            "json",
            "--show-managed-fields",
          ]),
        ) as {
          metadata: { resourceVersion: string; managedFields: { manager: string; subresource?: string }[] };
          status?: Status;
        };
      const certificateConditions = (status: Status | undefined) =>
        Object.fromEntries(
          (status?.listeners ?? []).map((l) => [
            l.name,
            (l.conditions ?? [])
              .filter((c) => c.type === "ResolvedRefs" || c.type === "Programmed")
              .map((c) => `${c.type}=${c.status} ${c.reason}: ${c.message}`)
              .sort(),
          ]),
        );
      const expected = {
        grpc: ["Programmed=True Programmed: No errors found", "ResolvedRefs=True ResolvedRefs: No errors found"],
        https: ["Programmed=True Programmed: No errors found", "ResolvedRefs=True ResolvedRefs: No errors found"],
        "https-later": [
          "Programmed=False Invalid: Bad TLS configuration",
          `ResolvedRefs=False InvalidCertificateRef: invalid certificate reference /Secret/later-cert., secret ${KUBE_GW}/later-cert not found`,
        ],
        "https-foreign": [
          "Programmed=False Invalid: Bad TLS configuration",
          `ResolvedRefs=False RefNotPermitted: certificateRef secure-web-cert/${APP} not accessible to a Gateway in namespace "${KUBE_GW}" (missing a ReferenceGrant?)`,
        ],
      };
      let seenConditions: object = {};
      await waitFor("the listeners' certificate conditions", async () => {
        seenConditions = certificateConditions(gatewayJson().status);
        return JSON.stringify(seenConditions) === JSON.stringify(expected) ? true : undefined;
      }).catch((err: Error) => {
        throw new Error(`${err.message}; last seen ${JSON.stringify(seenConditions)}`);
      });
      const settled = gatewayJson();
      expect(
        settled.metadata.managedFields
          .filter((m) => m.subresource === "status")
          .map((m) => m.manager)
          .sort(),
      ).toEqual(["rigger-istiod", "rigger-operator"]);
      // The other listeners keep working while two are bad: the HTTPS one answered 10/10 above.
      // No write loop between the two writers: the Gateway stays at one version.
      await new Promise((r) => setTimeout(r, 5_000));
      expect(gatewayJson().metadata.resourceVersion).toBe(settled.metadata.resourceVersion);
      // The missing Secret created: its listener turns ResolvedRefs=True and is served.
      const later = await issueCertificate(ca, {
        commonName: "later.example.com",
        dnsNames: ["later.example.com"],
        usages: ["server"],
        validDays: 1,
      });
      const created = Date.now();
      applyObjects([tlsSecret("later-cert", KUBE_GW, later)]);
      await waitFor("https-later ResolvedRefs=True", async () =>
        certificateConditions(gatewayJson().status)["https-later"]?.includes("ResolvedRefs=True ResolvedRefs: No errors found")
          ? true
          : undefined,
      );
      measured["Gateway API: a listener's missing Secret created → ResolvedRefs=True"] =
        `${((Date.now() - created) / 1000).toFixed(1)} s`;
      await waitFor("later.example.com served with its certificate", async () =>
        handshake(ip, "later.example.com").fingerprint === new X509Certificate(later.certPem).fingerprint256 ? true : undefined,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
      removeGatewayApi();
    }
  });

  test("no packet left the machine", () => {
    expect(droppedPackets()).toBe(0);
  });
});
