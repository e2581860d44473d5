// Leader election on a coordination.k8s.io/v1 Lease, with client-go's rules: the holder
// renews every retry period; another candidate takes the lease only once it has seen the
// record unchanged for the lease duration, timed by this process's own clock from when it
// last saw the record change (never by the holder's renewTime, so skewed clocks cannot make
// two leaders); every write carries the resourceVersion it read, so two candidates never both
// win; each attempt is cut off at the renew deadline, and a leader that has not renewed by
// then steps down at once, even while a call hangs; stopping releases the lease.
import { ApiError, microTime, type RawClient } from "./raw-client.ts";

export interface LeaderElectionOptions {
  client: RawClient;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  onStartedLeading: () => void;
  /** "lost": the renew deadline passed (the caller should stop and exit); "stopped": stop() was called. */
  onStoppedLeading: (why: "lost" | "stopped") => void;
}

interface Lease {
  apiVersion: "coordination.k8s.io/v1";
  kind: "Lease";
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

export class LeaderElector {
  private readonly options: Required<Omit<LeaderElectionOptions, "onStartedLeading" | "onStoppedLeading">> &
    Pick<LeaderElectionOptions, "onStartedLeading" | "onStoppedLeading">;
  private leading = false;
  private lastRenew = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** The lease record as last read, and when (this process's clock) it was first seen so. */
  private observed: { record: string; at: number } | undefined;

  constructor(options: LeaderElectionOptions) {
    this.options = { leaseDurationSeconds: 15, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, ...options };
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    void this.tick();
  }

  /** Stops campaigning; a leader releases the lease so the next candidate takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (!this.leading) return;
    this.stepDown("stopped");
    try {
      const lease = await this.options.client.get<Lease>(this.path());
      if (lease.spec.holderIdentity === this.options.identity) {
        lease.spec.holderIdentity = "";
        lease.spec.leaseDurationSeconds = 1;
        await this.options.client.replace(this.path(), lease);
      }
    } catch {
      // Best effort: an unreleased lease simply expires.
    }
  }

  private path(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${this.options.namespace}/leases/${this.options.name}`;
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    // A leader's attempt may run only until its renew deadline; a candidate's for as long.
    const deadline = (this.leading ? this.lastRenew : Date.now()) + this.options.renewDeadlineMs;
    const acquired = await withDeadline(this.tryAcquireOrRenew(), deadline - Date.now()).catch(() => false);
    if (this.stopped) return;
    if (acquired) {
      this.lastRenew = Date.now();
      if (!this.leading) {
        this.leading = true;
        this.options.onStartedLeading();
      }
    } else if (this.leading && Date.now() >= deadline) {
      this.stepDown("lost");
    }
    this.timer = setTimeout(() => void this.tick(), this.options.retryPeriodMs);
    this.timer.unref();
  }

  private stepDown(why: "lost" | "stopped"): void {
    if (!this.leading) return;
    this.leading = false;
    this.options.onStoppedLeading(why);
  }

  /** True when this candidate holds the lease after the attempt. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const { client, identity, leaseDurationSeconds } = this.options;
    const now = microTime(new Date());
    let lease: Lease;
    try {
      lease = await client.get<Lease>(this.path());
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 404) throw err;
      const fresh: Lease = {
        apiVersion: "coordination.k8s.io/v1",
        kind: "Lease",
        metadata: { name: this.options.name, namespace: this.options.namespace },
        spec: { holderIdentity: identity, leaseDurationSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 },
      };
      await client.create(`/apis/coordination.k8s.io/v1/namespaces/${this.options.namespace}/leases`, fresh);
      return true;
    }
    const holder = lease.spec.holderIdentity ?? "";
    const record = JSON.stringify(lease.spec);
    if (this.observed?.record !== record) this.observed = { record, at: Date.now() };
    if (holder !== identity) {
      const duration = (lease.spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
      // Held, and seen to change within the lease duration (by our clock): not expired.
      if (holder !== "" && this.observed.at + duration > Date.now()) return false;
      lease.spec.leaseTransitions = (lease.spec.leaseTransitions ?? 0) + 1;
      lease.spec.acquireTime = now;
    }
    lease.spec.holderIdentity = identity;
    lease.spec.leaseDurationSeconds = leaseDurationSeconds;
    lease.spec.renewTime = now;
    // The resourceVersion read above makes this write fail (409) if anyone wrote in between.
    await client.replace(this.path(), lease);
    return true;
  }
}

/** `promise`, or false once `ms` have passed (the call itself is left to finish or fail). */
function withDeadline(promise: Promise<boolean>, ms: number): Promise<boolean> {
  if (ms <= 0) return Promise.resolve(false);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
    timer.unref();
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
