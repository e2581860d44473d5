import { describe, expect, test } from "vitest";
import { FifoLimiter } from "./server.ts";

describe("the CA's request limiter", () => {
  test("runs at most `limit` at once and the rest in arrival order", async () => {
    const limiter = new FifoLimiter(2);
    let active = 0;
    let peak = 0;
    const started: number[] = [];
    const job = (i: number) =>
      limiter.run(async () => {
        started.push(i);
        active++;
        peak = Math.max(peak, active);
        await new Promise((r) => setTimeout(r, 5));
        active--;
        return i;
      });
    const results = await Promise.all([0, 1, 2, 3, 4, 5].map(job));
    expect(results).toEqual([0, 1, 2, 3, 4, 5]);
    expect(peak).toBe(2);
    expect(started).toEqual([0, 1, 2, 3, 4, 5]);
  });

  test("a failing job frees its slot", async () => {
    const limiter = new FifoLimiter(1);
    await expect(limiter.run(() => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(await limiter.run(async () => "next")).toBe("next");
  });
});
