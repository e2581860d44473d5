// The control plane's serving certificate (webhooks on 15017), signed by its CA, with the
// DNS names of its Services and any extra hosts and IPs (127.0.0.1 for a local control
// plane). Renewed at half its lifetime and swapped into the running server.
import { isIP } from "node:net";
import { type CertificateAuthority, issueCertificate, type PemPair } from "../pki/certificates.ts";

export interface ServingNames {
  namespace: string;
  revision: string;
  /** Extra DNS names or IP addresses. */
  extra?: string[];
  /** Revision tags pointing at this revision: their Services istiod-revision-tag-<tag> are named too. */
  tags?: string[];
}

export function servingDnsNames({ namespace, revision, extra = [], tags = [] }: ServingNames): { dns: string[]; ips: string[] } {
  const services = [
    "istiod",
    ...(revision && revision !== "default" ? [`istiod-${revision}`] : []),
    ...tags.map((tag) => `istiod-revision-tag-${tag}`),
  ];
  const dns = services.flatMap((s) => [`${s}.${namespace}.svc`, `${s}.${namespace}.svc.cluster.local`]);
  return {
    dns: [...dns, ...extra.filter((e) => isIP(e) === 0)],
    ips: extra.filter((e) => isIP(e) !== 0),
  };
}

export async function issueServingCertificate(
  ca: CertificateAuthority,
  names: ServingNames,
  validDays: number,
): Promise<PemPair> {
  const { dns, ips } = servingDnsNames(names);
  return issueCertificate(ca, {
    commonName: dns[0] ?? "istiod",
    dnsNames: dns,
    ipAddresses: ips,
    usages: ["server"],
    validDays,
  });
}
