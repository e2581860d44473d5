// The local cluster's certificates and kubeconfigs, written to files the components read.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { createCertificateAuthority, createSigningKeyPair, issueCertificate, type PemPair } from "../../pki/certificates.ts";

const VALID_DAYS = 365;

/** Where each credential lives. Paths only, so callers can use them without regenerating. */
export function pkiPaths(dir: string) {
  const pair = (name: string) => ({ cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) });
  return {
    dir,
    ca: pair("ca"),
    etcdServer: pair("etcd-server"),
    etcdClient: pair("etcd-client"),
    apiserver: pair("apiserver"),
    admin: pair("admin"),
    controllerManager: pair("controller-manager"),
    controllerManagerServing: pair("controller-manager-serving"),
    scheduler: pair("scheduler"),
    schedulerServing: pair("scheduler-serving"),
    serviceAccount: { key: join(dir, "sa.key"), pub: join(dir, "sa.pub") },
    // The real node: kubelet (client and serving), kube-proxy, CoreDNS, and the apiserver's
    // client certificate for kubelets (logs, exec).
    kubelet: pair("kubelet"),
    kubeletServing: pair("kubelet-serving"),
    kubeProxy: pair("kube-proxy"),
    coredns: pair("coredns"),
    apiserverKubeletClient: pair("apiserver-kubelet-client"),
  };
}

export type PkiPaths = ReturnType<typeof pkiPaths>;

/**
 * Generates a fresh CA and every certificate the cluster needs. Client identities
 * follow Kubernetes' bootstrap RBAC (system:kube-controller-manager, system:kube-scheduler),
 * so only the admin is in system:masters.
 */
export async function writeClusterPki(dir: string, node: { name: string; ip: string }): Promise<PkiPaths> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const paths = pkiPaths(dir);
  const ca = await createCertificateAuthority("rigger-local-cluster-ca", VALID_DAYS);
  writePair(paths.ca, ca);
  const loopback = { dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] };
  const issue = async (to: { cert: string; key: string }, request: Parameters<typeof issueCertificate>[1]) =>
    writePair(to, await issueCertificate(ca, request));

  await issue(paths.etcdServer, { commonName: "etcd", ...loopback, usages: ["server", "client"], validDays: VALID_DAYS });
  await issue(paths.etcdClient, { commonName: "kube-apiserver-etcd-client", usages: ["client"], validDays: VALID_DAYS });
  await issue(paths.apiserver, {
    commonName: "kube-apiserver",
    dnsNames: ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"],
    ipAddresses: ["127.0.0.1", "10.96.0.1", node.ip],
    usages: ["server"],
    validDays: VALID_DAYS,
  });
  await issue(paths.admin, { commonName: "admin", organizations: ["system:masters"], usages: ["client"], validDays: VALID_DAYS });
  await issue(paths.controllerManager, {
    commonName: "system:kube-controller-manager",
    usages: ["client"],
    validDays: VALID_DAYS,
  });
  await issue(paths.scheduler, { commonName: "system:kube-scheduler", usages: ["client"], validDays: VALID_DAYS });
  await issue(paths.controllerManagerServing, {
    commonName: "kube-controller-manager",
    ...loopback,
    usages: ["server"],
    validDays: VALID_DAYS,
  });
  await issue(paths.schedulerServing, { commonName: "kube-scheduler", ...loopback, usages: ["server"], validDays: VALID_DAYS });

  // Names as Kubernetes' bootstrap RBAC expects them: the Node authorizer for the kubelet,
  // system:node-proxier for kube-proxy. CoreDNS and the apiserver's kubelet client get
  // ClusterRoleBindings from the cluster set-up (real-node.ts).
  await issue(paths.kubelet, {
    commonName: `system:node:${node.name}`,
    organizations: ["system:nodes"],
    usages: ["client"],
    validDays: VALID_DAYS,
  });
  await issue(paths.kubeletServing, {
    commonName: `system:node:${node.name}`,
    dnsNames: [node.name],
    ipAddresses: [node.ip],
    usages: ["server"],
    validDays: VALID_DAYS,
  });
  await issue(paths.kubeProxy, { commonName: "system:kube-proxy", usages: ["client"], validDays: VALID_DAYS });
  await issue(paths.coredns, { commonName: "rigger:coredns", usages: ["client"], validDays: VALID_DAYS });
  await issue(paths.apiserverKubeletClient, {
    commonName: "kube-apiserver-kubelet-client",
    usages: ["client"],
    validDays: VALID_DAYS,
  });

  const sa = await createSigningKeyPair();
  writeFileSync(paths.serviceAccount.key, sa.privateKeyPem, { mode: 0o600 });
  writeFileSync(paths.serviceAccount.pub, sa.publicKeyPem);
  return paths;
}

function writePair(to: { cert: string; key: string }, pair: PemPair): void {
  writeFileSync(to.cert, pair.certPem);
  writeFileSync(to.key, pair.keyPem, { mode: 0o600 });
}

/** A kubeconfig with the CA and client credentials embedded, so it works from any directory. */
export function kubeconfigYaml(server: string, caPem: string, client: PemPair, user: string): string {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "rigger-local", cluster: { server, "certificate-authority-data": b64(caPem) } }],
    users: [{ name: user, user: { "client-certificate-data": b64(client.certPem), "client-key-data": b64(client.keyPem) } }],
    contexts: [{ name: "rigger-local", context: { cluster: "rigger-local", user } }],
    "current-context": "rigger-local",
  });
}
