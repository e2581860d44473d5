import { spawn } from "node:child_process";
import { mkdtempSync, realpathSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, test } from "vitest";
import { isOurs, readTracked, sleep, startTracked, stopAll } from "./processes.ts";

const sleepBinary = realpathSync("/bin/sleep");

test("starts a tracked process and stops it by PID", async () => {
  const dir = mkdtempSync(join(tmpdir(), "rigger-proc-"));
  const state = join(dir, "processes.json");
  const tracked = startTracked(state, "sleeper", sleepBinary, ["30"], join(dir, "sleeper.log"));
  expect(readTracked(state)).toEqual([tracked]);
  await sleep(50);
  expect(isOurs(tracked)).toBe(true);

  expect(await stopAll(state)).toEqual([`sleeper (pid ${tracked.pid})`]);
  expect(isOurs(tracked)).toBe(false);
  expect(readTracked(state)).toEqual([]);
});

test("never signals a PID that no longer runs the recorded binary", async () => {
  const dir = mkdtempSync(join(tmpdir(), "rigger-proc-"));
  const state = join(dir, "processes.json");
  // A process we did not start through the tracker, recorded as if it ran another binary.
  const stranger = spawn(sleepBinary, ["30"]);
  try {
    const fake = { name: "stale", pid: stranger.pid ?? -1, binary: "/nonexistent/etcd", log: "" };
    expect(isOurs(fake)).toBe(false);
    const tracked = startTracked(state, "real", sleepBinary, ["30"], join(dir, "real.log"));
    // Overwrite the state so it lists the stranger's PID under the wrong binary, plus ours.
    writeFileSync(state, JSON.stringify([fake, tracked]));
    expect(await stopAll(state)).toEqual([`real (pid ${tracked.pid})`]);
    expect(stranger.exitCode).toBeNull(); // still running: it was not ours to stop
    expect(stranger.killed).toBe(false);
  } finally {
    stranger.kill();
  }
});
