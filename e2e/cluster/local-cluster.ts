// A real Kubernetes on one machine: etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler built from source (see build.sh); a real node (real-node.ts: containerd, runc,
// kubelet, kube-proxy, CoreDNS) whose pods run on a bridge that never reaches the uplink
// (network.ts); and KWOK faking a second node, where pods become Running and Ready without
// running, for tests that want many of them. Pods go to the KWOK node unless their namespace
// asks for the real one (PodNodeSelector: scheduler.alpha.kubernetes.io/node-selector).
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { archivePath, assertImagesCurrent, recipes } from "../../images/build.ts";
import { versions } from "../../versions.ts";
import { kubeconfigYaml, type PkiPaths, pkiPaths, writeClusterPki } from "./cluster-pki.ts";
import {
  droppedPackets,
  KWOK_POD_CIDR,
  NetworkError,
  NODE_IP,
  networkLeftovers,
  removeKubernetesChains,
  SERVICE_CIDR,
  setUpNetwork,
  tearDownNetwork,
} from "./network.ts";
import { findProcesses, forgetTracked, isOurs, readTracked, sleep, startTracked, stopAll, stopNamed } from "./processes.ts";
import {
  ctr,
  killAllContainers,
  kubeletArgs,
  mountsUnder,
  NODE_PORTS,
  NODE_SELECTOR_ANNOTATION,
  nodeImages,
  nodePaths,
  nodeRbac,
  REAL_NODE_NAME,
  REAL_NODE_SELECTOR,
  removeContainerdRunLeftovers,
  removeKubeletCgroups,
  unmountAll,
  writeNodeConfig,
} from "./real-node.ts";

export const ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const CACHE = join(ROOT, ".cache");
export const CLUSTER_DIR = join(CACHE, "cluster");
/** The admin kubeconfig: a fixed, git-ignored path. */
export const KUBECONFIG = join(CLUSTER_DIR, "admin.kubeconfig");
const STATE_FILE = join(CLUSTER_DIR, "processes.json");
const NETWORK_STATE = join(CACHE, "network-state.json");
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

const NODE = nodePaths(CLUSTER_DIR);

export const binaries = {
  etcd: join(CACHE, "bin", `etcd-v${versions.etcd}`, "etcd"),
  kubeApiserver: join(CACHE, "bin", `kubernetes-v${versions.kubernetes}`, "kube-apiserver"),
  kubeControllerManager: join(CACHE, "bin", `kubernetes-v${versions.kubernetes}`, "kube-controller-manager"),
  kubeScheduler: join(CACHE, "bin", `kubernetes-v${versions.kubernetes}`, "kube-scheduler"),
  kubectl: join(CACHE, "bin", `kubernetes-v${versions.kubernetes}`, "kubectl"),
  kwok: join(CACHE, "bin", `kwok-v${versions.kwok}`, "kwok"),
  kubelet: join(CACHE, "bin", `kubernetes-v${versions.kubernetes}`, "kubelet"),
  kubeProxy: join(CACHE, "bin", `kubernetes-v${versions.kubernetes}`, "kube-proxy"),
  containerd: join(CACHE, "bin", `containerd-v${versions.containerd}`, "containerd"),
  containerdShim: join(CACHE, "bin", `containerd-v${versions.containerd}`, "containerd-shim-runc-v2"),
  ctr: join(CACHE, "bin", `containerd-v${versions.containerd}`, "ctr"),
  coredns: join(CACHE, "bin", `coredns-v${versions.coredns}`, "coredns"),
  /** Not a binary: the Gateway API's standard CRDs, taken from its Go module by build.sh. */
  gatewayApiCrds: join(CACHE, "bin", `gateway-api-v${versions.gatewayApi}`, "standard-install.yaml"),
};

export class ClusterError extends Error {}

/**
 * Runs build.sh, which builds whatever binary is missing and returns at once when all are
 * cached, then images/build.ts, which rebuilds an image archive only when its inputs changed.
 */
export function buildBinaries(): void {
  try {
    execFileSync("bash", [join(ROOT, "e2e/cluster/build.sh"), "all"], { stdio: ["ignore", "inherit", "inherit"] });
  } catch {
    throw new ClusterError("building the cluster binaries failed (the build printed why above)");
  }
  try {
    execFileSync(process.execPath, [join(ROOT, "images/build.ts"), "all"], { stdio: ["ignore", "inherit", "inherit"] });
  } catch {
    throw new ClusterError("building the images failed (the build printed why above)");
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
  assertImagesCurrent();
  const running = readTracked(STATE_FILE);
  if (running.length > 0 && running.every(isOurs) && (await apiserverReady())) {
    importImages(log);
    log(`cluster already running; kubeconfig: ${KUBECONFIG}`);
    return { kubeconfig: KUBECONFIG, started: false };
  }
  // Leftovers of a crashed run: stop what is still ours and start clean.
  await tearDown();
  await assertPortsFree();
  rmSync(CLUSTER_DIR, { recursive: true, force: true });
  mkdirSync(LOG_DIR, { recursive: true });

  const t0 = Date.now();
  const steps: string[] = [];
  const step = (name: string, since: number) => steps.push(`${name} ${((Date.now() - since) / 1000).toFixed(1)}s`);
  try {
    setUpNetwork(NETWORK_STATE, [PORTS.apiserver]);
  } catch (err) {
    throw new ClusterError(err instanceof NetworkError ? err.message : String(err));
  }
  const pki = await writeClusterPki(join(CLUSTER_DIR, "pki"), { name: REAL_NODE_NAME, ip: NODE_IP });
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
  const kubeletKubeconfig = kubeconfigFor(pki.kubelet, `system:node:${REAL_NODE_NAME}`, "kubelet.kubeconfig");
  const kubeProxyKubeconfig = kubeconfigFor(pki.kubeProxy, "system:kube-proxy", "kube-proxy.kubeconfig");
  const corednsKubeconfig = kubeconfigFor(pki.coredns, "rigger:coredns", "coredns.kubeconfig");
  writeAdmissionConfig();
  writeNodeConfig(
    NODE,
    { ca: pki.ca.cert, servingCert: pki.kubeletServing.cert, servingKey: pki.kubeletServing.key },
    { kubeProxy: kubeProxyKubeconfig, coredns: corednsKubeconfig },
  );

  try {
    let t = Date.now();
    start("etcd", binaries.etcd, etcdArgs(pki));
    await waitFor("etcd", () => healthy(`https://127.0.0.1:${PORTS.etcdClient}/health`, pki, pki.etcdClient), 30_000);
    start("kube-apiserver", binaries.kubeApiserver, apiserverArgs(pki));
    await waitFor("kube-apiserver", apiserverReady, 90_000);
    step("control plane", t);
    t = Date.now();
    start("kube-controller-manager", binaries.kubeControllerManager, controllerManagerArgs(pki, cmKubeconfig));
    start("kube-scheduler", binaries.kubeScheduler, schedulerArgs(pki, schedKubeconfig));
    start("kwok", binaries.kwok, kwokArgs());
    // containerd finds its runc shim on PATH; runc and the CNI plugins are Debian's.
    const nodePath = `${dirname(binaries.containerd)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;
    start("containerd", binaries.containerd, ["--config", NODE.containerdConfig], { ...process.env, PATH: nodePath });
    await waitFor("kube-controller-manager", () => healthy(`https://127.0.0.1:${PORTS.controllerManager}/healthz`, pki), 60_000);
    await waitFor("kube-scheduler", () => healthy(`https://127.0.0.1:${PORTS.scheduler}/healthz`, pki), 60_000);
    kubectl(["apply", "-f", "-"], JSON.stringify(fakeNode()));
    await waitFor("kwok", () => nodeReady(NODE_NAME), 60_000);
    step("KWOK node", t);
    t = Date.now();
    await waitFor("containerd", () => Promise.resolve(existsSync(NODE.containerdSocket)), 30_000);
    importImages(log);
    step("images imported", t);
    t = Date.now();
    kubectl(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: nodeRbac() }));
    start("kubelet", binaries.kubelet, kubeletArgs(NODE, kubeletKubeconfig), { ...process.env, PATH: nodePath });
    start("kube-proxy", binaries.kubeProxy, [`--config=${NODE.kubeProxyConfig}`], { ...process.env, PATH: nodePath });
    start("coredns", binaries.coredns, ["-conf", NODE.corefile]);
    await waitFor("kubelet", () => nodeReady(REAL_NODE_NAME), 90_000);
    await waitFor("kube-proxy", () => healthy200(`http://127.0.0.1:${NODE_PORTS.kubeProxyHealthz}/healthz`), 60_000);
    await waitFor("coredns", () => healthy200(`http://127.0.0.1:${NODE_PORTS.corednsReady}/ready`), 60_000);
    step("real node", t);
  } catch (err) {
    await tearDown();
    throw err;
  }
  log(
    `cluster up in ${((Date.now() - t0) / 1000).toFixed(1)}s (${steps.join(", ")}): Kubernetes v${versions.kubernetes}, ` +
      `etcd v${versions.etcd}, containerd v${versions.containerd}, CoreDNS v${versions.coredns}, kwok v${versions.kwok}; ` +
      `nodes ${REAL_NODE_NAME} (real, pods on ${NODE_IP}/24) and ${NODE_NAME} (KWOK, the default)`,
  );
  log(`kubeconfig: ${KUBECONFIG}`);
  return { kubeconfig: KUBECONFIG, started: true };
}

/**
 * Stops every process this harness started and removes what the real node made: containers,
 * mounts, network namespaces, veths, cgroups, kube-proxy's rules, the bridge, routes and guard.
 * Fails listing anything left behind, and when a packet ever tried to leave the machine.
 */
export async function down(log: (line: string) => void = console.log): Promise<void> {
  const dropped = droppedPackets();
  const { stopped, left } = await tearDown();
  rmSync(join(CLUSTER_DIR, "etcd"), { recursive: true, force: true });
  log(stopped.length > 0 ? `stopped ${stopped.join(", ")}` : "no cluster process was running");
  if (left.length > 0) throw new ClusterError(`left behind after cluster-down:\n  ${left.join("\n  ")}`);
  if (dropped > 0) throw new ClusterError(`the network guard dropped ${dropped} packet(s) that tried to leave the machine`);
  log("nothing left behind: no process, mount, network namespace, veth, bridge, route or iptables rule of the cluster");
}

/** Tears the cluster down; returns what it stopped and what is still there. */
async function tearDown(): Promise<{ stopped: string[]; left: string[] }> {
  // kubelet first, so no new pod starts; then the containers (containerd still up), so their
  // shims exit and their mounts can go; then everything else.
  const stopped = await stopNamed(STATE_FILE, "kubelet");
  killAllContainers(binaries.ctr, NODE);
  stopped.push(...(await stopAll(STATE_FILE)));
  // Whatever the node's runtime left running: shims, and processes in the node's pod cgroups.
  for (const pid of [...processesRunning(binaries.containerdShim), ...podProcesses()]) {
    try {
      process.kill(pid, "SIGKILL");
      stopped.push(`pid ${pid} (${readFileSync(`/proc/${pid}/comm`, "utf8").trim()})`);
    } catch {}
  }
  for (let i = 0; i < 50 && podProcesses().length > 0; i++) await sleep(100);
  if (existsSync(binaries.kubeProxy) && existsSync(NETWORK_STATE)) {
    try {
      execFileSync(binaries.kubeProxy, ["--cleanup"], { stdio: "ignore" });
    } catch {}
  }
  removeKubernetesChains();
  unmountAll(CLUSTER_DIR);
  removeContainerdRunLeftovers();
  const cgroupsLeft = removeKubeletCgroups();
  tearDownNetwork(NETWORK_STATE);
  rmSync(NETWORK_STATE, { force: true });
  const left = [
    ...mountsUnder(CLUSTER_DIR).map((m) => `mount ${m}`),
    ...processesRunning(binaries.containerdShim).map((pid) => `process ${pid} (containerd-shim-runc-v2)`),
    ...podProcesses().map((pid) => `process ${pid} in a pod cgroup`),
    ...cgroupsLeft.map((c) => `cgroup ${c}`),
    ...networkLeftovers(),
  ];
  const netns = join(NODE.containerdState, "netns");
  if (existsSync(netns)) {
    for (const name of readdirSync(netns)) left.push(`network namespace ${join(netns, name)}`);
  }
  return { stopped, left };
}

/** PIDs of processes in the real node's pod cgroups (kubelet puts every pod under /kubepods). */
function podProcesses(): number[] {
  return findProcesses((pid) => /^\d+:[^:]*:\/kubepods(\/|$)/m.test(readFileSync(`/proc/${pid}/cgroup`, "utf8")));
}

/** PIDs of running processes whose executable is `binary`. */
function processesRunning(binary: string): number[] {
  return findProcesses((pid) => readlinkSync(`/proc/${pid}/exe`) === binary);
}

/**
 * Imports every image archive into the node's containerd unless it already holds that exact
 * manifest; fails naming an image whose archive is missing.
 */
export function importImages(log: (line: string) => void = console.log): void {
  const held = nodeImages(binaries.ctr, NODE);
  for (const recipe of recipes) {
    const archive = archivePath(recipe);
    if (!existsSync(archive)) throw new ClusterError(`image ${recipe.name} is not built (${archive}); run: make images`);
    const index = JSON.parse(execFileSync("tar", ["-xOf", archive, "./index.json"], { encoding: "utf8" })) as {
      manifests: { digest: string }[];
    };
    const digest = index.manifests[0]?.digest;
    if (held.get(recipe.name) === digest) continue;
    const t = Date.now();
    try {
      ctr(binaries.ctr, NODE, ["images", "import", archive]);
    } catch (err) {
      throw new ClusterError(`importing ${recipe.name} from ${archive} failed: ${(err as { stderr?: string }).stderr ?? err}`);
    }
    if (nodeImages(binaries.ctr, NODE).get(recipe.name) !== digest) {
      throw new ClusterError(`after importing ${archive}, the node has no image ${recipe.name} at ${digest}`);
    }
    log(`imported ${recipe.name} (${((Date.now() - t) / 1000).toFixed(1)}s)`);
  }
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

/**
 * What an Istio on this cluster's real node needs besides the sample: injection pointed at the
 * proxyv2 built here, and no cloud-platform probing by pilot-agent (it would dial the cloud
 * metadata address 169.254.169.254, which the network guard drops and counts).
 */
export const LOCAL_ISTIO_VALUES = {
  global: { hub: "localhost/istio" },
  meshConfig: { defaultConfig: { proxyMetadata: { CLOUD_PLATFORM: "none" } } },
};

/**
 * Creates `namespace` if missing and annotates it so its pods run on the real node. Annotated,
 * not applied: a later `kubectl apply` of the same Namespace (install.yaml has rigger-system)
 * keeps an annotation its last-applied configuration never had.
 */
export function runOnRealNode(namespace: string): void {
  try {
    kubectl(["create", "namespace", namespace]);
  } catch (err) {
    if (!String((err as { stderr?: string }).stderr).includes("AlreadyExists")) throw err;
  }
  kubectl(["annotate", "namespace", namespace, `${NODE_SELECTOR_ANNOTATION}=${REAL_NODE_SELECTOR}`, "--overwrite"]);
}

function start(name: string, binary: string, args: string[], env?: NodeJS.ProcessEnv): void {
  startTracked(STATE_FILE, name, binary, args, join(LOG_DIR, `${name}.log`), env);
}

/**
 * Pods go to the KWOK node unless their namespace names another selector: the existing suites
 * create thousands of pods that must not run, and the real-node flow annotates its namespaces.
 */
function writeAdmissionConfig(): void {
  writeFileSync(
    join(CLUSTER_DIR, "admission.yaml"),
    `apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
  - name: PodNodeSelector
    path: ${join(CLUSTER_DIR, "pod-node-selector.yaml")}
`,
  );
  writeFileSync(
    join(CLUSTER_DIR, "pod-node-selector.yaml"),
    "podNodeSelectorPluginConfig:\n  clusterDefaultNodeSelector: type=kwok\n",
  );
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
    // Every address, so pods reach it at the node's address (the `kubernetes` Service's
    // endpoint); network.ts drops it on any interface but loopback and the cluster's bridge.
    "--bind-address=0.0.0.0",
    `--advertise-address=${NODE_IP}`,
    `--secure-port=${PORTS.apiserver}`,
    `--cert-dir=${pki.dir}`,
    `--tls-cert-file=${pki.apiserver.cert}`,
    `--tls-private-key-file=${pki.apiserver.key}`,
    `--client-ca-file=${pki.ca.cert}`,
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    `--service-account-key-file=${pki.serviceAccount.pub}`,
    `--service-account-signing-key-file=${pki.serviceAccount.key}`,
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    "--authorization-mode=Node,RBAC",
    `--enable-admission-plugins=PodNodeSelector`,
    `--admission-control-config-file=${join(CLUSTER_DIR, "admission.yaml")}`,
    `--kubelet-client-certificate=${pki.apiserverKubeletClient.cert}`,
    `--kubelet-client-key=${pki.apiserverKubeletClient.key}`,
    `--kubelet-certificate-authority=${pki.ca.cert}`,
    "--kubelet-preferred-address-types=InternalIP",
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
    `--cidr=${KWOK_POD_CIDR}`,
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
  // The node's own listeners on 127.0.0.1 too (kubelet's, CoreDNS's and kube-proxy's health ports);
  // the kubelet and DNS ports live on the bridge address, which does not exist until we make it.
  const loopbackNodePorts = Object.entries(NODE_PORTS).filter(([name]) => name !== "kubelet");
  for (const [component, port] of [...Object.entries(PORTS), ...loopbackNodePorts]) {
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

function nodeReady(name: string): Promise<boolean> {
  try {
    const out = kubectl(["get", "node", name, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}"]);
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

/** GET a plain-HTTP health endpoint on 127.0.0.1; true on 200. */
function healthy200(url: string): Promise<boolean> {
  return fetch(url, { signal: AbortSignal.timeout(2000) })
    .then((res) => res.status === 200)
    .catch(() => false);
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
