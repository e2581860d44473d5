// `rigger operator --local`: each revision's `rigger istiod` runs as a child process of the
// operator on a free 127.0.0.1 port, and the revision's webhooks call it by URL (the
// external-control-plane pattern; the local cluster's Service IPs lead nowhere). A child
// that dies is restarted on the same port with backoff; a revision that goes away has its
// child stopped. Children exit by themselves if the operator dies (--exit-with-parent).
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, mkdirSync, type WriteStream, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { KubeConfig } from "@kubernetes/client-node";
import { istiodName } from "./revision.ts";

const RIGGER = fileURLToPath(new URL("../../cmd/rigger.ts", import.meta.url));

export interface LocalControlPlaneOptions {
  kubeconfigPath: string;
  logDir: string;
  /** Called when a child starts serving or stops (the revision's Ready changes). */
  onChange: (revision: string) => void;
  log: (message: string, fields?: object) => void;
}

export interface LocalRevision {
  name: string;
  namespace: string;
  nativeSidecars: boolean;
}

interface Child {
  revision: LocalRevision;
  port: number;
  grpcPort: number;
  process?: ChildProcess;
  serving: boolean;
  stopping: boolean;
  restarts: number;
  logFile: string;
  log?: WriteStream;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

export class LocalControlPlanes {
  private readonly children = new Map<string, Child>();
  private readonly options: LocalControlPlaneOptions;
  private closed = false;

  constructor(options: LocalControlPlaneOptions) {
    this.options = options;
    mkdirSync(options.logDir, { recursive: true });
  }

  /** Starts the revision's istiod unless it runs; returns its base URL and whether it serves. */
  async ensure(revision: LocalRevision): Promise<{ url: string; serving: boolean; logFile: string }> {
    // A reconcile still running when the operator stepped down must not start a child nobody stops.
    if (this.closed) throw new Error("local control planes are stopped (this operator no longer leads)");
    let child = this.children.get(revision.name);
    if (child && (child.revision.namespace !== revision.namespace || child.revision.nativeSidecars !== revision.nativeSidecars)) {
      await this.stop(revision.name);
      child = undefined;
    }
    if (!child) {
      child = {
        revision,
        port: await freePort(),
        grpcPort: await freePort(),
        serving: false,
        stopping: false,
        restarts: 0,
        logFile: join(this.options.logDir, `istiod-${revision.name}.log`),
      };
      if (this.closed) throw new Error("local control planes are stopped (this operator no longer leads)");
      this.children.set(revision.name, child);
      this.spawn(child);
    }
    return { url: `https://127.0.0.1:${child.port}`, serving: child.serving, logFile: child.logFile };
  }

  /** Revisions with a running child. */
  revisions(): string[] {
    return [...this.children.keys()];
  }

  async stop(name: string): Promise<void> {
    const child = this.children.get(name);
    if (!child) return;
    this.children.delete(name);
    child.stopping = true;
    const proc = child.process;
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    }
    child.log?.end();
    this.options.log("local control plane stopped", { revision: name });
  }

  async stopAll(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.children.keys()].map((name) => this.stop(name)));
  }

  /**
   * A kubeconfig that acts as the revision's ServiceAccount (impersonation), so a local istiod
   * has exactly the least-privilege RBAC the in-cluster one gets, not the operator's rights.
   */
  private impersonatingKubeconfig(revision: LocalRevision): string {
    const kc = new KubeConfig();
    kc.loadFromFile(this.options.kubeconfigPath);
    const user = kc.getCurrentUser();
    if (!user) throw new Error(`${this.options.kubeconfigPath} has no current user`);
    const serviceAccount = `system:serviceaccount:${revision.namespace}:${istiodName(revision.name)}`;
    kc.users = kc.users.map((u) => (u.name === user.name ? { ...u, impersonateUser: serviceAccount } : u));
    const path = join(this.options.logDir, `istiod-${revision.name}.kubeconfig`);
    writeFileSync(path, kc.exportConfig(), { mode: 0o600 });
    return path;
  }

  private spawn(child: Child): void {
    const { revision } = child;
    child.log ??= createWriteStream(child.logFile, { flags: "a" });
    const args = [
      RIGGER,
      "istiod",
      `--kubeconfig=${this.impersonatingKubeconfig(revision)}`,
      `--namespace=${revision.namespace}`,
      `--revision=${revision.name === "default" ? "" : revision.name}`,
      "--host=127.0.0.1",
      `--port=${child.port}`,
      `--grpc-port=${child.grpcPort}`,
      "--extra-san=127.0.0.1",
      "--exit-with-parent",
      `--parent-pid=${process.pid}`,
      ...(revision.nativeSidecars ? ["--native-sidecars"] : []),
    ];
    const proc = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    child.process = proc;
    proc.stderr?.pipe(child.log, { end: false });
    createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      child.log?.write(`${line}\n`);
      if (!child.serving && line.includes('"msg":"control plane serving"')) {
        child.serving = true;
        child.restarts = 0;
        this.options.log("local control plane serving", { revision: revision.name, port: child.port, log: child.logFile });
        this.options.onChange(revision.name);
      }
    });
    proc.once("exit", (code, signal) => {
      const wasServing = child.serving;
      child.serving = false;
      if (child.stopping) return;
      const delay = Math.min(10_000, 500 * 2 ** child.restarts++);
      this.options.log("local control plane exited; restarting", { revision: revision.name, code, signal, delayMs: delay });
      if (wasServing) this.options.onChange(revision.name);
      setTimeout(() => {
        if (!child.stopping && this.children.get(revision.name) === child) this.spawn(child);
      }, delay).unref();
    });
  }
}
