// Starting and stopping the cluster's processes, tracked by PID in a state file.
// A process is only ever signalled when /proc says it still runs the binary we
// started, so a recycled PID that belongs to someone else is never touched.
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";

export interface TrackedProcess {
  name: string;
  pid: number;
  binary: string;
  log: string;
}

export function readTracked(stateFile: string): TrackedProcess[] {
  if (!existsSync(stateFile)) return [];
  return JSON.parse(readFileSync(stateFile, "utf8")) as TrackedProcess[];
}

function writeTracked(stateFile: string, processes: TrackedProcess[]): void {
  writeFileSync(stateFile, `${JSON.stringify(processes, null, 2)}\n`);
}

/** Starts a detached process (it outlives the caller) with its output in `log`, and records it. */
export function startTracked(
  stateFile: string,
  name: string,
  binary: string,
  args: string[],
  log: string,
  env: NodeJS.ProcessEnv = process.env,
): TrackedProcess {
  const fd = openSync(log, "a");
  try {
    const child = spawn(binary, args, { detached: true, stdio: ["ignore", fd, fd], env });
    if (child.pid === undefined) throw new Error(`could not start ${name} (${binary}); see ${log}`);
    child.unref();
    const tracked = { name, pid: child.pid, binary, log };
    writeTracked(stateFile, [...readTracked(stateFile), tracked]);
    return tracked;
  } finally {
    closeSync(fd);
  }
}

/** Removes a process that has exited from the state file. */
export function forgetTracked(stateFile: string, pid: number): void {
  writeTracked(
    stateFile,
    readTracked(stateFile).filter((p) => p.pid !== pid),
  );
}

/** True when `pid` is alive and still runs `binary`. */
export function isOurs(process: TrackedProcess): boolean {
  try {
    return readlinkSync(`/proc/${process.pid}/exe`) === process.binary;
  } catch {
    return false;
  }
}

/** Stops every tracked process (SIGTERM, then SIGKILL after a grace period) and forgets them. */
export async function stopAll(stateFile: string, graceMs = 10_000): Promise<string[]> {
  const stopped: string[] = [];
  // Reverse start order: clients before the servers they talk to.
  for (const tracked of readTracked(stateFile).reverse()) {
    if (await stopProcess(tracked, graceMs)) stopped.push(`${tracked.name} (pid ${tracked.pid})`);
  }
  rmSync(stateFile, { force: true });
  return stopped;
}

/** Stops the tracked processes named `name` now (before the rest), and forgets them. */
export async function stopNamed(stateFile: string, name: string, graceMs = 10_000): Promise<string[]> {
  const stopped: string[] = [];
  for (const tracked of readTracked(stateFile).filter((p) => p.name === name)) {
    if (await stopProcess(tracked, graceMs)) stopped.push(`${tracked.name} (pid ${tracked.pid})`);
    forgetTracked(stateFile, tracked.pid);
  }
  return stopped;
}

/** SIGTERM, then SIGKILL after `graceMs`; false when it was not running (or not ours). */
async function stopProcess(tracked: TrackedProcess, graceMs: number): Promise<boolean> {
  if (!isOurs(tracked)) return false;
  process.kill(tracked.pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (isOurs(tracked) && Date.now() < deadline) await sleep(50);
  if (isOurs(tracked)) process.kill(tracked.pid, "SIGKILL");
  while (isOurs(tracked)) await sleep(20);
  return true;
}

/** PIDs of running processes for which `test(pid)` holds; a process that exits mid-scan is skipped. */
export function findProcesses(test: (pid: number) => boolean): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (test(Number(entry))) pids.push(Number(entry));
    } catch {}
  }
  return pids;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
