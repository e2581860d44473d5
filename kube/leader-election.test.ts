// The leader elector against faults: a renew call that never returns, and holders whose
// clocks are skewed. The Lease lives in an in-memory store with the apiserver's
// optimistic-concurrency rule (a write must carry the resourceVersion it read); time is
// vitest's fake clock, so the minutes these scenarios span take milliseconds.
import { afterEach, beforeEach, expect, test, vi } from "vitest";
import { LeaderElector } from "./leader-election.ts";
import { ApiError, microTime, type RawClient } from "./raw-client.ts";

interface StoredLease {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: { holderIdentity?: string; renewTime?: string; leaseDurationSeconds?: number };
}

/** One Lease, stored as the apiserver would: 404 before it exists, 409 on a stale write. */
class LeaseStore {
  lease: StoredLease | undefined;
  version = 0;
  /** While true, every call hangs forever (an apiserver that accepted the connection and went silent). */
  hang = false;
  writes = 0;

  client(): RawClient {
    const never = () => new Promise<never>(() => {});
    const unsupported = () => Promise.reject(new Error("not used by the elector"));
    return {
      get: async <T>() => {
        if (this.hang) return never();
        if (!this.lease) throw new ApiError(404, "NotFound", "lease not found");
        return structuredClone(this.lease) as T;
      },
      create: async <T>(_path: string, body: object) => {
        if (this.hang) return never();
        if (this.lease) throw new ApiError(409, "AlreadyExists", "lease exists");
        return this.store(body as StoredLease) as T;
      },
      replace: async <T>(_path: string, body: object) => {
        if (this.hang) return never();
        const lease = body as StoredLease;
        if (lease.metadata.resourceVersion !== String(this.version)) throw new ApiError(409, "Conflict", "stale resourceVersion");
        return this.store(lease) as T;
      },
      apply: unsupported,
      delete: unsupported,
    };
  }

  /** Another holder writes the record (its own renew). */
  setHolder(holderIdentity: string, renewTime: Date, leaseDurationSeconds = 15): void {
    this.store({
      metadata: { name: "lease", namespace: "ns" },
      spec: { holderIdentity, renewTime: microTime(renewTime), leaseDurationSeconds },
    });
  }

  private store(lease: StoredLease): StoredLease {
    this.version++;
    this.writes++;
    this.lease = { ...structuredClone(lease), metadata: { ...lease.metadata, resourceVersion: String(this.version) } };
    return structuredClone(this.lease);
  }
}

const HOUR = 3_600_000;
let store: LeaseStore;
let events: { what: string; at: number }[];
let elector: LeaderElector;

function candidate(identity: string): LeaderElector {
  return new LeaderElector({
    client: store.client(),
    namespace: "ns",
    name: "lease",
    identity,
    leaseDurationSeconds: 15,
    renewDeadlineMs: 10_000,
    retryPeriodMs: 2_000,
    onStartedLeading: () => events.push({ what: `${identity} leads`, at: Date.now() }),
    onStoppedLeading: (why) => events.push({ what: `${identity} ${why}`, at: Date.now() }),
  });
}

beforeEach(() => {
  vi.useFakeTimers({ now: new Date("2026-11-29T12:00:00Z") });
  store = new LeaseStore();
  events = [];
});
afterEach(async () => {
  await elector?.stop();
  vi.useRealTimers();
});

test("a renew that never returns: the leader steps down ('lost') at its renew deadline, while the call still hangs", async () => {
  elector = candidate("a");
  elector.start();
  await vi.advanceTimersByTimeAsync(0);
  expect(events.map((e) => e.what)).toEqual(["a leads"]);
  await vi.advanceTimersByTimeAsync(4_000); // two renews
  const lastRenew = Date.now() - (Date.now() % 2_000);
  store.hang = true;
  await vi.advanceTimersByTimeAsync(30_000);
  expect(events.map((e) => e.what)).toEqual(["a leads", "a lost"]);
  expect(elector.isLeader).toBe(false);
  // Not later than the deadline counted from the last renew that came back.
  const lost = events[1]?.at ?? 0;
  expect(lost - lastRenew).toBeLessThanOrEqual(10_000);
  expect(lost - lastRenew).toBeGreaterThan(8_000);
});

test("a holder whose clock is an hour behind, but who keeps renewing, is never deposed", async () => {
  store.setHolder("b", new Date(Date.now() - HOUR));
  elector = candidate("a");
  elector.start();
  for (let second = 0; second < 120; second += 2) {
    store.setHolder("b", new Date(Date.now() - HOUR)); // b renews: its record changes, its clock stays behind
    await vi.advanceTimersByTimeAsync(2_000);
  }
  expect(events).toEqual([]);
  expect(store.lease?.spec.holderIdentity).toBe("b");
});

test("a dead holder whose clock was an hour ahead is replaced one lease duration after its record stopped changing", async () => {
  store.setHolder("b", new Date(Date.now() + HOUR));
  const died = Date.now();
  elector = candidate("a");
  elector.start();
  await vi.advanceTimersByTimeAsync(60_000);
  expect(events.map((e) => e.what)).toEqual(["a leads"]);
  const tookOver = (events[0]?.at ?? 0) - died;
  expect(tookOver).toBeGreaterThanOrEqual(15_000);
  expect(tookOver).toBeLessThanOrEqual(15_000 + 2_000);
  expect(store.lease?.spec.holderIdentity).toBe("a");
});

test("two candidates on one lease: exactly one leads at any time, and the other takes over when it stops", async () => {
  elector = candidate("a");
  const other = candidate("b");
  elector.start();
  other.start();
  for (let i = 0; i < 30; i++) {
    await vi.advanceTimersByTimeAsync(1_000);
    expect([elector.isLeader, other.isLeader].filter(Boolean)).toHaveLength(1);
  }
  const [leader, standby] = elector.isLeader ? [elector, other] : [other, elector];
  await leader.stop();
  await vi.advanceTimersByTimeAsync(3_000);
  expect(standby.isLeader).toBe(true);
  await other.stop();
});
