// Runs `rigger istiod` against the test cluster as a child process on 127.0.0.1: its own
// mesh CA in `namespace`, injection settings from the pinned release's testdata files.
import { type ChildProcess, spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, stopChild } from "./child.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
const settings = join(root, "webhooks/inject/testdata/settings");

export interface ClusterIstiod {
  process: ChildProcess;
  port: number;
  grpcPort: number;
  logFile: string;
  dir: string;
  stop(): Promise<void>;
}

/** Starts it and waits until it logs "control plane serving" (or fails with its log's tail). */
export async function startClusterIstiod(
  kubeconfig: string,
  namespace: string,
  extraArgs: string[] = [],
): Promise<ClusterIstiod> {
  const dir = mkdtempSync(join(tmpdir(), "rigger-istiod-"));
  const injectDir = join(dir, "inject");
  mkdirSync(injectDir);
  copyFileSync(join(settings, "inject-config.yaml"), join(injectDir, "config"));
  copyFileSync(join(settings, "values.json"), join(injectDir, "values"));
  const [port, grpcPort] = [await freePort(), await freePort()];
  const logFile = join(dir, "istiod.log");
  const fd = openSync(logFile, "a");
  const child = spawn(
    process.execPath,
    [
      join(root, "cmd/rigger.ts"),
      "istiod",
      `--kubeconfig=${kubeconfig}`,
      `--namespace=${namespace}`,
      "--host=127.0.0.1",
      `--port=${port}`,
      `--grpc-port=${grpcPort}`,
      "--extra-san=127.0.0.1",
      `--injection-config=${injectDir}`,
      `--mesh-config=${join(settings, "mesh.yaml")}`,
      ...extraArgs,
    ],
    { stdio: ["ignore", fd, fd] },
  );
  const deadline = Date.now() + 30_000;
  const log = () => (existsSync(logFile) ? readFileSync(logFile, "utf8") : "");
  while (!log().includes("control plane serving")) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stopChild(child);
      throw new Error(
        `rigger istiod did not start serving; last lines of ${logFile}:\n${log().split("\n").slice(-10).join("\n")}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { process: child, port, grpcPort, logFile, dir, stop: () => stopChild(child) };
}
