// What every controller is made of, and the loop that runs them. A controller names the
// collections it watches and how an event there maps to its own keys (an owned Deployment
// maps to its IstioRevision), and a level-based reconcile(key). The runner gives each
// controller a work queue, feeds it from supervised watchers, and records
// controller-runtime's metrics (same names, so existing dashboards work).
import type { KubeConfig } from "@kubernetes/client-node";
import type pino from "pino";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { type Outcome, WorkQueue } from "./queue.ts";
import { type WatchedObject, Watcher } from "./watcher.ts";

export interface Watch {
  /** Collection path, e.g. /apis/apps/v1/deployments. */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  /**
   * A collection that may not exist (another project's CRD, e.g. the Gateway API): its first
   * list is retried in the background and the controller starts without waiting for it.
   */
  optional?: boolean;
  /** The controller's keys an event on `key` concerns. */
  map: (key: string, object?: WatchedObject, deleted?: boolean) => string[];
}

export interface Controller {
  name: string;
  watches: Watch[];
  reconcile(key: string): Promise<Outcome>;
}

export interface ControllerMetrics {
  reconciles: Counter<"controller" | "result">;
  errors: Counter<"controller">;
  duration: Histogram<"controller">;
  depth: Gauge<"name">;
}

export function controllerMetrics(registry: Registry): ControllerMetrics {
  return {
    reconciles: new Counter({
      name: "controller_runtime_reconcile_total",
      help: "Total number of reconciliations per controller",
      labelNames: ["controller", "result"],
      registers: [registry],
    }),
    errors: new Counter({
      name: "controller_runtime_reconcile_errors_total",
      help: "Total number of reconciliation errors per controller",
      labelNames: ["controller"],
      registers: [registry],
    }),
    duration: new Histogram({
      name: "controller_runtime_reconcile_time_seconds",
      help: "Length of time per reconciliation per controller",
      labelNames: ["controller"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    depth: new Gauge({
      name: "workqueue_depth",
      help: "Current depth of workqueue",
      labelNames: ["name"],
      registers: [registry],
    }),
  };
}

/** Runs controllers: queues, watchers and workers, until stop(). */
export class ControllerRunner {
  private readonly queues = new Map<string, WorkQueue>();
  private readonly watchers: Watcher[] = [];
  private readonly kc: KubeConfig;
  private readonly controllers: Controller[];
  private readonly metrics: ControllerMetrics;
  private readonly log: pino.Logger;
  private depthTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(kc: KubeConfig, controllers: Controller[], metrics: ControllerMetrics, log: pino.Logger) {
    this.kc = kc;
    this.controllers = controllers;
    this.metrics = metrics;
    this.log = log;
  }

  /**
   * Starts every controller: first every watch lists (keys pile up, coalesced, in the queues),
   * then the workers start, so no reconcile runs on a partial view (a revision rendered before
   * the tags were known). Resolves once that has happened.
   */
  async start(): Promise<void> {
    const workers: (() => void)[] = [];
    const background: Watcher[] = [];
    for (const controller of this.controllers) {
      const queue = new WorkQueue({ baseDelayMs: 100, maxDelayMs: 60_000 });
      this.queues.set(controller.name, queue);
      workers.push(
        () =>
          void queue.run(
            async (key) => {
              const stop = this.metrics.duration.startTimer({ controller: controller.name });
              try {
                const outcome = await controller.reconcile(key);
                this.metrics.reconciles.inc({ controller: controller.name, result: outcome ? "requeue_after" : "success" });
                return outcome;
              } finally {
                stop();
              }
            },
            2,
            (key, err) => {
              this.metrics.reconciles.inc({ controller: controller.name, result: "error" });
              this.metrics.errors.inc({ controller: controller.name });
              this.log.warn({ controller: controller.name, key, error: (err as Error).message }, "reconcile failed; retrying");
            },
          ),
      );
      for (const watch of controller.watches) {
        const watcher = new Watcher({
          kc: this.kc,
          path: watch.path,
          labelSelector: watch.labelSelector,
          fieldSelector: watch.fieldSelector,
          onKey: (key, object, deleted) => {
            for (const k of watch.map(key, object, deleted)) queue.add(k);
          },
          onError: (err) => this.log.warn({ watch: watch.path, error: err.message }, "watch failed; resuming"),
        });
        this.watchers.push(watcher);
        if (watch.optional) background.push(watcher);
      }
    }
    this.depthTimer = setInterval(() => {
      for (const [name, queue] of this.queues) this.metrics.depth.set({ name }, queue.depth);
    }, 1000);
    this.depthTimer.unref();
    for (const w of background) void this.startWatcher(w, true);
    await Promise.all(this.watchers.filter((w) => !background.includes(w)).map((w) => this.startWatcher(w)));
    if (!this.stopped) for (const start of workers) start();
  }

  /** The first list may fail (apiserver restarting, CRDs not yet installed): retry until it works. */
  private async startWatcher(watcher: Watcher, optional = false): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        await watcher.start();
        return;
      } catch (err) {
        if (attempt % 10 === 0)
          this.log[optional ? "debug" : "warn"]({ error: (err as Error).message }, "initial list failed; retrying");
        await new Promise((r) => setTimeout(r, Math.min(5000, 200 * 2 ** Math.min(attempt, 5))));
      }
    }
  }

  /** Queues a key for a controller (for causes outside the API, like a local process exiting). */
  enqueue(controller: string, key: string): void {
    this.queues.get(controller)?.add(key);
  }

  stop(): void {
    this.stopped = true;
    if (this.depthTimer) clearInterval(this.depthTimer);
    for (const w of this.watchers) w.stop();
    for (const q of this.queues.values()) q.shutdown();
    this.watchers.length = 0;
    this.queues.clear();
  }
}
