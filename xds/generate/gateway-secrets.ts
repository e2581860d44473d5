// The certificates of gateways' HTTPS servers (`credentialName`): Kubernetes Secrets istiod serves
// over SDS (resources `kubernetes://<name>` and `kubernetes://<name>-cacert`), as upstream's
// SecretGen does, only to the gateways allowed to read them:
// - a Secret is served to a gateway pod only when one of the Gateways selecting it names it,
//   that Gateway lives in the pod's namespace and so does the Secret (upstream's rule without
//   the Gateway API's ReferenceGrants);
// - the certificate is the Secret's `tls.crt` and `tls.key` (or `cert` and `key`); a MUTUAL
//   server's CA is the Secret `<name>-cacert`'s `ca.crt` (or `cacert`), else the Secret's own.
// - in istiod (`push.secretReaders` set) a `kubernetes://` certificate also needs the gateway
//   to have authenticated (its ServiceAccount token, verified) as a ServiceAccount allowed to
//   list Secrets in its namespace: upstream's SubjectAccessReview, asked by istiod and kept for
//   a while. A CA alone, and a Gateway API listener's certificate (`kubernetes-gateway://`),
//   need not (as upstream).
// A server whose certificate is missing, incomplete or not readable gets no filter chain (the
// port's other servers keep working: Envoy would hold the whole listener back waiting for it).
import type { Secret } from "../envoy/third_party/envoy/extensions/transport_sockets/tls/v3/secret.ts";
import type { MeshProxy } from "../proxy.ts";
import type { PushContext } from "./context.ts";
import { CA_SUFFIX, credentialResource, type GatewayServer, type IstioGateway, mergeGateways } from "./gateway.ts";
import { isConvertedGateway } from "./gateway-api.ts";

/** The parts of a Secret istiod keeps (decoded): what certificates are made of. */
export interface CredentialSecret {
  namespace: string;
  name: string;
  data: Record<string, string>;
  /** Every key the Secret has (names only, sorted), for messages saying what it lacks. */
  keys?: string[];
}

/** The keys istiod keeps of a Secret (the rest is never read, so never held in memory). */
export const CREDENTIAL_KEYS = ["tls.crt", "tls.key", "ca.crt", "cert", "key", "cacert"];

export interface KubeSecret {
  metadata?: { name?: string; namespace?: string };
  data?: Record<string, string>;
}

/** What istiod keeps of a Secret: its certificate keys, decoded from base64; nothing else. */
export function credentialOf(secret: KubeSecret): CredentialSecret {
  const data: Record<string, string> = {};
  for (const key of CREDENTIAL_KEYS) {
    const value = secret.data?.[key];
    if (value) data[key] = Buffer.from(value, "base64").toString("utf8");
  }
  const keys = Object.keys(secret.data ?? {}).sort();
  return { namespace: secret.metadata?.namespace ?? "default", name: secret.metadata?.name ?? "", data, keys };
}

/** Secrets as the push holds them: by `<namespace>/<name>`. */
export function credentialsOf(secrets: KubeSecret[]): Map<string, CredentialSecret> {
  return new Map(secrets.map((s) => credentialOf(s)).map((c) => [`${c.namespace}/${c.name}`, c]));
}

/** The Secrets (`<namespace>/<name>`) Gateways name: a change to one of them is pushed, to others not. */
export function referencedSecrets(gateways: readonly IstioGateway[]): Set<string> {
  const out = new Set<string>();
  for (const gateway of gateways)
    for (const server of gateway.spec?.servers ?? []) {
      const credential = server.tls?.credentialName;
      if (!credential) continue;
      const parsed = parseResource(credentialResource(String(credential)), gateway.metadata?.namespace ?? "default");
      if (!parsed) continue;
      out.add(`${parsed.namespace}/${parsed.name}`);
      out.add(`${parsed.namespace}/${parsed.name}${CA_SUFFIX}`);
    }
  return out;
}

/** `kubernetes://[<namespace>/]<name>[-cacert]` → the Secret it names and whether it asks for the CA. */
function parseResource(resource: string, proxyNamespace: string): { namespace: string; name: string; ca: boolean } | undefined {
  // kubernetes-gateway://<namespace>/<name>: a Gateway API listener's certificateRef.
  const scheme = ["kubernetes://", "kubernetes-gateway://"].find((s) => resource.startsWith(s));
  if (!scheme) return undefined;
  let rest = resource.slice(scheme.length);
  const ca = rest.endsWith(CA_SUFFIX);
  if (ca) rest = rest.slice(0, -CA_SUFFIX.length);
  const slash = rest.indexOf("/");
  return slash < 0
    ? { namespace: proxyNamespace, name: rest, ca }
    : { namespace: rest.slice(0, slash), name: rest.slice(slash + 1), ca };
}

const needsCa = (server: GatewayServer) => server.tls?.mode === "MUTUAL" || server.tls?.mode === "OPTIONAL_MUTUAL";

/**
 * The credential resources a gateway pod may be sent: those its own namespace's Gateways name,
 * in its namespace (`kubernetes://`), or verified by the Gateway API's conversion (`kubernetes-gateway://`).
 */
export function allowedCredentials(push: PushContext, proxy: MeshProxy): Set<string> {
  const allowed = new Set<string>();
  for (const port of mergeGateways(push, proxy)?.ports ?? [])
    for (const { server, gateway } of port.servers) {
      const credential = server.tls?.credentialName;
      if (!credential || !gateway.startsWith(`${proxy.namespace}/`)) continue;
      const resource = credentialResource(credential);
      if (resource.startsWith("kubernetes-gateway://")) {
        // A Gateway API listener's certificate: only from a converted Gateway, which checked it
        // against the Secret namespace's ReferenceGrants (gateway-api.ts); never an Istio Gateway's.
        const source = push.gateways?.find((g) => `${g.metadata?.namespace}/${g.metadata?.name}` === gateway);
        if (!source || !isConvertedGateway(source)) continue;
      } else if (parseResource(resource, proxy.namespace)?.namespace !== proxy.namespace) continue;
      allowed.add(resource);
      if (needsCa(server)) allowed.add(`${resource}${CA_SUFFIX}`);
    }
  return allowed;
}

/** Why this gateway may not be sent Secrets at all (istiod's check of its identity), if it may not. */
function unauthorized(push: PushContext, proxy: MeshProxy): string | undefined {
  if (!push.secretReaders) return undefined;
  const who = proxy.verifiedIdentity;
  if (!who) return "the gateway did not authenticate (Secrets are sent only over the TLS port, to a verified ServiceAccount)";
  if (!push.secretReaders(who))
    return `ServiceAccount ${who.namespace}/${who.serviceAccount} may not list Secrets in ${who.namespace} (SubjectAccessReview)`;
  return undefined;
}

const pick = (data: Record<string, string>, ...keys: string[]) => keys.map((k) => data[k]).find((v) => v);

/** The SDS Secret for a credential resource, or why there is none. */
export function credentialSecret(push: PushContext, proxy: MeshProxy, resource: string): Secret | string {
  if (!allowedCredentials(push, proxy).has(resource))
    return `${resource}: no Gateway in ${proxy.namespace} names it for this gateway (a Secret is served only to gateways of its namespace)`;
  const parsed = parseResource(resource, proxy.namespace);
  if (!parsed) return `${resource}: not a kubernetes:// credential`;
  // As upstream: a Gateway API listener's certificate (kubernetes-gateway://, checked when the
  // Gateway was converted) and a CA alone need no review of the gateway's own rights.
  if (resource.startsWith("kubernetes://") && !parsed.ca) {
    const denied = unauthorized(push, proxy);
    if (denied) return `${resource}: ${denied}`;
  }
  return storedSecret(push, resource, parsed);
}

/** The SDS Secret made of the stored Secret(s) a resource names, or what is missing. */
function storedSecret(
  push: PushContext,
  resource: string,
  parsed: { namespace: string; name: string; ca: boolean },
): Secret | string {
  const secret = push.credentials?.get(`${parsed.namespace}/${parsed.name}`);
  if (parsed.ca) {
    const own = push.credentials?.get(`${parsed.namespace}/${parsed.name}${CA_SUFFIX}`);
    const ca = (own && pick(own.data, "ca.crt", "cacert")) ?? (secret && pick(secret.data, "ca.crt", "cacert"));
    if (!ca)
      return `${resource}: no ca.crt in Secret ${parsed.namespace}/${parsed.name}${CA_SUFFIX} or ${parsed.namespace}/${parsed.name}`;
    return { name: resource, validationContext: { trustedCa: { inlineBytes: Buffer.from(ca) } } };
  }
  if (!secret) return `${resource}: Secret ${parsed.namespace}/${parsed.name} does not exist`;
  const cert = pick(secret.data, "tls.crt", "cert");
  const key = pick(secret.data, "tls.key", "key");
  if (!cert || !key) return `${resource}: Secret ${parsed.namespace}/${parsed.name} has no tls.crt and tls.key`;
  return {
    name: resource,
    tlsCertificate: { certificateChain: { inlineBytes: Buffer.from(cert) }, privateKey: { inlineBytes: Buffer.from(key) } },
  };
}

/**
 * Why a Gateway's terminating servers get no filter chain on any gateway, whoever it is (for
 * istiod's log): a credentialName of another namespace, a Secret missing or without keys.
 * Whether a given gateway may read them is decided per gateway (credentialSecret).
 */
export function credentialProblems(push: PushContext, gateway: IstioGateway): string[] {
  const namespace = gateway.metadata?.namespace ?? "default";
  return (gateway.spec?.servers ?? []).flatMap((server) => {
    const credential = server.tls?.credentialName;
    if (!credential || !["SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL"].includes(String(server.tls?.mode ?? ""))) return [];
    const what = `server ${server.port?.name ?? ""} (port ${server.port?.number})`;
    const resource = credentialResource(String(credential));
    const parsed = parseResource(resource, namespace);
    if (!parsed) return [];
    if (parsed.namespace !== namespace)
      return [`${what}: ${resource}: a Secret of another namespace is not served (no ReferenceGrant support for Istio Gateways)`];
    return [parsed, ...(needsCa(server) ? [{ ...parsed, ca: true }] : [])].flatMap((p) => {
      const secret = storedSecret(push, p.ca ? `${resource}${CA_SUFFIX}` : resource, p);
      return typeof secret === "string" ? [`${what}: ${secret}`] : [];
    });
  });
}

/** Whether a terminating server's credentials can be sent to this gateway now (else its chain is left out). */
export function credentialsReady(push: PushContext, proxy: MeshProxy, server: GatewayServer): boolean {
  const resource = credentialResource(String(server.tls?.credentialName ?? ""));
  const ok = (r: string) => typeof credentialSecret(push, proxy, r) !== "string";
  return ok(resource) && (!needsCa(server) || ok(`${resource}${CA_SUFFIX}`));
}
