// Helpers for e2e suites that run the mesh in pods on the local cluster's real node (containerd
// + runc): kubectl, waiting for pods, a container's host PID, Envoy's admin port and Istio's echo
// client run inside a pod's network namespace, the echo app's Deployment, and installing Rigger
// (install.yaml, the sample Istio with this machine's images) the way a user does.
import { execFileSync, spawnSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { inject } from "vitest";
import packageJson from "../../package.json" with { type: "json" };
import { versions } from "../../versions.ts";
import { binaries, CLUSTER_DIR, LOCAL_ISTIO_VALUES, runOnRealNode } from "../cluster/local-cluster.ts";
import { nodePaths } from "../cluster/real-node.ts";
import { waitFor } from "./kube.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const OPERATOR_NS = "rigger-system";
export const CONTROL_PLANE_NS = "istio-system";
/** Istio's echo client, run on the node inside a pod's network namespace (or the node's own). */
export const ECHO_CLIENT = join(ROOT, ".cache/bin", `istio-${versions.istio}`, "echo-client");

export function kubectl(args: string[], input?: string): string {
  const res = spawnSync(binaries.kubectl, ["--kubeconfig", inject("kubeconfig"), ...args], {
    input,
    encoding: "utf8",
    timeout: 120_000,
  });
  if (res.status !== 0) throw new Error(`kubectl ${args.join(" ")}: ${res.stderr || res.error}`);
  return res.stdout;
}

export function json<T>(args: string[]): T {
  return JSON.parse(kubectl([...args, "-o", "json"])) as T;
}

export interface Pod {
  metadata: { name: string; uid: string; annotations?: Record<string, string> };
  spec: {
    nodeName?: string;
    serviceAccountName?: string;
    initContainers?: { name: string; args?: string[]; restartPolicy?: string }[];
    containers: { name: string; livenessProbe?: { httpGet?: object } }[];
  };
  status: {
    phase?: string;
    podIP?: string;
    conditions?: { type: string; status: string }[];
    initContainerStatuses?: ContainerStatus[];
    containerStatuses?: ContainerStatus[];
  };
}

export interface ContainerStatus {
  name: string;
  ready: boolean;
  restartCount?: number;
  containerID?: string;
  state?: {
    running?: object;
    terminated?: { exitCode: number; reason?: string };
    waiting?: { reason?: string; message?: string };
  };
}

export function podsOf(namespace: string, selector: string): Pod[] {
  return json<{ items: Pod[] }>(["-n", namespace, "get", "pods", "-l", selector]).items;
}

export const isReady = (pod: Pod) => pod.status.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;

/** Why a pod is not running yet: the kubelet's events and the waiting reasons, for failure messages. */
export function whyNot(namespace: string, pod: Pod | undefined): string {
  if (!pod) return "no pod";
  const waiting = [...(pod.status.initContainerStatuses ?? []), ...(pod.status.containerStatuses ?? [])]
    .filter((c) => c.state?.waiting)
    .map((c) => `${c.name}: ${c.state?.waiting?.reason} ${c.state?.waiting?.message ?? ""}`);
  let events = "";
  try {
    events = kubectl(["-n", namespace, "get", "events", "--field-selector", `involvedObject.name=${pod.metadata.name}`]);
  } catch {}
  return `${pod.metadata.name} ${pod.status.phase}; ${waiting.join("; ")}\n${events}`;
}

/** Waits until `selector` has `count` pods matching `ok`; the error shows what the kubelet said. */
export async function waitForPods(namespace: string, selector: string, count: number, ok: (p: Pod) => boolean, what: string) {
  let last: Pod[] = [];
  try {
    return await waitFor(
      what,
      async () => {
        last = podsOf(namespace, selector);
        const good = last.filter(ok);
        return good.length >= count ? good : undefined;
      },
      { timeoutMs: 150_000, intervalMs: 500 },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${last.map((p) => whyNot(namespace, p)).join("\n")}`);
  }
}

/** The host PID of a running container (its init process), from containerd. */
export function containerPid(containerID: string | undefined): number {
  const id = containerID?.replace(/^containerd:\/\//, "");
  if (!id) throw new Error("container has no ID yet");
  const out = execFileSync(binaries.ctr, ["--address", nodePaths(CLUSTER_DIR).containerdSocket, "-n", "k8s.io", "tasks", "ls"], {
    encoding: "utf8",
  });
  const line = out.split("\n").find((l) => l.startsWith(id));
  const pid = Number(line?.trim().split(/\s+/)[1]);
  if (!pid) throw new Error(`containerd has no task for ${id}`);
  return pid;
}

/** A GET to Envoy's admin port (15000) inside the network namespace of the process `pid`. */
export function envoyAdmin(pid: number, path: string): string {
  // This very Node, run in that namespace: nothing else needs installing on the node.
  const script = `fetch("http://127.0.0.1:15000${path}", { signal: AbortSignal.timeout(5000) }).then(r => r.text()).then(t => process.stdout.write(t))`;
  return execFileSync("nsenter", ["-t", String(pid), "-n", process.execPath, "-e", script], { encoding: "utf8" });
}

/** A Deployment of one pod with one container. */
function oneContainerDeployment(
  name: string,
  namespace: string,
  labels: Record<string, string>,
  annotations: Record<string, string> | undefined,
  container: object,
): string {
  return JSON.stringify({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, namespace },
    spec: {
      selector: { matchLabels: labels },
      template: {
        metadata: { labels, ...(annotations ? { annotations } : {}) },
        spec: { containers: [{ name, imagePullPolicy: "IfNotPresent", ...container }] },
      },
    },
  });
}

/** A Deployment of Istio's echo app (`localhost/istio/app`) in an injected namespace. */
export function echoDeployment(
  name: string,
  namespace: string,
  args: string[],
  annotations?: Record<string, string>,
  labels: Record<string, string> = { app: name },
): string {
  return oneContainerDeployment(name, namespace, labels, annotations, {
    image: `localhost/istio/app:${versions.istio}`,
    args,
    ports: [{ containerPort: 8080 }],
  });
}

/**
 * A Deployment of one pod running a few lines of Node in Rigger's own image (it has node): the
 * tests' servers on the cluster (collectors, issuers, misbehaving backends). Labelled app=<name>.
 */
export function nodeScriptDeployment(
  name: string,
  namespace: string,
  script: string,
  options: { port: number; env?: Record<string, string>; annotations?: Record<string, string> },
): string {
  return oneContainerDeployment(name, namespace, { app: name }, options.annotations, {
    image: `rigger:${packageJson.version}`,
    command: ["/usr/local/bin/node", "-e", script],
    env: Object.entries(options.env ?? {}).map(([k, v]) => ({ name: k, value: v })),
    ports: [{ containerPort: options.port }],
  });
}

/** Creates or updates a ClusterIP Service selecting `selector`. */
export function applyService(
  name: string,
  namespace: string,
  selector: Record<string, string>,
  ports: { name: string; port: number; targetPort: number }[],
): void {
  kubectl(
    ["apply", "-f", "-"],
    JSON.stringify({ apiVersion: "v1", kind: "Service", metadata: { name, namespace }, spec: { selector, ports } }),
  );
}

/** Istio's echo client calling `url` from inside the network namespace of `pid` (the node's own when undefined). */
export function echoCall(pid: number | undefined, url: string, extra: string[] = []): string {
  const command = [ECHO_CLIENT, url, "--timeout", "5s", ...extra];
  const args = pid === undefined ? command : ["-t", String(pid), "-n", ...command];
  return execFileSync(pid === undefined ? (command[0] ?? "") : "nsenter", pid === undefined ? command.slice(1) : args, {
    encoding: "utf8",
    timeout: 60_000,
    maxBuffer: 256 * 1024 * 1024,
  });
}

/** "ok" when the call succeeded, "refused" when the server would not take it. */
export function echoCallStatus(pid: number | undefined, url: string): "ok" | "refused" {
  try {
    return /StatusCode=200/.test(echoCall(pid, url)) ? "ok" : "refused";
  } catch {
    return "refused";
  }
}

/** Removes what a real-node suite made: its namespaces, the Istio, the operator and their namespaces. */
export function cleanUpMesh(namespaces: string[]): void {
  const run = (args: string[]) =>
    spawnSync(binaries.kubectl, ["--kubeconfig", inject("kubeconfig"), ...args], { encoding: "utf8" });
  for (const ns of namespaces) run(["delete", "namespace", ns, "--ignore-not-found", "--wait=false"]);
  run(["delete", "istios.operator.rigger.dev", "default", "--ignore-not-found", "--wait=true", "--timeout=90s"]);
  // The operator in its pods would reconcile the other suites' Istio resources: it goes, and so
  // does its namespace, which runOnRealNode() sent to the real node: another suite applying
  // install.yaml would otherwise start a real operator there, beside its own.
  run(["-n", OPERATOR_NS, "delete", "deployment", "rigger-operator", "--ignore-not-found", "--wait=true", "--timeout=60s"]);
  for (const ns of [OPERATOR_NS, CONTROL_PLANE_NS]) run(["delete", "namespace", ns, "--ignore-not-found", "--wait=false"]);
  for (const ns of [...namespaces, OPERATOR_NS, CONTROL_PLANE_NS])
    run(["wait", "--for=delete", `namespace/${ns}`, "--timeout=90s"]);
}

/** install.yaml, then the sample Istio with this machine's proxy image, Ready; pods on the real node. */
export async function installMesh(): Promise<void> {
  runOnRealNode(OPERATOR_NS);
  kubectl(["apply", "-f", join(ROOT, "manifests/install.yaml")]);
  await waitForPods(OPERATOR_NS, "app.kubernetes.io/name=rigger-operator", 2, isReady, "2 ready operator pods");
  runOnRealNode(CONTROL_PLANE_NS);
  kubectl(["apply", "-f", join(ROOT, "manifests/samples/istio.yaml")]);
  kubectl(["patch", "istio", "default", "--type=merge", "-p", JSON.stringify({ spec: { values: LOCAL_ISTIO_VALUES } })]);
  try {
    kubectl(["wait", "--for=condition=Ready", "--timeout=100s", "istio/default"]);
  } catch (err) {
    // What the operator and istiod said, for the failure message.
    const tail = (args: string[]) => {
      try {
        return kubectl(args).split("\n").slice(-15).join("\n");
      } catch (e) {
        return (e as Error).message;
      }
    };
    throw new Error(
      `${(err as Error).message}\n${tail(["get", "istio", "default", "-o", "yaml"])}\n${tail(["get", "pods", "-A", "-o", "wide"])}\n` +
        `${tail(["-n", CONTROL_PLANE_NS, "logs", "-l", "app=istiod", "--tail=30"])}\n` +
        tail(["-n", OPERATOR_NS, "logs", "-l", "app.kubernetes.io/name=rigger-operator", "--tail=30"]),
    );
  }
  await waitForPods(CONTROL_PLANE_NS, "app=istiod", 1, isReady, "a ready istiod pod");
}

/**
 * Sets meshConfig.extensionProviders through the Istio resource and waits until the operator
 * has rendered them into istiod's mesh ConfigMap (`marker`: a string one of them contains).
 */
export async function setExtensionProviders(providers: object[], marker: string): Promise<void> {
  kubectl([
    "patch",
    "istio",
    "default",
    "--type=merge",
    "-p",
    JSON.stringify({ spec: { values: { meshConfig: { extensionProviders: providers } } } }),
  ]);
  await waitFor(`extension providers (${marker}) in the rendered mesh config`, async () =>
    kubectl(["-n", CONTROL_PLANE_NS, "get", "configmap", "istio", "-o", "jsonpath={.data.mesh}"]).includes(marker)
      ? true
      : undefined,
  ).catch((err: Error) => {
    // Keep what explains a miss: what the operator was given and what it said.
    const revision = kubectl(["get", "istiorevision", "default", "-o", "jsonpath={.spec.values.meshConfig}"]);
    const logs = kubectl(["-n", OPERATOR_NS, "logs", "-l", "app.kubernetes.io/name=rigger-operator", "--tail=40"]);
    throw new Error(`${err.message}\nIstioRevision meshConfig: ${revision}\noperator logs:\n${logs}`);
  });
}

/**
 * Waits until `observed` holds three times in a row: connections a proxy pooled before a change
 * are served by the old filters until the receiving Envoy drains them, and a client that does
 * not have the change yet can, by chance, look as if it had it once. Returns the seconds from
 * the call to the first time `observed` held.
 */
export async function untilSteady(what: string, observed: () => boolean): Promise<number> {
  const t0 = Date.now();
  let first = 0;
  let streak = 0;
  await waitFor(what, async () => {
    let ok = false;
    try {
      ok = observed();
    } finally {
      streak = ok ? streak + 1 : 0;
    }
    if (ok && !first) first = Date.now();
    return streak >= 3 ? true : undefined;
  });
  return (first - t0) / 1000;
}

/** Applies objects and waits (untilSteady) until `observed` holds; the seconds from the apply. */
export async function applyUntil(what: string, objects: object[], observed: () => boolean): Promise<number> {
  kubectl(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }));
  return untilSteady(what, observed);
}

/** The `rigger` CLI against the local cluster, as a user runs it; its standard output. */
export function riggerCli(args: string[]): string {
  return execFileSync(process.execPath, [join(ROOT, "cmd/rigger.ts"), ...args, "--kubeconfig", inject("kubeconfig")], {
    encoding: "utf8",
    timeout: 60_000,
  });
}

/** An injected namespace on the real node. */
export function injectedNamespace(namespace: string): void {
  runOnRealNode(namespace);
  kubectl(["label", "namespace", namespace, "istio-injection=enabled", "--overwrite"]);
}

/** The host PIDs of a ready pod's app container and its istio-proxy container. */
export function podPids(pod: Pod, app: string): { app: number; proxy: number } {
  const id = (name: string) => pod.status.containerStatuses?.find((c) => c.name === name)?.containerID;
  return { app: containerPid(id(app)), proxy: containerPid(id("istio-proxy")) };
}
