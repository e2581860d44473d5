// Runs `rigger operator --local` as a child process for e2e tests, with its log in a temp
// directory and its metrics readable (loopback, the operator's throwaway certificate).
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, openSync, readFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { inject } from "vitest";
import { freePort, stopChild, waitUntilServing } from "./child.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));

export interface RunningOperator {
  process: ChildProcess;
  identity: string;
  logFile: string;
  logDir: string;
  /** A metric's value (summed over matching series), from /metrics. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  isLeader(): Promise<boolean>;
  stop(): Promise<void>;
  /** SIGKILL: no lease release, no cleanup (a crash). */
  kill(): Promise<void>;
}

function get(url: string): Promise<{ status: number; body: string } | undefined> {
  return new Promise((resolve) => {
    // Loopback only; the operator's health endpoint uses a throwaway self-signed certificate.
    const req = request(url, { rejectUnauthorized: false, timeout: 2000 }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", () => resolve(undefined));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

export async function startOperatorProcess(
  identity: string,
  leaseName: string,
  leaseDurationSeconds = 6,
  /** The suite's cluster by default; benchmarks pass theirs. */
  kubeconfig = inject("kubeconfig"),
): Promise<RunningOperator> {
  const logDir = mkdtempSync(join(tmpdir(), `rigger-operator-${identity}-`));
  const logFile = join(logDir, "operator.log");
  const port = await freePort();
  const fd = openSync(logFile, "a");
  const child = spawn(
    process.execPath,
    [
      join(root, "cmd/rigger.ts"),
      "operator",
      "--local",
      `--kubeconfig=${kubeconfig}`,
      `--log-dir=${logDir}`,
      `--health-addr=127.0.0.1:${port}`,
      `--identity=${identity}`,
      `--lease-name=${leaseName}`,
      `--lease-duration=${leaseDurationSeconds}`,
    ],
    { stdio: ["ignore", fd, fd] },
  );
  const base = `https://127.0.0.1:${port}`;
  await waitUntilServing(
    `rigger operator ${identity}`,
    child,
    async () => (await get(`${base}/healthz`))?.status === 200,
    20_000,
    `; see ${logFile}`,
  );
  const metric = async (name: string, labels: Record<string, string> = {}) => {
    const text = (await get(`${base}/metrics`))?.body ?? "";
    let sum = 0;
    for (const line of text.split("\n")) {
      const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
      if (!m || m[1] !== name) continue;
      if (Object.entries(labels).every(([k, v]) => (m[2] ?? "").includes(`${k}="${v}"`))) sum += Number(m[3]);
    }
    return sum;
  };
  return {
    process: child,
    identity,
    logFile,
    logDir,
    metric,
    isLeader: async () => (await metric("leader_election_master_status")) === 1,
    stop: () => stopChild(child),
    kill: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGKILL");
      }),
  };
}

export function tailOf(file: string, lines = 20): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}
