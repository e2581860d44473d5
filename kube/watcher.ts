// List-then-watch that feeds object keys to a work queue and keeps going on its own:
// - a watch the server closes (its timeout) resumes from the last resourceVersion seen;
// - "410 Gone" (history compacted) relists, and objects that vanished meanwhile are reported;
// - any other failure retries with exponential backoff, the first list included (start()
//   resolves only once a list has succeeded);
// - a watch that goes silent (no byte, not even the apiserver's bookmark, for the watch's
//   timeout plus 5 s: a dead proxy, a half-open connection) is dropped and re-established;
// - a periodic resync relists and hands every key over again (level-based reconcilers
//   catch up on anything a watch could have missed).
// Only keys (namespace/name) leave the watcher: reconcilers read state themselves.
import { request } from "node:https";
import type { KubeConfig } from "@kubernetes/client-node";
import { type RawClient, rawClient } from "./raw-client.ts";

export interface WatcherOptions {
  kc: KubeConfig;
  /** Collection path, e.g. /api/v1/namespaces/x/configmaps or /apis/apps/v1/deployments. */
  path: string;
  /**
   * Called with `namespace/name` (or `name`) for every add, update, delete and resync, and
   * with the object when the event carried one (not for objects found gone at a relist);
   * `deleted` says the object is gone (a DELETED event, or missing at a relist).
   */
  onKey: (key: string, object?: WatchedObject, deleted?: boolean) => void;
  /** Only metadata (PartialObjectMetadata): far less memory and traffic, e.g. for pods. */
  metadataOnly?: boolean;
  labelSelector?: string;
  /** e.g. metadata.name=cacerts: lets RBAC scope list/watch to named objects. */
  fieldSelector?: string;
  /** How long the server keeps one watch open before the watcher resumes it (bookmarks come 2 s before). */
  watchTimeoutSeconds?: number;
  resyncIntervalMs?: number;
  onError?: (err: Error) => void;
}

interface ObjectMeta {
  name?: string;
  namespace?: string;
  resourceVersion?: string;
  labels?: Record<string, string>;
  ownerReferences?: { kind: string; name: string; uid: string; controller?: boolean }[];
}

export interface WatchedObject {
  metadata?: ObjectMeta;
  [field: string]: unknown;
}

export class Watcher {
  private readonly options: Required<Omit<WatcherOptions, "labelSelector" | "fieldSelector" | "onError" | "metadataOnly">> &
    Pick<WatcherOptions, "labelSelector" | "fieldSelector" | "onError" | "metadataOnly">;
  private readonly client: RawClient;
  private readonly known = new Set<string>();
  private resourceVersion = "";
  private stopped = false;
  private abort: (() => void) | undefined;
  private failures = 0;
  private resyncTimer: NodeJS.Timeout | undefined;
  /** Lists done so far (the first one and every relist); for tests and metrics. */
  lists = 0;

  constructor(options: WatcherOptions) {
    // 40-50 s: short enough that a silent connection is noticed within a minute, spread so watches do not renew together.
    this.options = { watchTimeoutSeconds: 40 + Math.floor(Math.random() * 11), resyncIntervalMs: 10 * 60 * 1000, ...options };
    this.client = rawClient(options.kc);
  }

  /** Lists once (resolving when the initial keys are handed over), then watches until stop(). */
  async start(): Promise<void> {
    for (let failures = 0; ; failures++) {
      if (this.stopped) return;
      try {
        await this.list();
        break;
      } catch (err) {
        this.options.onError?.(err as Error);
        await new Promise((r) => setTimeout(r, Math.min(10_000, 200 * 2 ** failures)));
      }
    }
    void this.loop();
    this.resyncTimer = setInterval(
      () => void this.list().catch((err: Error) => this.options.onError?.(err)),
      this.options.resyncIntervalMs,
    );
    this.resyncTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    this.abort?.();
  }

  private key(meta: ObjectMeta | undefined): string {
    return meta?.namespace ? `${meta.namespace}/${meta.name}` : (meta?.name ?? "");
  }

  private query(extra: Record<string, string>): string {
    const params = new URLSearchParams(extra);
    if (this.options.labelSelector) params.set("labelSelector", this.options.labelSelector);
    if (this.options.fieldSelector) params.set("fieldSelector", this.options.fieldSelector);
    return `${this.options.path}?${params}`;
  }

  private async list(): Promise<void> {
    const accept = this.options.metadataOnly
      ? "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
      : undefined;
    const body = (await this.client.get(this.query({}), accept)) as {
      metadata?: { resourceVersion?: string };
      items?: WatchedObject[];
    };
    this.lists++;
    const current = new Map((body.items ?? []).map((item) => [this.key(item.metadata), item]));
    for (const gone of [...this.known].filter((k) => !current.has(k))) this.options.onKey(gone, undefined, true);
    this.known.clear();
    for (const [key, item] of current) {
      this.known.add(key);
      this.options.onKey(key, item);
    }
    this.resourceVersion = body.metadata?.resourceVersion ?? "";
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      try {
        const outcome = await this.watchOnce();
        this.failures = 0;
        if (outcome === "gone") await this.list();
      } catch (err) {
        if (this.stopped) return;
        this.options.onError?.(err as Error);
        const delay = Math.min(30_000, 100 * 2 ** this.failures++);
        await new Promise((r) => setTimeout(r, delay));
        if (this.failures > 1) await this.list().catch(() => undefined);
      }
    }
  }

  /** One watch request, until the server ends it ("closed") or reports expiry ("gone"). */
  private async watchOnce(): Promise<"closed" | "gone"> {
    const path = this.query({
      watch: "1",
      resourceVersion: this.resourceVersion,
      allowWatchBookmarks: "true",
      timeoutSeconds: String(this.options.watchTimeoutSeconds),
    });
    const options: Parameters<typeof request>[1] = { method: "GET" };
    if (this.options.metadataOnly)
      options.headers = { accept: "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json" };
    await this.options.kc.applyToHTTPSOptions(options);
    const server = (this.options.kc.getCurrentCluster()?.server ?? "").replace(/\/+$/, "");
    return new Promise((resolve, reject) => {
      const req = request(`${server}${path}`, options, (res) => {
        if (res.statusCode === 410) {
          res.resume();
          return resolve("gone");
        }
        if (res.statusCode !== 200) {
          res.resume();
          return reject(new Error(`watch ${this.options.path}: HTTP ${res.statusCode}`));
        }
        let buffered = "";
        let outcome: "closed" | "gone" = "closed";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          buffered += chunk;
          let newline = buffered.indexOf("\n");
          while (newline >= 0) {
            const line = buffered.slice(0, newline);
            buffered = buffered.slice(newline + 1);
            try {
              if (line.trim()) outcome = this.handle(JSON.parse(line)) ?? outcome;
            } catch (err) {
              req.destroy(err as Error);
              return;
            }
            newline = buffered.indexOf("\n");
          }
        });
        res.on("end", () => resolve(outcome));
        res.on("error", reject);
      });
      this.abort = () => req.destroy();
      const silentMs = (this.options.watchTimeoutSeconds + 5) * 1000;
      req.setTimeout(silentMs, () =>
        req.destroy(new Error(`watch ${this.options.path}: nothing received for ${silentMs / 1000} s`)),
      );
      req.on("error", (err) => (this.stopped ? resolve("closed") : reject(err)));
      req.end();
    });
  }

  private handle(event: { type: string; object?: WatchedObject & { code?: number } }): "gone" | undefined {
    const meta = event.object?.metadata;
    if (event.type === "ERROR") {
      if (event.object?.code === 410) return "gone";
      throw new Error(`watch ${this.options.path}: error event ${JSON.stringify(event.object)}`);
    }
    if (meta?.resourceVersion) this.resourceVersion = meta.resourceVersion;
    if (event.type === "BOOKMARK") return undefined;
    const key = this.key(meta);
    if (event.type === "DELETED") this.known.delete(key);
    else this.known.add(key);
    this.options.onKey(key, event.object, event.type === "DELETED");
    return undefined;
  }
}
