// Where the mesh CA's keys come from, as upstream istiod decides it:
//   1. Secret `cacerts` (plugged-in CA): ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem,
//      or the TLS-style tls.crt, tls.key, ca.crt;
//   2. else the self-signed root in Secret `istio-ca-secret` (ca-cert.pem, ca-key.pem), created
//      when absent; two replicas racing to create it end up with the same one (409 → re-read).
import { X509Certificate } from "node:crypto";
import { ApiError, type RawClient } from "../../kube/raw-client.ts";
import {
  type CertificateAuthority,
  createCertificateAuthority,
  type KeyAlgorithm,
  loadCertificateAuthority,
} from "../../pki/certificates.ts";

export const PLUGGED_SECRET = "cacerts";
export const SELF_SIGNED_SECRET = "istio-ca-secret";
export const SELF_SIGNED_ROOT_DAYS = 3650;

export interface KeyCertBundle {
  /** Signs workload and serving certificates. */
  signer: CertificateAuthority;
  /** Certificates between the signer and the root, signer first (empty for a self-signed root). */
  chain: string[];
  /** The trusted roots (root-cert.pem): one, or several during a root change. */
  rootPem: string;
  source: typeof PLUGGED_SECRET | typeof SELF_SIGNED_SECRET;
  /** The Secret's resourceVersion, to write rotations without lost updates. */
  resourceVersion?: string;
}

interface Secret {
  metadata?: { resourceVersion?: string };
  data?: Record<string, string>;
}

const decode = (value: string | undefined) => (value ? Buffer.from(value, "base64").toString("utf8") : "");

/** PEM blocks in `text`, in order. */
export function pemBlocks(text: string): string[] {
  return [...text.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)].map((m) => `${m[0]}\n`);
}

async function readSecret(client: RawClient, namespace: string, name: string): Promise<Secret | undefined> {
  try {
    return await client.get<Secret>(`/api/v1/namespaces/${namespace}/secrets/${name}`);
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 403)) return undefined;
    throw err;
  }
}

/** The bundle a plugged-in `cacerts` Secret describes; errors name the Secret and what is wrong. */
export async function pluggedBundle(secret: Secret, namespace: string): Promise<KeyCertBundle> {
  const data = secret.data ?? {};
  const where = `Secret ${namespace}/${PLUGGED_SECRET}`;
  const cert = decode(data["ca-cert.pem"]) || decode(data["tls.crt"]);
  const key = decode(data["ca-key.pem"]) || decode(data["tls.key"]);
  const root = decode(data["root-cert.pem"]) || decode(data["ca.crt"]);
  if (!cert || !key || !root)
    throw new Error(`${where} needs ca-cert.pem, ca-key.pem and root-cert.pem (or tls.crt, tls.key and ca.crt)`);
  const signer = await loadCertificateAuthority(pemBlocks(cert)[0] ?? cert, key).catch((err: Error) => {
    throw new Error(`${where}: ${err.message}`);
  });
  const roots = pemBlocks(root);
  // cert-chain.pem runs from the signer towards the root; the roots themselves are sent separately.
  const chainText = decode(data["cert-chain.pem"]);
  const rootSet = new Set(roots.map((r) => new X509Certificate(r).fingerprint256));
  const chain = (chainText ? pemBlocks(chainText) : [signer.certPem]).filter(
    (c) => !rootSet.has(new X509Certificate(c).fingerprint256),
  );
  return { signer, chain, rootPem: roots.join(""), source: PLUGGED_SECRET, resourceVersion: secret.metadata?.resourceVersion };
}

async function selfSignedBundle(secret: Secret, namespace: string): Promise<KeyCertBundle> {
  const cert = decode(secret.data?.["ca-cert.pem"]);
  const key = decode(secret.data?.["ca-key.pem"]);
  if (!cert || !key) throw new Error(`Secret ${namespace}/${SELF_SIGNED_SECRET} lacks ca-cert.pem or ca-key.pem`);
  const signer = await loadCertificateAuthority(cert, key);
  return { signer, chain: [], rootPem: cert, source: SELF_SIGNED_SECRET, resourceVersion: secret.metadata?.resourceVersion };
}

function selfSignedSecret(namespace: string, ca: CertificateAuthority, resourceVersion?: string): object {
  return {
    apiVersion: "v1",
    kind: "Secret",
    type: "istio.io/ca-root",
    metadata: { name: SELF_SIGNED_SECRET, namespace, labels: { "app.kubernetes.io/managed-by": "rigger" }, resourceVersion },
    data: {
      "ca-cert.pem": Buffer.from(ca.certPem).toString("base64"),
      "ca-key.pem": Buffer.from(ca.keyPem).toString("base64"),
    },
  };
}

/** The CA's bundle: plugged-in when `cacerts` exists, else the self-signed root (created once when absent). */
export async function loadBundle(client: RawClient, namespace: string, algorithm: KeyAlgorithm): Promise<KeyCertBundle> {
  const plugged = await readSecret(client, namespace, PLUGGED_SECRET);
  if (plugged) return pluggedBundle(plugged, namespace);
  const existing = await readSecret(client, namespace, SELF_SIGNED_SECRET);
  if (existing) return selfSignedBundle(existing, namespace);
  const ca = await createCertificateAuthority("Root CA", SELF_SIGNED_ROOT_DAYS, algorithm, ["cluster.local"]);
  try {
    const created = await client.create<Secret>(`/api/v1/namespaces/${namespace}/secrets`, selfSignedSecret(namespace, ca));
    return {
      signer: ca,
      chain: [],
      rootPem: ca.certPem,
      source: SELF_SIGNED_SECRET,
      resourceVersion: created.metadata?.resourceVersion,
    };
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 409)) throw err;
    const winner = await readSecret(client, namespace, SELF_SIGNED_SECRET);
    if (!winner) throw new Error(`Secret ${namespace}/${SELF_SIGNED_SECRET} exists but could not be read`);
    return selfSignedBundle(winner, namespace);
  }
}

/** Writes a re-signed self-signed root; fails with 409 when another replica rotated first. */
export async function writeSelfSignedRoot(
  client: RawClient,
  namespace: string,
  ca: CertificateAuthority,
  resourceVersion?: string,
): Promise<string | undefined> {
  const written = await client.replace<Secret>(
    `/api/v1/namespaces/${namespace}/secrets/${SELF_SIGNED_SECRET}`,
    selfSignedSecret(namespace, ca, resourceVersion),
  );
  return written.metadata?.resourceVersion;
}

/** Whether a root is inside its grace period: less than `percentile`% of its lifetime left. */
export function inGracePeriod(certPem: string, percentile: number, now = Date.now()): boolean {
  const cert = new X509Certificate(certPem);
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  return to - now < ((to - from) * percentile) / 100;
}
