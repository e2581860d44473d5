// The local cluster's real node, beside the KWOK one: containerd 2 with Debian's runc and CNI
// plugins, kubelet and kube-proxy from the pinned Kubernetes source, CoreDNS for the cluster
// domain only. Pods get addresses on the bridge that network.ts sets up; images come from the
// archives images/build.ts writes, imported into containerd (nothing is ever pulled: every
// registry resolves to a closed port on 127.0.0.1).
//
// The config renderers are pure (unit-tested); start/stop are the thin shell.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { versions } from "../../versions.ts";
import { BRIDGE, NODE_IP, NODE_POD_CIDR, POD_CIDR } from "./network.ts";

export const REAL_NODE_NAME = "rigger-node";
/** The label the real node carries; a namespace annotated with this selector runs its pods there. */
export const REAL_NODE_SELECTOR = "rigger.dev/node=real";
/** Annotation of the PodNodeSelector admission plugin. */
export const NODE_SELECTOR_ANNOTATION = "scheduler.alpha.kubernetes.io/node-selector";
export const CLUSTER_DOMAIN = "cluster.local";
/** Where nothing listens: registries resolve here, so a pull fails at once and on this machine. */
const NO_REGISTRY = "http://127.0.0.1:9";

export const NODE_PORTS = {
  kubelet: 10250,
  kubeletHealthz: 20248,
  kubeProxyHealthz: 20256,
  kubeProxyMetrics: 20249,
  corednsHealth: 20180,
  corednsReady: 20181,
} as const;

export interface NodePaths {
  dir: string;
  containerdRoot: string;
  containerdState: string;
  containerdSocket: string;
  containerdConfig: string;
  registryHosts: string;
  cniConf: string;
  cniData: string;
  kubeletRoot: string;
  kubeletConfig: string;
  podLogs: string;
  resolvConf: string;
  kubeProxyConfig: string;
  corefile: string;
}

export function nodePaths(clusterDir: string): NodePaths {
  const dir = join(clusterDir, "node");
  return {
    dir,
    containerdRoot: join(dir, "containerd", "root"),
    containerdState: join(dir, "containerd", "state"),
    containerdSocket: join(dir, "containerd", "containerd.sock"),
    containerdConfig: join(dir, "containerd", "config.toml"),
    registryHosts: join(dir, "containerd", "certs.d"),
    cniConf: join(dir, "cni", "net.d"),
    cniData: join(dir, "cni", "networks"),
    kubeletRoot: join(dir, "kubelet"),
    kubeletConfig: join(dir, "kubelet-config.yaml"),
    podLogs: join(dir, "pod-logs"),
    resolvConf: join(dir, "resolv.conf"),
    kubeProxyConfig: join(dir, "kube-proxy-config.yaml"),
    corefile: join(dir, "Corefile"),
  };
}

export const CNI_BIN_DIR = "/usr/lib/cni";
export const RUNC = "/usr/sbin/runc";
export const PAUSE_IMAGE = `localhost/pause:${versions.kubernetes}`;

/** containerd 2 (config version 3): its own root, state and socket; CRI with runc, overlayfs, our CNI and sandbox image. */
export function containerdConfig(p: NodePaths): string {
  return `version = 3
root = ${JSON.stringify(p.containerdRoot)}
state = ${JSON.stringify(p.containerdState)}

[grpc]
  address = ${JSON.stringify(p.containerdSocket)}

[ttrpc]
  address = ${JSON.stringify(`${p.containerdSocket}.ttrpc`)}

[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = ${JSON.stringify(PAUSE_IMAGE)}
    [plugins.'io.containerd.cri.v1.images'.registry]
      config_path = ${JSON.stringify(p.registryHosts)}

  [plugins.'io.containerd.cri.v1.runtime']
    # Network namespaces live under the state dir, so teardown finds every one it made.
    netns_mounts_under_state_dir = true
    # These machines withhold CAP_SYS_RESOURCE even from root, so no process may lower its
    # oom_score_adj (kubelet asks -998 for sandboxes): keep containers at containerd's own.
    restrict_oom_score_adj = true
    enable_unprivileged_ports = true
    enable_unprivileged_icmp = true
    enable_cdi = false
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = ${JSON.stringify(RUNC)}
          Root = ${JSON.stringify(join(p.containerdState, "runc"))}
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = [${JSON.stringify(CNI_BIN_DIR)}]
      conf_dir = ${JSON.stringify(p.cniConf)}
      max_conf_num = 1

  [plugins.'io.containerd.grpc.v1.cri']
    disable_tcp_service = true
    stream_server_address = '127.0.0.1'
    stream_server_port = '0'
`;
}

/** Every registry is this closed local port: an image that was not imported fails to pull, here. */
export function registryHostsToml(): string {
  return `# No registry is reachable from this cluster: images are imported, never pulled.\nserver = "${NO_REGISTRY}"\n`;
}

/** The pod network: Debian's bridge and host-local plugins on rigger0, no masquerade, no port mapping. */
export function cniConfig(p: NodePaths): object {
  return {
    cniVersion: "1.0.0",
    name: "rigger",
    plugins: [
      {
        type: "bridge",
        bridge: BRIDGE,
        isGateway: true,
        ipMasq: false,
        hairpinMode: true,
        ipam: {
          type: "host-local",
          dataDir: p.cniData,
          ranges: [[{ subnet: NODE_POD_CIDR, gateway: NODE_IP }]],
          routes: [{ dst: "0.0.0.0/0" }],
        },
      },
      { type: "loopback" },
    ],
  };
}

export function kubeletConfig(p: NodePaths, pki: { ca: string; servingCert: string; servingKey: string }): object {
  return {
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    address: NODE_IP,
    port: NODE_PORTS.kubelet,
    readOnlyPort: 0,
    healthzBindAddress: "127.0.0.1",
    healthzPort: NODE_PORTS.kubeletHealthz,
    tlsCertFile: pki.servingCert,
    tlsPrivateKeyFile: pki.servingKey,
    authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: pki.ca } },
    authorization: { mode: "Webhook" },
    containerRuntimeEndpoint: `unix://${p.containerdSocket}`,
    cgroupDriver: "cgroupfs",
    // This machine mounts cgroup v1; kubelet 1.35+ refuses it unless told.
    failCgroupV1: false,
    failSwapOn: false,
    clusterDNS: [NODE_IP],
    clusterDomain: CLUSTER_DOMAIN,
    // Pods with dnsPolicy Default get this file: cluster DNS again, never the machine's resolver.
    resolvConf: p.resolvConf,
    podCIDR: NODE_POD_CIDR,
    podLogsDir: p.podLogs,
    maxPods: 40,
    serializeImagePulls: false,
    // A test node on a shared disk: evict only when it is really full.
    evictionHard: { "memory.available": "100Mi", "nodefs.available": "2%", "imagefs.available": "2%" },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    // Imported images are never pulled again; none may be garbage-collected.
    imageMinimumGCAge: "8760h",
    staticPodPath: "",
    syncFrequency: "10s",
    fileCheckFrequency: "10s",
    nodeStatusUpdateFrequency: "5s",
    shutdownGracePeriod: "0s",
  };
}

export function kubeProxyConfig(kubeconfig: string): object {
  return {
    apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
    kind: "KubeProxyConfiguration",
    clientConnection: { kubeconfig },
    hostnameOverride: REAL_NODE_NAME,
    mode: "iptables",
    clusterCIDR: POD_CIDR,
    healthzBindAddress: `127.0.0.1:${NODE_PORTS.kubeProxyHealthz}`,
    metricsBindAddress: `127.0.0.1:${NODE_PORTS.kubeProxyMetrics}`,
    // NodePorts only on the bridge, never on the machine's other addresses.
    nodePortAddresses: [NODE_POD_CIDR],
    iptables: { masqueradeAll: false, localhostNodePorts: false },
    // Leave the machine's conntrack sysctls alone.
    conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: "0s", tcpCloseWaitTimeout: "0s" },
  };
}

/** The cluster domain only: no forwarder, so a name outside it is refused and nothing asks the machine's resolver. */
export function corefile(kubeconfig: string): string {
  return `${CLUSTER_DOMAIN}:53 in-addr.arpa:53 {
    bind ${NODE_IP}
    errors
    health 127.0.0.1:${NODE_PORTS.corednsHealth}
    ready 127.0.0.1:${NODE_PORTS.corednsReady}
    kubernetes ${CLUSTER_DOMAIN} in-addr.arpa {
        kubeconfig ${kubeconfig} rigger-local
        pods insecure
    }
    cache 30
    reload
}
`;
}

/** RBAC for the node's components that bootstrap RBAC does not cover (CoreDNS, the apiserver's kubelet client). */
export function nodeRbac(): object[] {
  return [
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: "rigger:coredns" },
      rules: [
        { apiGroups: [""], resources: ["services", "pods", "namespaces"], verbs: ["list", "watch"] },
        { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["list", "watch"] },
      ],
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: "rigger:coredns" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "rigger:coredns" },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "rigger:coredns" }],
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: "rigger:apiserver-kubelet-client" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "system:kubelet-api-admin" },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "kube-apiserver-kubelet-client" }],
    },
  ];
}

/** Writes every config file the node's components read. */
export function writeNodeConfig(
  p: NodePaths,
  pki: { ca: string; servingCert: string; servingKey: string },
  kubeconfigs: { kubeProxy: string; coredns: string },
): void {
  for (const d of [
    p.containerdRoot,
    p.containerdState,
    p.cniConf,
    p.cniData,
    p.kubeletRoot,
    p.podLogs,
    join(p.registryHosts, "_default"),
  ]) {
    mkdirSync(d, { recursive: true });
  }
  writeFileSync(p.containerdConfig, containerdConfig(p));
  writeFileSync(join(p.registryHosts, "_default", "hosts.toml"), registryHostsToml());
  writeFileSync(join(p.cniConf, "10-rigger.conflist"), JSON.stringify(cniConfig(p), null, 2));
  writeFileSync(p.kubeletConfig, stringify(kubeletConfig(p, pki)));
  writeFileSync(p.resolvConf, `nameserver ${NODE_IP}\n`);
  writeFileSync(p.kubeProxyConfig, stringify(kubeProxyConfig(kubeconfigs.kubeProxy)));
  writeFileSync(p.corefile, corefile(kubeconfigs.coredns));
}

export function kubeletArgs(p: NodePaths, kubeconfig: string): string[] {
  return [
    `--config=${p.kubeletConfig}`,
    `--kubeconfig=${kubeconfig}`,
    `--root-dir=${p.kubeletRoot}`,
    `--hostname-override=${REAL_NODE_NAME}`,
    `--node-ip=${NODE_IP}`,
    `--node-labels=${REAL_NODE_SELECTOR}`,
    "--v=1",
  ];
}

/** `ctr` against the node's containerd, in the CRI's namespace. */
export function ctr(ctrBinary: string, p: NodePaths, args: string[], input?: string): string {
  return execFileSync(ctrBinary, ["--address", p.containerdSocket, "--namespace", "k8s.io", ...args], {
    encoding: "utf8",
    input,
    stdio: ["pipe", "pipe", "pipe"],
    maxBuffer: 64 * 1024 * 1024,
  });
}

/** Images the node's containerd holds: name → manifest digest. */
export function nodeImages(ctrBinary: string, p: NodePaths): Map<string, string> {
  const out = ctr(ctrBinary, p, ["images", "ls"]);
  const images = new Map<string, string>();
  for (const line of out.split("\n").slice(1)) {
    const [ref, , digest] = line.trim().split(/\s+/);
    if (ref && digest?.startsWith("sha256:")) images.set(ref, digest);
  }
  return images;
}

/** Kills every container the node runs (tasks, then containers) so their mounts and namespaces can go. */
export function killAllContainers(ctrBinary: string, p: NodePaths): number {
  if (!existsSync(p.containerdSocket)) return 0;
  let ids: string[];
  try {
    ids = ctr(ctrBinary, p, ["containers", "ls", "-q"]).split("\n").filter(Boolean);
  } catch {
    return 0;
  }
  for (const id of ids) {
    try {
      ctr(ctrBinary, p, ["tasks", "kill", "--signal", "SIGKILL", id]);
    } catch {}
  }
  for (const id of ids) {
    for (let i = 0; i < 50; i++) {
      try {
        ctr(ctrBinary, p, ["tasks", "delete", "--force", id]);
        break;
      } catch (err) {
        if (String((err as { stderr?: string }).stderr ?? err).includes("not found")) break;
        execFileSync("sleep", ["0.1"]);
      }
    }
    try {
      ctr(ctrBinary, p, ["containers", "delete", id]);
    } catch {}
  }
  return ids.length;
}

/** Mount points under `dir`, deepest first. */
export function mountsUnder(dir: string): string[] {
  const mounts = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[4])
    .filter((m): m is string => !!m && (m === dir || m.startsWith(`${dir}/`)))
    .map((m) => m.replace(/\\040/g, " "));
  return [...new Set(mounts)].sort((a, b) => b.length - a.length);
}

/** Unmounts everything under `dir` (network namespaces, rootfs overlays, volumes). */
export function unmountAll(dir: string): void {
  for (let round = 0; round < 5; round++) {
    const mounts = mountsUnder(dir);
    if (mounts.length === 0) return;
    for (const m of mounts) {
      try {
        execFileSync("umount", [m], { stdio: "ignore" });
      } catch {
        try {
          execFileSync("umount", ["-l", m], { stdio: "ignore" });
        } catch {}
      }
    }
  }
}

/** The kubepods cgroups kubelet made (cgroup v1 and v2 layouts), removed deepest first once empty. */
export function removeKubeletCgroups(): string[] {
  const left: string[] = [];
  const roots = existsSync("/sys/fs/cgroup") ? readdirSync("/sys/fs/cgroup").map((c) => join("/sys/fs/cgroup", c)) : [];
  for (const root of ["/sys/fs/cgroup", ...roots]) {
    const top = join(root, "kubepods");
    if (!existsSync(top)) continue;
    const dirs = [
      top,
      ...readdirSync(top, { recursive: true, withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => join(e.parentPath, e.name)),
    ];
    // A cgroup goes with rmdir (its control files are not removable files) once it has no children.
    for (const d of dirs.sort((a, b) => b.length - a.length)) {
      try {
        rmdirSync(d);
      } catch {
        left.push(d);
      }
    }
  }
  return left;
}

/**
 * containerd's shims and ctr keep sockets and fifos in fixed folders under /run/containerd:
 * shim sockets nobody listens on any more are dead and go, then the folders once empty
 * (another containerd's live sockets would stay, and so would their folders).
 */
export function removeContainerdRunLeftovers(): void {
  const listening = new Set(
    readFileSync("/proc/net/unix", "utf8")
      .split("\n")
      .map((line) => line.trim().split(/\s+/))
      .filter((f) => f[3] === "00010000" && f[7])
      .map((f) => f[7]),
  );
  const shimSockets = "/run/containerd/s";
  if (existsSync(shimSockets)) {
    for (const name of readdirSync(shimSockets)) {
      const socket = join(shimSockets, name);
      if (!listening.has(socket)) rmSync(socket, { force: true });
    }
  }
  for (const dir of [shimSockets, "/run/containerd/fifo", "/run/containerd/runc", "/run/containerd"]) {
    if (existsSync(dir) && readdirSync(dir).length === 0) rmdirSync(dir);
  }
}
