// The control plane's self-signed CA, kept in Secret istio-ca-secret (keys ca-cert.pem and
// ca-key.pem, as upstream istiod keeps its self-signed root). Replicas starting together
// race to create it; the create that loses (409) reads the winner's, so there is one root.
// The mesh CA issue grows this into the full Citadel role (plugged-in cacerts, rotation).

import { ApiError, type RawClient } from "../controllers/runtime/raw-client.ts";
import { type CertificateAuthority, createCertificateAuthority, loadCertificateAuthority } from "../pki/certificates.ts";

export const CA_SECRET = "istio-ca-secret";
const ROOT_VALID_DAYS = 3650;

interface Secret {
  data?: Record<string, string>;
}

const decode = (value: string | undefined) => (value ? Buffer.from(value, "base64").toString("utf8") : "");

async function readCa(client: RawClient, namespace: string): Promise<CertificateAuthority | undefined> {
  try {
    const secret = await client.get<Secret>(`/api/v1/namespaces/${namespace}/secrets/${CA_SECRET}`);
    const cert = decode(secret.data?.["ca-cert.pem"]);
    const key = decode(secret.data?.["ca-key.pem"]);
    if (!cert || !key) throw new Error(`Secret ${namespace}/${CA_SECRET} lacks ca-cert.pem or ca-key.pem`);
    return await loadCertificateAuthority(cert, key);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return undefined;
    throw err;
  }
}

/** The CA in istio-ca-secret, created (once, whoever wins) when absent. */
export async function loadOrCreateCa(client: RawClient, namespace: string): Promise<CertificateAuthority> {
  const existing = await readCa(client, namespace);
  if (existing) return existing;
  const ca = await createCertificateAuthority("rigger-istiod-ca", ROOT_VALID_DAYS);
  const body = {
    apiVersion: "v1",
    kind: "Secret",
    type: "istio.io/ca-root",
    metadata: { name: CA_SECRET, namespace, labels: { "app.kubernetes.io/managed-by": "rigger" } },
    data: {
      "ca-cert.pem": Buffer.from(ca.certPem).toString("base64"),
      "ca-key.pem": Buffer.from(ca.keyPem).toString("base64"),
    },
  };
  try {
    await client.create(`/api/v1/namespaces/${namespace}/secrets`, body);
    return ca;
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 409)) throw err;
    const winner = await readCa(client, namespace);
    if (!winner) throw new Error(`Secret ${namespace}/${CA_SECRET} exists but could not be read`);
    return winner;
  }
}
