// The mesh CA of `rigger istiod` on the real cluster: workload certificates for real
// ServiceAccount tokens over gRPC, refusals (no token, bad token, wrong audience, expired,
// malformed CSR, too long a TTL), identity taken from the token never the CSR, the root in
// every namespace, a plugged-in CA picked up live, a root re-signed in its grace period, and
// no key or token in the logs.
import { spawnSync } from "node:child_process";
import { createHash, createPrivateKey, sign, X509Certificate } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { rawClient } from "../kube/raw-client.ts";
import { createCertificateAuthority, issueCertificate, signIntermediate } from "../pki/certificates.ts";
import { versions } from "../versions.ts";
import { CLUSTER_DIR } from "./cluster/local-cluster.ts";
import { caClient, csrPem, serviceAccountToken } from "./support/ca-client.ts";
import { type ClusterIstiod, startClusterIstiod } from "./support/cluster-istiod.ts";
import { kubeClients, uniqueName, waitFor } from "./support/kube.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const namespace = uniqueName("rigger-ca");
const appNs = uniqueName("rigger-ca-app");
const { kc, core } = kubeClients();
const client = rawClient(kc);
let logDir = "";
let logFile = "";
let istiod: ClusterIstiod | undefined;
let grpcPort = 0;

async function rootConfigMap(ns: string): Promise<string | undefined> {
  const cm = await core.readNamespacedConfigMap({ name: "istio-ca-root-cert", namespace: ns }).catch(() => undefined);
  return cm?.data?.["root-cert.pem"];
}

async function rootPem(): Promise<string> {
  return waitFor("istio-ca-root-cert", () => rootConfigMap(namespace));
}

async function expectGrpcError(promise: Promise<unknown>, code: grpc.status, message: RegExp) {
  const err = (await promise.then(
    () => undefined,
    (e: grpc.ServiceError) => e,
  )) as grpc.ServiceError | undefined;
  expect(err, "the call should have failed").toBeDefined();
  expect(err?.code).toBe(code);
  expect(err?.details).toMatch(message);
}

beforeAll(async () => {
  for (const name of [namespace, appNs]) await core.createNamespace({ body: { metadata: { name } } });
  await core.createNamespacedServiceAccount({ namespace: appNs, body: { metadata: { name: "web" } } });
  istiod = await startClusterIstiod(inject("kubeconfig"), namespace, ["--root-check-interval=1s", "--log-level=debug"]);
  grpcPort = istiod.grpcPort;
  logFile = istiod.logFile;
  logDir = istiod.dir;
});

afterAll(async () => {
  if (istiod) await istiod.stop();
  for (const name of [namespace, appNs]) await core.deleteNamespace({ name }).catch(() => undefined);
});

describe("workload certificates", () => {
  test("a real ServiceAccount token gets a certificate for its identity, verifying against istio-ca-root-cert", async () => {
    const rootCert = await rootPem();
    const ca = caClient(`127.0.0.1:${grpcPort}`, rootCert, `istiod.${namespace}.svc`);
    try {
      const token = await serviceAccountToken(client, appNs, "web");
      // The CSR asks to be istiod; the certificate must say who the token says.
      const chain = await ca.createCertificate(await csrPem(`spiffe://cluster.local/ns/${namespace}/sa/istiod`), token, 3600);
      expect(chain).toHaveLength(2);
      const leaf = new X509Certificate(chain[0] ?? "");
      expect(leaf.subjectAltName).toBe(`URI:spiffe://cluster.local/ns/${appNs}/sa/web`);
      expect(chain[1]).toBe(rootCert);
      expect(leaf.verify(new X509Certificate(rootCert).publicKey)).toBe(true);
      expect((Date.parse(leaf.validTo) - Date.now()) / 1000).toBeCloseTo(3600, -2);
      // No validity asked: the default, 24 hours.
      const byDefault = new X509Certificate((await ca.createCertificate(await csrPem(), token))[0] ?? "");
      expect((Date.parse(byDefault.validTo) - Date.now()) / 3_600_000).toBeCloseTo(24, 0);
    } finally {
      ca.close();
    }
  });

  test("upstream's own Go CA client (istio-agent's citadel client) gets a certificate that crypto/x509 verifies", async () => {
    const rootFile = join(logDir, "root-cert.pem");
    const tokenFile = join(logDir, "token");
    writeFileSync(rootFile, await rootPem());
    writeFileSync(tokenFile, await serviceAccountToken(client, appNs, "web"), { mode: 0o600 });
    const result = spawnSync(
      caInteropBinary(),
      [
        `--endpoint=127.0.0.1:${grpcPort}`,
        `--san=istiod.${namespace}.svc`,
        `--root=${rootFile}`,
        `--token=${tokenFile}`,
        "--ttl=7200",
      ],
      { encoding: "utf8", timeout: 30_000 },
    );
    expect(result.stderr).toBe("");
    const answer = JSON.parse(result.stdout) as { identity: string; chainLength: number; verified: boolean };
    // The Go client's CSR asks to be istiod; the certificate carries the token's identity.
    expect(answer).toMatchObject({ identity: `spiffe://cluster.local/ns/${appNs}/sa/web`, chainLength: 2, verified: true });
  });

  test("refuses callers it cannot authenticate, malformed CSRs and too long lifetimes", async () => {
    const ca = caClient(`127.0.0.1:${grpcPort}`, await rootPem(), `istiod.${namespace}.svc`);
    try {
      const csr = await csrPem();
      await expectGrpcError(ca.createCertificate(csr, undefined), grpc.status.UNAUTHENTICATED, /no authorization/);
      // Not shaped like a JWT: refused without a TokenReview.
      await expectGrpcError(ca.createCertificate(csr, "not-a-jwt"), grpc.status.UNAUTHENTICATED, /the token is not a JWT/);
      const wrongAudience = await serviceAccountToken(client, appNs, "web", "https://kubernetes.default.svc.cluster.local");
      await expectGrpcError(ca.createCertificate(csr, wrongAudience), grpc.status.UNAUTHENTICATED, /not accepted|audience/);
      const token = await serviceAccountToken(client, appNs, "web");
      await expectGrpcError(
        ca.createCertificate("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", token),
        grpc.status.INVALID_ARGUMENT,
        /CSR/,
      );
      await expectGrpcError(ca.createCertificate(csr, token, 91 * 24 * 3600), grpc.status.INVALID_ARGUMENT, /max allowed TTL/);
    } finally {
      ca.close();
    }
  });

  test.runIf(inject("localCluster"))("refuses an expired token signed with the cluster's own service-account key", async () => {
    const ca = caClient(`127.0.0.1:${grpcPort}`, await rootPem(), `istiod.${namespace}.svc`);
    try {
      const sa = await core.readNamespacedServiceAccount({ name: "web", namespace: appNs });
      const now = Math.floor(Date.now() / 1000);
      const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
      const header = b64({ alg: "ES256", typ: "JWT" });
      const claims = b64({
        iss: "https://kubernetes.default.svc.cluster.local",
        aud: ["istio-ca"],
        sub: `system:serviceaccount:${appNs}:web`,
        iat: now - 7200,
        nbf: now - 7200,
        exp: now - 3600,
        "kubernetes.io": { namespace: appNs, serviceaccount: { name: "web", uid: sa.metadata?.uid } },
      });
      const key = createPrivateKey(readFileSync(join(CLUSTER_DIR, "pki/sa.key")));
      const signature = sign("sha256", Buffer.from(`${header}.${claims}`), { key, dsaEncoding: "ieee-p1363" }).toString(
        "base64url",
      );
      await expectGrpcError(
        ca.createCertificate(await csrPem(), `${header}.${claims}.${signature}`),
        grpc.status.UNAUTHENTICATED,
        /not accepted/,
      );
    } finally {
      ca.close();
    }
  });
});

describe("the root", () => {
  test("is in every namespace, comes back when deleted and is repaired when edited", async () => {
    const rootCert = await rootPem();
    const fresh = uniqueName("rigger-ca-new");
    await core.createNamespace({ body: { metadata: { name: fresh } } });
    try {
      expect(await waitFor("the root in a new namespace", () => rootConfigMap(fresh))).toBe(rootCert);
      await core.deleteNamespacedConfigMap({ name: "istio-ca-root-cert", namespace: fresh });
      expect(await waitFor("the root to come back", () => rootConfigMap(fresh))).toBe(rootCert);
      await core.replaceNamespacedConfigMap({
        name: "istio-ca-root-cert",
        namespace: fresh,
        body: {
          metadata: { name: "istio-ca-root-cert", labels: { "istio.io/config": "true" } },
          data: { "root-cert.pem": "tampered" },
        },
      });
      expect(
        await waitFor("the root to be repaired", async () => ((await rootConfigMap(fresh)) === rootCert ? true : undefined)),
      ).toBe(true);
      // System namespaces upstream skips stay untouched.
      expect(await rootConfigMap("kube-node-lease")).toBeUndefined();
    } finally {
      await core.deleteNamespace({ name: fresh });
    }
  });

  test("in its grace period is re-signed with the same key; certificates it signed before still verify", async () => {
    // A root with 6 minutes of its 66 left (under the 20 % grace), as an older control plane left it.
    const old = await createCertificateAuthority("Root CA", 66 / (24 * 60));
    const leaf = await issueCertificate(old, {
      commonName: "w",
      uris: ["spiffe://cluster.local/ns/a/sa/b"],
      usages: ["client"],
      validDays: 0.001,
    });
    const secret = await core.readNamespacedSecret({ name: "istio-ca-secret", namespace });
    const b64 = (text: string) => Buffer.from(text).toString("base64");
    await core.replaceNamespacedSecret({
      name: "istio-ca-secret",
      namespace,
      body: { ...secret, data: { "ca-cert.pem": b64(old.certPem), "ca-key.pem": b64(old.keyPem) } },
    });
    // The root check runs every second here: the control plane re-signs and distributes the root.
    const oldKey = new X509Certificate(old.certPem).publicKey.export({ format: "der", type: "spki" });
    const renewed = await waitFor("a re-signed root in istio-ca-root-cert", async () => {
      const pem = await rootConfigMap(namespace);
      if (!pem || pem === old.certPem) return undefined;
      const cert = new X509Certificate(pem);
      const sameKey = cert.publicKey.export({ format: "der", type: "spki" }).equals(oldKey);
      return sameKey && Date.parse(cert.validTo) - Date.now() > 3000 * 86_400_000 ? cert : undefined;
    });
    expect(renewed.subject).toBe(new X509Certificate(old.certPem).subject);
    expect(new X509Certificate(leaf.certPem).verify(renewed.publicKey)).toBe(true);
    const stored = await core.readNamespacedSecret({ name: "istio-ca-secret", namespace });
    expect(Buffer.from(stored.data?.["ca-key.pem"] ?? "", "base64").toString()).toBe(old.keyPem);
  });

  test("a plugged-in CA (Secret cacerts) is picked up live: new chains, new root everywhere, caBundle too", async () => {
    const oldRoot = await rootPem();
    // A webhook configuration of this revision (label istio.io/rev=default), selecting no namespace.
    const webhookName = uniqueName("rigger-ca-e2e");
    const webhookPath = `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${webhookName}`;
    await client.create("/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "MutatingWebhookConfiguration",
      metadata: { name: webhookName, labels: { "istio.io/rev": "default" } },
      webhooks: [
        {
          name: "e2e.sidecar-injector.istio.io",
          clientConfig: { url: `https://127.0.0.1:${istiod?.port}/inject` },
          rules: [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"] }],
          namespaceSelector: { matchLabels: { "rigger-e2e-selects": "nothing" } },
          sideEffects: "None",
          admissionReviewVersions: ["v1"],
        },
      ],
    });
    type Mwc = { webhooks: { clientConfig: { caBundle?: string } }[] };
    const caBundle = async () =>
      Buffer.from((await client.get<Mwc>(webhookPath)).webhooks[0]?.clientConfig.caBundle ?? "", "base64").toString();
    expect(await waitFor("caBundle = the current root", async () => ((await caBundle()) === oldRoot ? true : undefined))).toBe(
      true,
    );
    const pluggedRoot = await createCertificateAuthority("Plugged Root", 30);
    const intermediate = await signIntermediate(pluggedRoot, "Plugged Intermediate", 20);
    const b64 = (text: string) => Buffer.from(text).toString("base64");
    await core.createNamespacedSecret({
      namespace,
      body: {
        metadata: { name: "cacerts" },
        data: {
          "ca-cert.pem": b64(intermediate.certPem),
          "ca-key.pem": b64(intermediate.keyPem),
          "root-cert.pem": b64(pluggedRoot.certPem),
          "cert-chain.pem": b64(intermediate.certPem),
        },
      },
    });
    expect(
      await waitFor("the plugged root in istio-ca-root-cert", async () =>
        (await rootConfigMap(appNs))?.trim() === pluggedRoot.certPem.trim() ? true : undefined,
      ),
    ).toBe(true);
    // The gRPC endpoint now presents a certificate from the plugged CA: trust the new root only.
    const ca = caClient(`127.0.0.1:${grpcPort}`, pluggedRoot.certPem, `istiod.${namespace}.svc`);
    try {
      const chain = await waitFor("a certificate from the plugged CA", () =>
        ca.createCertificate(csrPemCache, tokenCache).catch(() => undefined),
      );
      expect(chain).toHaveLength(3);
      expect(chain[1]?.trim()).toBe(intermediate.certPem.trim());
      expect(chain[2]?.trim()).toBe(pluggedRoot.certPem.trim());
      const leaf = new X509Certificate(chain[0] ?? "");
      expect(leaf.verify(new X509Certificate(intermediate.certPem).publicKey)).toBe(true);
      expect(oldRoot).not.toBe(pluggedRoot.certPem);
      expect(
        await waitFor("caBundle = the plugged root", async () =>
          (await caBundle()).trim() === pluggedRoot.certPem.trim() ? true : undefined,
        ),
      ).toBe(true);
    } finally {
      ca.close();
      await client.delete(webhookPath);
    }
  });

  test("rotation to a new root key through a combined trust bundle: no certificate loses trust at any step", async () => {
    const rootA = await createCertificateAuthority("Root A", 30);
    const rootB = await createCertificateAuthority("Root B", 30);
    const intA = await signIntermediate(rootA, "Intermediate A", 20);
    const intB = await signIntermediate(rootB, "Intermediate B", 20);
    const pem = (text: string) => (text.endsWith("\n") ? text : `${text}\n`);
    const b64 = (text: string) => Buffer.from(text).toString("base64");
    const plug = async (roots: string[], signer: typeof intA) => {
      const bundle = roots.map(pem).join("");
      const body = {
        metadata: { name: "cacerts" },
        data: {
          "ca-cert.pem": b64(signer.certPem),
          "ca-key.pem": b64(signer.keyPem),
          "root-cert.pem": b64(bundle),
          "cert-chain.pem": b64(signer.certPem),
        },
      };
      await core.replaceNamespacedSecret({ name: "cacerts", namespace, body });
      await waitFor("the bundle in istio-ca-root-cert", async () => ((await rootConfigMap(appNs)) === bundle ? true : undefined));
      return bundle;
    };
    /** Whether [leaf, intermediate] chains to one of the roots in `bundle`. */
    const trusted = (chain: string[], bundle: string) => {
      const [leaf, intermediate] = chain.map((c) => new X509Certificate(c));
      if (!leaf || !intermediate || !leaf.verify(intermediate.publicKey)) return false;
      return [...bundle.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)].some((m) =>
        intermediate.verify(new X509Certificate(m[0]).publicKey),
      );
    };
    const issue = async (bundle: string) => {
      const ca = caClient(`127.0.0.1:${grpcPort}`, bundle, `istiod.${namespace}.svc`);
      try {
        // Until the control plane has swapped its own serving certificate, the first call may fail TLS.
        return await waitFor("a certificate", () => ca.createCertificate(csrPemCache, tokenCache).catch(() => undefined));
      } finally {
        ca.close();
      }
    };

    const onlyA = await plug([rootA.certPem], intA);
    const leafA = await issue(onlyA);
    expect(trusted(leafA, onlyA)).toBe(true);
    // 1. Trust both roots, still sign with A: old and new certificates are trusted everywhere.
    const both = await plug([rootA.certPem, rootB.certPem], intA);
    expect(trusted(leafA, both)).toBe(true);
    // 2. Sign with B's intermediate, still trusting both: A- and B-signed certificates coexist.
    await plug([rootA.certPem, rootB.certPem], intB);
    const leafB = await issue(both);
    expect(leafB[1]?.trim()).toBe(intB.certPem.trim());
    expect(trusted(leafB, both)).toBe(true);
    expect(trusted(leafA, both)).toBe(true);
    // 3. Once every workload holds a B certificate, drop A.
    const onlyB = await plug([rootB.certPem], intB);
    expect(trusted(await issue(onlyB), onlyB)).toBe(true);
    expect(trusted(leafA, onlyB)).toBe(false);
  });

  test("two replicas starting together end up with one root", async () => {
    const fresh = uniqueName("rigger-ca-race");
    await core.createNamespace({ body: { metadata: { name: fresh } } });
    const replicas: ClusterIstiod[] = [];
    try {
      replicas.push(...(await Promise.all([1, 2].map(() => startClusterIstiod(inject("kubeconfig"), fresh)))));
      const roots = await Promise.all(
        replicas.map(({ logFile: log }) =>
          waitFor(
            "a replica's CA",
            async () => /"source":"istio-ca-secret","root":"([^"]+)"/.exec(readFileSync(log, "utf8"))?.[1],
            {
              timeoutMs: 30_000,
            },
          ),
        ),
      );
      expect(roots[0]).toBe(roots[1]);
      const secret = await core.readNamespacedSecret({ name: "istio-ca-secret", namespace: fresh });
      const stored = new X509Certificate(Buffer.from(secret.data?.["ca-cert.pem"] ?? "", "base64").toString());
      expect(stored.fingerprint256).toBe(roots[0]);
    } finally {
      await Promise.all(replicas.map((r) => r.stop()));
      await core.deleteNamespace({ name: fresh });
    }
  });

  test("the serving certificate is renewed at the configured fraction of its life and swapped without a restart", async () => {
    const fresh = uniqueName("rigger-ca-renew");
    await core.createNamespace({ body: { metadata: { name: fresh } } });
    const renewing = await startClusterIstiod(inject("kubeconfig"), fresh, [
      "--serving-cert-ttl=60s",
      "--serving-cert-renew-fraction=0.05",
    ]);
    try {
      const served = () =>
        new Promise<{ serial: string; validTo: string }>((resolve, reject) => {
          // Only the certificate is looked at here; its chain is verified by the other tests.
          const socket = tlsConnect({ host: "127.0.0.1", port: renewing.port, rejectUnauthorized: false }, () => {
            const cert = socket.getPeerCertificate();
            socket.destroy();
            resolve({ serial: cert.serialNumber, validTo: cert.valid_to });
          });
          socket.on("error", reject);
        });
      const first = await served();
      expect((Date.parse(first.validTo) - Date.now()) / 1000).toBeLessThanOrEqual(61);
      const renewed = await waitFor(
        "a renewed serving certificate",
        async () => {
          const now = await served();
          return now.serial !== first.serial ? now : undefined;
        },
        { timeoutMs: 20_000 },
      );
      expect(renewed.serial).not.toBe(first.serial);
      expect(renewing.process.exitCode).toBeNull();
    } finally {
      await renewing.stop();
      await core.deleteNamespace({ name: fresh });
    }
  });

  test("no CA key and no token ever appears in the control plane's log", async () => {
    const log = readFileSync(logFile, "utf8");
    const secret = await core.readNamespacedSecret({ name: "istio-ca-secret", namespace });
    const keyPem = Buffer.from(secret.data?.["ca-key.pem"] ?? "", "base64").toString();
    const keyBody = keyPem
      .split("\n")
      .filter((l) => l && !l.startsWith("-----"))
      .join("");
    expect(keyBody.length).toBeGreaterThan(40);
    expect(log).not.toContain(keyBody.slice(0, 40));
    expect(log).not.toMatch(/PRIVATE KEY/);
    expect(log).not.toContain(tokenCache.slice(0, 40));
    expect(log).not.toMatch(/eyJhbGciOi/); // the start of every JWT
    expect(log).toContain("certificate request not authenticated"); // the refusals were logged, without their tokens
  });
});

/** e2e/cluster/build.sh builds it into a folder keyed by the source's hash. */
function caInteropBinary(): string {
  const hash = createHash("sha256")
    .update(readFileSync(join(root, "e2e/ca-interop/main.go")))
    .digest("hex")
    .slice(0, 12);
  return join(root, ".cache/bin", `ca-interop-${versions.istio}-${hash}`, "rigger-ca-interop");
}

let tokenCache = "";
let csrPemCache = "";
beforeAll(async () => {
  tokenCache = await serviceAccountToken(client, appNs, "web");
  csrPemCache = await csrPem();
});
