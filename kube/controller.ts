// What every controller is made of, and the loop that runs them. A controller names the
// collections it watches and how an event there maps to its own keys (an owned Deployment
// maps to its IstioRevision), and a level-based reconcile(key). The runner gives each
// controller a work queue, feeds it from supervised watchers, and records
// controller-runtime's metrics (same names, so existing dashboards work).
import type pino from "pino";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { SharedCache } from "./cache.ts";
import { type Outcome, WorkQueue } from "./queue.ts";
import type { WatchedObject } from "./watcher.ts";

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

/**
 * Runs controllers: queues, subscriptions to the shared cache's informers, and workers, until
 * stop(). Two controllers watching the same collection and selector share one stream.
 */
export class ControllerRunner {
  private readonly queues = new Map<string, WorkQueue>();
  private readonly unsubscribe: (() => void)[] = [];
  private readonly cache: SharedCache;
  private readonly controllers: Controller[];
  private readonly metrics: ControllerMetrics;
  private readonly log: pino.Logger;
  private depthTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(cache: SharedCache, controllers: Controller[], metrics: ControllerMetrics, log: pino.Logger) {
    this.cache = cache;
    this.controllers = controllers;
    this.metrics = metrics;
    this.log = log;
  }

  /**
   * Starts every controller: first every required informer lists (keys pile up, coalesced, in
   * the queues), then the workers start, so no reconcile runs on a partial view (a revision
   * rendered before the tags were known). Resolves once that has happened.
   */
  async start(): Promise<void> {
    const workers: (() => void)[] = [];
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
        const informer = this.cache.informer({
          path: watch.path,
          labelSelector: watch.labelSelector,
          fieldSelector: watch.fieldSelector,
          optional: watch.optional,
        });
        this.unsubscribe.push(
          informer.subscribe((key, object, deleted) => {
            for (const k of watch.map(key, object, deleted)) queue.add(k);
          }),
        );
      }
    }
    this.depthTimer = setInterval(() => {
      for (const [name, queue] of this.queues) this.metrics.depth.set({ name }, queue.depth);
    }, 1000);
    this.depthTimer.unref();
    await this.cache.start();
    if (!this.stopped) for (const start of workers) start();
  }

  /** Queues a key for a controller (for causes outside the API, like a local process exiting). */
  enqueue(controller: string, key: string): void {
    this.queues.get(controller)?.add(key);
  }

  stop(): void {
    this.stopped = true;
    if (this.depthTimer) clearInterval(this.depthTimer);
    for (const unsubscribe of this.unsubscribe.splice(0)) unsubscribe();
    for (const q of this.queues.values()) q.shutdown();
    this.queues.clear();
  }
}
