import { EventEmitter } from "node:events";
import { describe, expect, test, vi } from "vitest";
import { AuthenticationError, TokenReviewer } from "./authenticate.ts";
import { AbandonedError, FifoLimiter, QueueFullError } from "./server.ts";

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

describe("the limiter under abuse", () => {
  test("past maxWaiting a request is refused at once (QueueFullError), not queued", async () => {
    const limiter = new FifoLimiter(1, 2);
    let release = () => {};
    const blocker = limiter.run(() => new Promise<void>((r) => (release = r)));
    const waiting = [limiter.run(async () => 1), limiter.run(async () => 2)];
    await expect(limiter.run(async () => 3)).rejects.toBeInstanceOf(QueueFullError);
    expect(limiter.queued).toBe(2);
    release();
    await blocker;
    expect(await Promise.all(waiting)).toEqual([1, 2]);
  });

  test("a waiter whose caller gives up leaves the queue at once, and its work never runs", async () => {
    const limiter = new FifoLimiter(1, 10);
    let release = () => {};
    const blocker = limiter.run(() => new Promise<void>((r) => (release = r)));
    const caller = Object.assign(new EventEmitter(), { cancelled: false });
    let ran = false;
    const abandoned = limiter.run(async () => {
      ran = true;
    }, caller);
    expect(limiter.queued).toBe(1);
    caller.cancelled = true;
    caller.emit("cancelled");
    await expect(abandoned).rejects.toBeInstanceOf(AbandonedError);
    expect(limiter.queued).toBe(0);
    release();
    await blocker;
    expect(ran).toBe(false);
  });
});

describe("TokenReviewer", () => {
  const jwt = (payload: object) =>
    `${[{ alg: "RS256" }, payload].map((p) => Buffer.from(JSON.stringify(p)).toString("base64url")).join(".")}.c2ln`;
  const caller = { namespace: "app", serviceAccount: "web" };

  test("an accepted token is reviewed once, then answered from memory until its TTL", async () => {
    let now = 1_000_000;
    const review = vi.fn(async () => caller);
    const reviewer = new TokenReviewer(review, { acceptedTtlMs: 60_000, now: () => now });
    const token = jwt({ exp: now / 1000 + 3600 });
    await Promise.all([reviewer.authenticate(token), reviewer.authenticate(token)]); // in flight together: one call
    expect(await reviewer.authenticate(token)).toEqual(caller);
    expect(review).toHaveBeenCalledTimes(1);
    now += 61_000;
    await reviewer.authenticate(token);
    expect(review).toHaveBeenCalledTimes(2);
  });

  test("never past the token's own exp", async () => {
    let now = 1_000_000;
    const review = vi.fn(async () => caller);
    const reviewer = new TokenReviewer(review, { acceptedTtlMs: 60_000, now: () => now });
    const token = jwt({ exp: (now + 5_000) / 1000 });
    await reviewer.authenticate(token);
    now += 6_000;
    expect(reviewer.cached(token)).toBeUndefined();
  });

  test("a refusal is remembered briefly; an apiserver failure is not", async () => {
    let now = 1_000_000;
    const review = vi.fn(async (): Promise<typeof caller> => {
      throw new AuthenticationError("the token was not accepted: invalid");
    });
    const reviewer = new TokenReviewer(review, { refusedTtlMs: 10_000, now: () => now });
    const token = jwt({});
    await expect(reviewer.authenticate(token)).rejects.toThrow("not accepted");
    await expect(reviewer.authenticate(token)).rejects.toThrow("not accepted");
    expect(review).toHaveBeenCalledTimes(1);
    now += 11_000;
    review.mockRejectedValueOnce(new Error("connect ECONNREFUSED"));
    await expect(reviewer.authenticate(token)).rejects.toThrow("ECONNREFUSED");
    expect(reviewer.cached(token)).toBeUndefined();
  });

  test("garbage that is not a JWT is refused without asking the apiserver", async () => {
    const review = vi.fn(async () => caller);
    const reviewer = new TokenReviewer(review);
    for (const token of ["garbage", "a.b", "a.b.c.d", "!!.??.##", `${"x".repeat(20_000)}.a.b`, "YQ.YQ.YQ"])
      await expect(reviewer.authenticate(token), token.slice(0, 20)).rejects.toBeInstanceOf(AuthenticationError);
    expect(review).not.toHaveBeenCalled();
  });

  test("the memory is bounded: the oldest answers go first", async () => {
    const reviewer = new TokenReviewer(async () => caller, { maxEntries: 100 });
    for (let i = 0; i < 1000; i++) await reviewer.authenticate(jwt({ i }));
    expect(reviewer.size).toBe(100);
  });
});
