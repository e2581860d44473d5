// A real Kubernetes on 127.0.0.1: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler built from source (see build.sh), and KWOK faking one node so pods
// are scheduled and become Running and Ready without a kubelet or container runtime.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { versions } from "../../versions.ts";
import { kubeconfigYaml, type PkiPaths, pkiPaths, writeClusterPki } from "./cluster-pki.ts";
import { forgetTracked, isOurs, readTracked, sleep, startTracked, stopAll } from "./processes.ts";

export const ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const CACHE = join(ROOT, ".cache");
export const CLUSTER_DIR = join(CACHE, "cluster");
/** The admin kubeconfig: a fixed, git-ignored path. */
export const KUBECONFIG = join(CLUSTER_DIR, "admin.kubeconfig");
const STATE_FILE = join(CLUSTER_DIR, "processes.json");
const LOG_DIR = join(CLUSTER_DIR, "logs");

/** Every port the cluster listens on, all on 127.0.0.1. Chosen away from the components' defaults. */
export const PORTS = {
  etcdClient: 23790,
  etcdPeer: 23800,
  apiserver: 26443,
  controllerManager: 20257,
  scheduler: 20259,
} as const;

const NODE_NAME = "kwok-node-0";
const SERVICE_CIDR = "10.96.0.0/16";
const POD_CIDR = "10.244.0.1/16";

export const binaries = {
  etcd: join(CACHE, "bin", `etcd-v${versions.etcd}`, "etcd"),
  kubeApiserver: join(CACHE, "bin", `kubernetes-v${versions.kubernetes}`, "kube-apiserver"),
  kubeControllerManager: join(CACHE, "bin", `kubernetes-v${versions.kubernetes}`, "kube-controller-manager"),
  kubeScheduler: join(CACHE, "bin", `kubernetes-v${versions.kubernetes}`, "kube-scheduler"),
  kubectl: join(CACHE, "bin", `kubernetes-v${versions.kubernetes}`, "kubectl"),
  kwok: join(CACHE, "bin", `kwok-v${versions.kwok}`, "kwok"),
  /** Not a binary: the Gateway API's standard CRDs, taken from its Go module by build.sh. */
  gatewayApiCrds: join(CACHE, "bin", `gateway-api-v${versions.gatewayApi}`, "standard-install.yaml"),
};

export class ClusterError extends Error {}

/** Runs build.sh, which builds whatever binary is missing and returns at once when all are cached. */
export function buildBinaries(): void {
  try {
    execFileSync("bash", [join(ROOT, "e2e/cluster/build.sh"), "all"], { stdio: ["ignore", "inherit", "inherit"] });
  } catch {
    throw new ClusterError("building the cluster binaries failed (the build printed why above)");
  }
}

export interface UpResult {
  kubeconfig: string;
  /** False when a healthy cluster was already running and was reused. */
  started: boolean;
}

/** Starts the cluster, or reuses one that is already running and healthy. */
export async function up(log: (line: string) => void = console.log): Promise<UpResult> {
  for (const [name, path] of Object.entries(binaries)) {
    if (!existsSync(path)) throw new ClusterError(`${name} is not built (${path} is missing); run: make cluster-build`);
  }
  const running = readTracked(STATE_FILE);
  if (running.length > 0 && running.every(isOurs) && (await apiserverReady())) {
    log(`cluster already running; kubeconfig: ${KUBECONFIG}`);
    return { kubeconfig: KUBECONFIG, started: false };
  }
  // Leftovers of a crashed run: stop what is still ours and start clean.
  await stopAll(STATE_FILE);
  await assertPortsFree();
  rmSync(CLUSTER_DIR, { recursive: true, force: true });
  mkdirSync(LOG_DIR, { recursive: true });

  const t0 = Date.now();
  const pki = await writeClusterPki(join(CLUSTER_DIR, "pki"));
  const caPem = readFileSync(pki.ca.cert, "utf8");
  const server = `https://127.0.0.1:${PORTS.apiserver}`;
  const kubeconfigFor = (pair: { cert: string; key: string }, user: string, file: string) => {
    const path = join(CLUSTER_DIR, file);
    const client = { certPem: readFileSync(pair.cert, "utf8"), keyPem: readFileSync(pair.key, "utf8") };
    writeFileSync(path, kubeconfigYaml(server, caPem, client, user), { mode: 0o600 });
    return path;
  };
  kubeconfigFor(pki.admin, "admin", "admin.kubeconfig");
  const cmKubeconfig = kubeconfigFor(pki.controllerManager, "system:kube-controller-manager", "controller-manager.kubeconfig");
  const schedKubeconfig = kubeconfigFor(pki.scheduler, "system:kube-scheduler", "scheduler.kubeconfig");

  try {
    start("etcd", binaries.etcd, etcdArgs(pki));
    await waitFor("etcd", () => healthy(`https://127.0.0.1:${PORTS.etcdClient}/health`, pki, pki.etcdClient), 30_000);
    start("kube-apiserver", binaries.kubeApiserver, apiserverArgs(pki));
    await waitFor("kube-apiserver", apiserverReady, 90_000);
    start("kube-controller-manager", binaries.kubeControllerManager, controllerManagerArgs(pki, cmKubeconfig));
    start("kube-scheduler", binaries.kubeScheduler, schedulerArgs(pki, schedKubeconfig));
    start("kwok", binaries.kwok, kwokArgs());
    await waitFor("kube-controller-manager", () => healthy(`https://127.0.0.1:${PORTS.controllerManager}/healthz`, pki), 60_000);
    await waitFor("kube-scheduler", () => healthy(`https://127.0.0.1:${PORTS.scheduler}/healthz`, pki), 60_000);
    kubectl(["apply", "-f", "-"], JSON.stringify(fakeNode()));
    await waitFor("kwok", nodeReady, 60_000);
  } catch (err) {
    await stopAll(STATE_FILE);
    throw err;
  }
  log(
    `cluster up in ${((Date.now() - t0) / 1000).toFixed(1)}s: Kubernetes v${versions.kubernetes}, etcd v${versions.etcd}, kwok v${versions.kwok}`,
  );
  log(`kubeconfig: ${KUBECONFIG}`);
  return { kubeconfig: KUBECONFIG, started: true };
}

/** Stops every process this harness started and removes the cluster's state. */
export async function down(log: (line: string) => void = console.log): Promise<void> {
  const stopped = await stopAll(STATE_FILE);
  rmSync(join(CLUSTER_DIR, "etcd"), { recursive: true, force: true });
  log(stopped.length > 0 ? `stopped ${stopped.join(", ")}` : "no cluster process was running");
}

/**
 * Stops the running kube-apiserver and starts it again with the same flags (for tests of
 * clients that must survive it). Resolves once it is ready; returns how long it was away.
 */
export async function restartApiserver(): Promise<{ unavailableMs: number }> {
  const apiserver = readTracked(STATE_FILE).find((p) => p.name === "kube-apiserver" && isOurs(p));
  if (!apiserver) throw new ClusterError("no kube-apiserver of the local cluster is running");
  const t0 = Date.now();
  // A graceful stop waits up to a minute for open watches to drain; a few seconds are
  // enough to show clients the server going away, then it is killed as a crash would.
  process.kill(apiserver.pid, "SIGTERM");
  const deadline = Date.now() + 3000;
  while (isOurs(apiserver) && Date.now() < deadline) await sleep(50);
  if (isOurs(apiserver)) process.kill(apiserver.pid, "SIGKILL");
  while (isOurs(apiserver)) await sleep(20);
  forgetTracked(STATE_FILE, apiserver.pid);
  start("kube-apiserver", binaries.kubeApiserver, apiserverArgs(pkiPaths(join(CLUSTER_DIR, "pki"))));
  await waitFor("kube-apiserver", apiserverReady, 90_000);
  return { unavailableMs: Date.now() - t0 };
}

export interface ComponentStatus {
  name: string;
  pid: number;
  running: boolean;
  log: string;
}

export async function status(): Promise<{ components: ComponentStatus[]; apiserverReady: boolean; kubeconfig: string }> {
  const components = readTracked(STATE_FILE).map((p) => ({ name: p.name, pid: p.pid, running: isOurs(p), log: p.log }));
  return { components, apiserverReady: components.length > 0 && (await apiserverReady()), kubeconfig: KUBECONFIG };
}

/** Runs the cluster's own kubectl against it; returns stdout. */
export function kubectl(args: string[], input?: string): string {
  return execFileSync(binaries.kubectl, ["--kubeconfig", KUBECONFIG, ...args], {
    input,
    encoding: "utf8",
    stdio: ["pipe", "pipe", "pipe"],
  });
}

function start(name: string, binary: string, args: string[]): void {
  startTracked(STATE_FILE, name, binary, args, join(LOG_DIR, `${name}.log`));
}

function etcdArgs(pki: PkiPaths): string[] {
  const client = `https://127.0.0.1:${PORTS.etcdClient}`;
  const peer = `https://127.0.0.1:${PORTS.etcdPeer}`;
  return [
    "--name=rigger",
    `--data-dir=${join(CLUSTER_DIR, "etcd")}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=rigger=${peer}`,
    `--cert-file=${pki.etcdServer.cert}`,
    `--key-file=${pki.etcdServer.key}`,
    `--trusted-ca-file=${pki.ca.cert}`,
    "--client-cert-auth=true",
    `--peer-cert-file=${pki.etcdServer.cert}`,
    `--peer-key-file=${pki.etcdServer.key}`,
    `--peer-trusted-ca-file=${pki.ca.cert}`,
    "--peer-client-cert-auth=true",
    "--listen-metrics-urls=",
    // A throwaway test cluster: durability is not worth an fsync per write.
    "--unsafe-no-fsync=true",
  ];
}

function apiserverArgs(pki: PkiPaths): string[] {
  return [
    `--etcd-servers=https://127.0.0.1:${PORTS.etcdClient}`,
    `--etcd-cafile=${pki.ca.cert}`,
    `--etcd-certfile=${pki.etcdClient.cert}`,
    `--etcd-keyfile=${pki.etcdClient.key}`,
    "--bind-address=127.0.0.1",
    "--advertise-address=127.0.0.1",
    `--secure-port=${PORTS.apiserver}`,
    // The endpoint reconciler refuses a loopback advertise address.
    "--endpoint-reconciler-type=none",
    `--cert-dir=${pki.dir}`,
    `--tls-cert-file=${pki.apiserver.cert}`,
    `--tls-private-key-file=${pki.apiserver.key}`,
    `--client-ca-file=${pki.ca.cert}`,
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    `--service-account-key-file=${pki.serviceAccount.pub}`,
    `--service-account-signing-key-file=${pki.serviceAccount.key}`,
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    "--authorization-mode=Node,RBAC",
    "--allow-privileged=true",
    "--profiling=false",
  ];
}

function controllerManagerArgs(pki: PkiPaths, kubeconfig: string): string[] {
  return [
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    "--bind-address=127.0.0.1",
    `--secure-port=${PORTS.controllerManager}`,
    `--tls-cert-file=${pki.controllerManagerServing.cert}`,
    `--tls-private-key-file=${pki.controllerManagerServing.key}`,
    "--leader-elect=false",
    "--use-service-account-credentials=true",
    `--root-ca-file=${pki.ca.cert}`,
    `--service-account-private-key-file=${pki.serviceAccount.key}`,
    `--cluster-signing-cert-file=${pki.ca.cert}`,
    `--cluster-signing-key-file=${pki.ca.key}`,
    "--profiling=false",
  ];
}

function schedulerArgs(pki: PkiPaths, kubeconfig: string): string[] {
  return [
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    "--bind-address=127.0.0.1",
    `--secure-port=${PORTS.scheduler}`,
    `--tls-cert-file=${pki.schedulerServing.cert}`,
    `--tls-private-key-file=${pki.schedulerServing.key}`,
    "--leader-elect=false",
    "--profiling=false",
  ];
}

function kwokArgs(): string[] {
  return [
    `--kubeconfig=${KUBECONFIG}`,
    "--manage-all-nodes=false",
    "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
    `--cidr=${POD_CIDR}`,
    // The fake node's address is loopback, so nothing that follows it leaves the machine.
    "--node-ip=127.0.0.1",
    "--node-lease-duration-seconds=40",
  ];
}

/** The one fake node. No taint, so ordinary workloads schedule on it unchanged. */
function fakeNode(): object {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name: NODE_NAME,
      annotations: { "kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0" },
      labels: {
        type: "kwok",
        "kubernetes.io/hostname": NODE_NAME,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node-role.kubernetes.io/agent": "",
      },
    },
    status: {
      allocatable: { cpu: "32", memory: "256Gi", pods: "250" },
      capacity: { cpu: "32", memory: "256Gi", pods: "250" },
    },
  };
}

async function assertPortsFree(): Promise<void> {
  for (const [component, port] of Object.entries(PORTS)) {
    const free = await new Promise<boolean>((done) => {
      const probe = createServer();
      probe.once("error", () => done(false));
      probe.listen(port, "127.0.0.1", () => probe.close(() => done(true)));
    });
    if (!free) {
      throw new ClusterError(
        `port ${port} (${component}) is already in use on 127.0.0.1; another cluster or program holds it. ` +
          "Stop it (make cluster-down stops ours), or free the port, and try again.",
      );
    }
  }
}

async function apiserverReady(): Promise<boolean> {
  const pki = pkiPaths(join(CLUSTER_DIR, "pki"));
  if (!existsSync(pki.admin.cert)) return false;
  return healthy(`https://127.0.0.1:${PORTS.apiserver}/readyz`, pki, pki.admin);
}

function nodeReady(): Promise<boolean> {
  try {
    const out = kubectl(["get", "node", NODE_NAME, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}"]);
    return Promise.resolve(out.trim() === "True");
  } catch {
    return Promise.resolve(false);
  }
}

/** GET `url` over TLS verified against the cluster CA; true on HTTP 200. */
function healthy(url: string, pki: PkiPaths, client?: { cert: string; key: string }): Promise<boolean> {
  return new Promise((done) => {
    const req = request(
      url,
      {
        ca: readFileSync(pki.ca.cert),
        cert: client ? readFileSync(client.cert) : undefined,
        key: client ? readFileSync(client.key) : undefined,
        timeout: 2000,
      },
      (res) => {
        res.resume();
        done(res.statusCode === 200);
      },
    );
    req.on("error", () => done(false));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

async function waitFor(component: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const exited = readTracked(STATE_FILE).find((p) => !isOurs(p));
    if (exited) {
      throw new ClusterError(`${exited.name} exited during start-up; last lines of ${exited.log}:\n${tail(exited.log)}`);
    }
    if (await check()) return;
    await sleep(250);
  }
  const log = join(LOG_DIR, `${component}.log`);
  throw new ClusterError(`${component} did not become ready within ${timeoutMs / 1000}s; last lines of ${log}:\n${tail(log)}`);
}

function tail(path: string, lines = 20): string {
  if (!existsSync(path)) return "(no log written)";
  return readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
}
