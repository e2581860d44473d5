// The work queue every controller shares, with client-go's guarantees:
// - a key waiting in the queue is held once, however often it is added (events coalesce);
// - a key is never processed by two workers at once; added while in process, it runs
//   again once, after the current run;
// - failures are retried with per-key exponential backoff; success forgets the failures;
// - a reconciler may ask to run again after a delay (periodic resync, waiting on time).
// Keys only: the reconciler re-reads state, so nothing about an event needs to be kept.

export interface QueueOptions {
  /** First retry delay after a failure; doubles per consecutive failure. */
  baseDelayMs?: number;
  /** Longest retry delay. */
  maxDelayMs?: number;
}

export type Outcome = undefined | { requeueAfterMs: number };
export type Worker = (key: string) => Promise<Outcome>;

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly waiters: (() => void)[] = [];
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private stopped = false;

  constructor(options: QueueOptions = {}) {
    this.baseDelayMs = options.baseDelayMs ?? 10;
    this.maxDelayMs = options.maxDelayMs ?? 5 * 60 * 1000;
  }

  /** Queues `key` unless it is already waiting. */
  add(key: string): void {
    if (this.stopped || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return; // queued again when the current run finishes
    this.queue.push(key);
    this.waiters.shift()?.();
  }

  /** Queues `key` after `ms`; an earlier pending delay for the key wins. */
  addAfter(key: string, ms: number): void {
    if (this.stopped || this.timers.has(key)) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.timers.set(key, timer);
  }

  /** Queues `key` after its backoff: base × 2^(failures so far), capped. */
  addRateLimited(key: string): void {
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    this.addAfter(key, this.backoff(failures));
  }

  backoff(failures: number): number {
    return Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** failures);
  }

  /** Forgets a key's failures (after a success). */
  forget(key: string): void {
    this.failures.delete(key);
  }

  failureCount(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Keys waiting to run now. */
  get depth(): number {
    return this.queue.length;
  }

  /** Runs `worker` on queued keys with `concurrency` workers until shutdown(). */
  async run(worker: Worker, concurrency = 1, onError?: (key: string, err: unknown) => void): Promise<void> {
    const loop = async () => {
      for (;;) {
        const key = await this.next();
        if (key === undefined) return;
        try {
          const outcome = await worker(key);
          this.forget(key);
          if (outcome && outcome.requeueAfterMs >= 0) this.addAfter(key, outcome.requeueAfterMs);
        } catch (err) {
          onError?.(key, err);
          this.addRateLimited(key);
        } finally {
          this.done(key);
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, loop));
  }

  /** Stops handing out keys; running workers finish their current key. */
  shutdown(): void {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    for (const wake of this.waiters.splice(0)) wake();
  }

  private async next(): Promise<string | undefined> {
    while (!this.stopped && this.queue.length === 0) await new Promise<void>((resolve) => this.waiters.push(resolve));
    if (this.stopped) return undefined;
    const key = this.queue.shift() as string;
    this.dirty.delete(key);
    this.processing.add(key);
    return key;
  }

  private done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.stopped) {
      this.queue.push(key);
      this.waiters.shift()?.();
    }
  }
}
