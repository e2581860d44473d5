import { describe, expect, test } from "vitest";
import { WorkQueue } from "./queue.ts";

/** Resolves when `check` holds, polling; fails the test after 2 s. */
async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not reached within 2 s");
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe("WorkQueue", () => {
  test("a key added many times before it runs is processed once", async () => {
    const queue = new WorkQueue();
    for (let i = 0; i < 5; i++) queue.add("ns/a");
    queue.add("ns/b");
    expect(queue.depth).toBe(2);
    const seen: string[] = [];
    const running = queue.run(async (key) => {
      seen.push(key);
    });
    await until(() => seen.length === 2);
    queue.shutdown();
    await running;
    expect(seen).toEqual(["ns/a", "ns/b"]);
  });

  test("a key is never processed twice at once; added while running, it runs once more afterwards", async () => {
    const queue = new WorkQueue();
    let active = 0;
    let maxActive = 0;
    let runs = 0;
    let release: () => void = () => {};
    const running = queue.run(async () => {
      active++;
      maxActive = Math.max(maxActive, active);
      runs++;
      if (runs === 1) await new Promise<void>((r) => (release = r));
      active--;
    }, 4);
    queue.add("k");
    await until(() => runs === 1);
    queue.add("k");
    queue.add("k");
    release();
    await until(() => runs === 2);
    queue.shutdown();
    await running;
    expect(maxActive).toBe(1);
    expect(runs).toBe(2);
  });

  test("different keys run side by side up to the concurrency", async () => {
    const queue = new WorkQueue();
    let active = 0;
    let maxActive = 0;
    let done = 0;
    const running = queue.run(async () => {
      active++;
      maxActive = Math.max(maxActive, active);
      await new Promise((r) => setTimeout(r, 20));
      active--;
      done++;
    }, 3);
    for (const key of ["a", "b", "c", "d", "e", "f"]) queue.add(key);
    await until(() => done === 6);
    queue.shutdown();
    await running;
    expect(maxActive).toBe(3);
  });

  test("a failing key is retried with backoff, and success forgets the failures", async () => {
    const queue = new WorkQueue({ baseDelayMs: 1 });
    let calls = 0;
    const errors: string[] = [];
    const running = queue.run(
      async () => {
        calls++;
        if (calls < 3) throw new Error(`attempt ${calls}`);
      },
      1,
      (_key, err) => errors.push((err as Error).message),
    );
    queue.add("flaky");
    await until(() => calls === 3);
    await until(() => queue.failureCount("flaky") === 0);
    queue.shutdown();
    await running;
    expect(errors).toEqual(["attempt 1", "attempt 2"]);
  });

  test("backoff doubles per failure up to the cap", () => {
    const queue = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 50 });
    expect([0, 1, 2, 3, 10].map((n) => queue.backoff(n))).toEqual([10, 20, 40, 50, 50]);
  });

  test("a reconciler can ask to run again later", async () => {
    const queue = new WorkQueue();
    let calls = 0;
    const running = queue.run(async () => {
      calls++;
      return calls === 1 ? { requeueAfterMs: 5 } : undefined;
    });
    queue.add("periodic");
    await until(() => calls === 2);
    queue.shutdown();
    await running;
    expect(calls).toBe(2);
  });

  test("after shutdown nothing is added or run, and run() returns", async () => {
    const queue = new WorkQueue();
    const running = queue.run(async () => {});
    queue.shutdown();
    await running;
    queue.add("late");
    queue.addAfter("later", 1);
    expect(queue.depth).toBe(0);
  });
});
