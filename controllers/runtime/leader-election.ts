// Leader election on a coordination.k8s.io/v1 Lease, with client-go's rules: the holder
// renews every retry period; another candidate takes the lease only once it has gone
// unrenewed for the lease duration; every write carries the resourceVersion it read, so
// two candidates never both win; a leader that cannot renew within the renew deadline
// steps down; stopping releases the lease so a successor need not wait.
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
  onStoppedLeading: () => void;
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
    this.stepDown();
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
    const acquired = await this.tryAcquireOrRenew().catch(() => false);
    if (this.stopped) return;
    if (acquired) {
      this.lastRenew = Date.now();
      if (!this.leading) {
        this.leading = true;
        this.options.onStartedLeading();
      }
    } else if (this.leading && Date.now() - this.lastRenew > this.options.renewDeadlineMs) {
      this.stepDown();
    }
    this.timer = setTimeout(() => void this.tick(), this.options.retryPeriodMs);
    this.timer.unref();
  }

  private stepDown(): void {
    if (!this.leading) return;
    this.leading = false;
    this.options.onStoppedLeading();
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
    if (holder !== identity) {
      const renewed = lease.spec.renewTime ? Date.parse(lease.spec.renewTime) : 0;
      const duration = (lease.spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
      if (holder !== "" && renewed + duration > Date.now()) return false; // held, and not expired
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
