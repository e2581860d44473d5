import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, test } from "vitest";
import { parse } from "yaml";
import { kubeconfigYaml, writeClusterPki } from "./cluster-pki.ts";

test("every cluster certificate chains to the generated CA, with the identity its component needs", async () => {
  const paths = await writeClusterPki(mkdtempSync(join(tmpdir(), "rigger-pki-")), { name: "node-a", ip: "10.1.2.3" });
  const ca = new X509Certificate(readFileSync(paths.ca.cert));
  const load = (p: { cert: string }) => new X509Certificate(readFileSync(p.cert));

  const expected: [{ cert: string }, string][] = [
    [paths.admin, "O=system:masters\nCN=admin"],
    [paths.controllerManager, "CN=system:kube-controller-manager"],
    [paths.scheduler, "CN=system:kube-scheduler"],
    [paths.etcdClient, "CN=kube-apiserver-etcd-client"],
    [paths.kubelet, "O=system:nodes\nCN=system:node:node-a"], // what the Node authorizer reads
    [paths.kubeProxy, "CN=system:kube-proxy"], // bound to system:node-proxier by bootstrap RBAC
  ];
  for (const [pair, subject] of expected) {
    const cert = load(pair);
    expect(cert.subject).toBe(subject);
    expect(cert.verify(ca.publicKey)).toBe(true);
  }
  const apiserver = load(paths.apiserver);
  expect(apiserver.checkIP("127.0.0.1")).toBe("127.0.0.1");
  expect(apiserver.checkIP("10.96.0.1")).toBe("10.96.0.1"); // the `kubernetes` Service's ClusterIP
  expect(apiserver.checkHost("kubernetes.default.svc")).toBe("kubernetes.default.svc");
  expect(apiserver.checkIP("10.1.2.3")).toBe("10.1.2.3"); // the node's address, the `kubernetes` endpoint
  expect(load(paths.kubeletServing).checkIP("10.1.2.3")).toBe("10.1.2.3");
  // Private keys are readable by the owner only.
  expect(statSync(paths.ca.key).mode & 0o077).toBe(0);
  expect(statSync(paths.serviceAccount.key).mode & 0o077).toBe(0);
});

test("kubeconfigYaml embeds the server, CA and client credentials", () => {
  const text = kubeconfigYaml("https://127.0.0.1:26443", "CA-PEM", { certPem: "CERT", keyPem: "KEY" }, "admin");
  const config = parse(text);
  expect(config["current-context"]).toBe("rigger-local");
  expect(config.clusters[0].cluster.server).toBe("https://127.0.0.1:26443");
  expect(Buffer.from(config.clusters[0].cluster["certificate-authority-data"], "base64").toString()).toBe("CA-PEM");
  expect(Buffer.from(config.users[0].user["client-key-data"], "base64").toString()).toBe("KEY");
  expect(config.contexts[0].context).toEqual({ cluster: "rigger-local", user: "admin" });
});
