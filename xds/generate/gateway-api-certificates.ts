// A Gateway API listener's certificateRefs, checked as upstream's buildTLS does it, for the
// listener's status: ResolvedRefs (InvalidCertificateRef or RefNotPermitted, upstream's
// messages) and Programmed (Invalid, "Bad TLS configuration") when no reference is usable.
// istiod computes this (it reads Secrets; the operator may not) and writes these two listener
// conditions for TLS-terminating listeners; the operator writes the rest of the status.
//
// One difference from upstream, on purpose: the ReferenceGrant is checked before the Secret is
// looked at, so a Gateway's status never tells whether another namespace's Secret exists or
// holds a valid certificate (upstream reads it first and says "not found" or "malformed").
// Pure: the Gateway, the grants and a Secret lookup in, conditions out.
import { createPrivateKey, X509Certificate } from "node:crypto";
import type { Condition } from "../../kube/conditions.ts";
import { isSecretRef, type KubeGateway, type KubeListener, type ReferenceGrant, secretGranted } from "./gateway-api.ts";
import type { CredentialSecret } from "./gateway-secrets.ts";

export type ListenerCondition = Omit<Condition, "lastTransitionTime" | "observedGeneration">;

/** The listener conditions istiod owns, by type. */
export const CERTIFICATE_CONDITION_TYPES = ["ResolvedRefs", "Programmed"];

/** Whether a listener's certificates are istiod's to judge: TLS Terminate with certificateRefs. */
export function terminatesWithCertificates(listener: KubeListener): boolean {
  const options = listener.tls?.options?.["gateway.istio.io/tls-terminate-mode"];
  return (
    (listener.tls?.mode ?? "Terminate") === "Terminate" &&
    options !== "ISTIO_MUTUAL" &&
    options !== "ISTIO_SIMPLE" &&
    (listener.tls?.certificateRefs?.length ?? 0) > 0
  );
}

type Ref = NonNullable<NonNullable<KubeListener["tls"]>["certificateRefs"]>[number];
type Problem = { reason: string; message: string };

/** upstream's objectReferenceString: `<group>/<kind>/<name>.<namespace>`, unset parts empty. */
const refString = (ref: Ref) => `${ref.group ?? ""}/${ref.kind ?? ""}/${ref.name}.${ref.namespace ?? ""}`;

/** Why a Secret's data is not a certificate and key (upstream's ExtractCertInfo and tls.X509KeyPair), or undefined. */
export function certificateProblem(secret: CredentialSecret): string | undefined {
  const keys = secret.keys ?? Object.keys(secret.data).sort();
  const pair = [
    ["cert", "key"],
    ["tls.crt", "tls.key"],
  ].find(([c, k]) => secret.data[c as string] && secret.data[k as string]);
  if (!pair) {
    const empty = [
      ["cert", "key"],
      ["tls.crt", "tls.key"],
    ].find(([c, k]) => keys.includes(c as string) && keys.includes(k as string));
    if (empty) return `found keys "${empty[0]}" and "${empty[1]}", but they were empty`;
    const found = keys.length < 3 ? keys.join(", ") : `${keys.slice(0, 3).join(", ")}, and ${keys.length - 3} more...`;
    return `found secret, but didn't have expected keys (cert and key) or (tls.crt and tls.key); found: ${found}`;
  }
  const cert = secret.data[pair[0] as string] as string;
  const key = secret.data[pair[1] as string] as string;
  const malformed = (why: string) => `the certificate is malformed: ${why}`;
  if (!cert.includes("-----BEGIN")) return malformed("tls: failed to find any PEM data in certificate input");
  if (!cert.includes("-----BEGIN CERTIFICATE-----"))
    return malformed('tls: failed to find "CERTIFICATE" PEM block in certificate input');
  if (!key.includes("-----BEGIN")) return malformed("tls: failed to find any PEM data in key input");
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    return malformed("x509: malformed certificate");
  }
  try {
    if (!x509.checkPrivateKey(createPrivateKey(key))) return malformed("tls: private key does not match public key");
  } catch {
    return malformed("tls: failed to parse private key");
  }
  return undefined;
}

/** Why one certificateRef cannot be served, or undefined. */
function refProblem(
  gatewayNamespace: string,
  ref: Ref,
  grants: ReferenceGrant[],
  secretOf: (key: string) => CredentialSecret | undefined,
): Problem | undefined {
  const invalid = (message: string) => ({ reason: "InvalidCertificateRef", message });
  if (!isSecretRef(ref)) return invalid(`invalid certificate reference ${refString(ref)}, only secret is allowed`);
  const namespace = ref.namespace ?? gatewayNamespace;
  if (!secretGranted(gatewayNamespace, namespace, ref.name, grants))
    return {
      reason: "RefNotPermitted",
      message: `certificateRef ${ref.name}/${namespace} not accessible to a Gateway in namespace "${gatewayNamespace}" (missing a ReferenceGrant?)`,
    };
  const key = `${namespace}/${ref.name}`;
  const secret = secretOf(key);
  if (!secret) return invalid(`invalid certificate reference ${refString(ref)}, secret ${key} not found`);
  const problem = certificateProblem(secret);
  return problem ? invalid(`invalid certificate reference ${refString(ref)}, ${problem}`) : undefined;
}

/**
 * The ResolvedRefs and Programmed conditions of each TLS-terminating listener with
 * certificateRefs, by listener name. As upstream: more than two references is invalid; the
 * listener is fine while one reference is usable; otherwise the first problem's reason with
 * every problem's message joined by "; ".
 */
export function listenerCertificateConditions(
  gateway: KubeGateway,
  grants: ReferenceGrant[],
  secretOf: (key: string) => CredentialSecret | undefined,
): Map<string, ListenerCondition[]> {
  const namespace = gateway.metadata?.namespace ?? "default";
  const out = new Map<string, ListenerCondition[]>();
  for (const listener of gateway.spec?.listeners ?? []) {
    if (!terminatesWithCertificates(listener)) continue;
    const refs = listener.tls?.certificateRefs ?? [];
    let problem: Problem | undefined;
    if (refs.length > 2)
      problem = { reason: "InvalidCertificateRef", message: "TLS mode can only support up to 2 server certificates" };
    else {
      const problems = refs.map((r) => refProblem(namespace, r, grants, secretOf));
      if (problems.every((p) => p !== undefined) && problems[0])
        problem = { reason: problems[0].reason, message: problems.map((p) => p?.message).join("; ") };
    }
    out.set(
      listener.name,
      problem
        ? [
            { type: "ResolvedRefs", status: "False", ...problem },
            { type: "Programmed", status: "False", reason: "Invalid", message: "Bad TLS configuration" },
          ]
        : [
            { type: "ResolvedRefs", status: "True", reason: "ResolvedRefs", message: "No errors found" },
            { type: "Programmed", status: "True", reason: "Programmed", message: "No errors found" },
          ],
    );
  }
  return out;
}
