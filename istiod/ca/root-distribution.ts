// ConfigMap istio-ca-root-cert (key root-cert.pem) in every namespace, so workloads can trust
// the mesh CA: created for new namespaces, repaired when edited or deleted, rewritten when the
// root changes. Skips the namespaces upstream skips (kube-public, kube-node-lease,
// local-path-storage) and namespaces being deleted.
import type pino from "pino";
import type { Informer, SharedCache } from "../../kube/cache.ts";
import { WorkQueue } from "../../kube/queue.ts";
import { ApiError, type RawClient } from "../../kube/raw-client.ts";
import type { WatchedObject } from "../../kube/watcher.ts";

export const ROOT_CONFIGMAP = "istio-ca-root-cert";
export const SKIPPED_NAMESPACES = new Set(["kube-public", "kube-node-lease", "local-path-storage"]);

interface ConfigMap {
  metadata: { name: string; namespace: string; labels?: Record<string, string>; resourceVersion?: string };
  data?: Record<string, string>;
}

export function rootConfigMap(namespace: string, rootPem: string): ConfigMap {
  return {
    metadata: { name: ROOT_CONFIGMAP, namespace, labels: { "istio.io/config": "true" } },
    data: { "root-cert.pem": rootPem },
  };
}

export interface RootDistributionOptions {
  cache: SharedCache;
  client: RawClient;
  rootPem: () => string;
  log: pino.Logger;
}

export class RootDistribution {
  private readonly queue = new WorkQueue({ baseDelayMs: 200, maxDelayMs: 30_000 });
  private readonly informers: Informer[];
  private readonly unsubscribe: (() => void)[];
  private readonly namespaces = new Set<string>();
  private readonly options: RootDistributionOptions;
  /** ConfigMaps written, for tests and metrics. */
  writes = 0;

  constructor(options: RootDistributionOptions) {
    this.options = options;
    const namespaces = options.cache.informer({ path: "/api/v1/namespaces" });
    const rootConfigMaps = options.cache.informer({ path: "/api/v1/configmaps", labelSelector: "istio.io/config=true" });
    this.informers = [namespaces, rootConfigMaps];
    this.unsubscribe = [
      namespaces.subscribe((name, object) => {
        const terminating = (object as WatchedObject & { status?: { phase?: string } })?.status?.phase === "Terminating";
        if (!object || terminating || SKIPPED_NAMESPACES.has(name)) {
          this.namespaces.delete(name);
          return;
        }
        this.namespaces.add(name);
        this.queue.add(name);
      }),
      rootConfigMaps.subscribe((key) => {
        const [namespace, name] = key.split("/");
        if (name === ROOT_CONFIGMAP && namespace && this.namespaces.has(namespace)) this.queue.add(namespace);
      }),
    ];
  }

  async start(): Promise<void> {
    void this.queue.run(
      (namespace) => this.sync(namespace),
      2,
      (namespace, err) =>
        this.options.log.warn({ namespace, error: (err as Error).message }, "root ConfigMap not written; retrying"),
    );
    for (const informer of this.informers) await informer.start();
  }

  /** After the root changed: rewrite every namespace's copy. */
  resyncAll(): void {
    for (const namespace of this.namespaces) this.queue.add(namespace);
  }

  stop(): void {
    for (const unsubscribe of this.unsubscribe) unsubscribe();
    this.queue.shutdown();
  }

  private async sync(namespace: string): Promise<undefined> {
    if (!this.namespaces.has(namespace)) return undefined;
    const path = `/api/v1/namespaces/${namespace}/configmaps`;
    const desired = rootConfigMap(namespace, this.options.rootPem());
    let live: ConfigMap | undefined;
    try {
      live = await this.options.client.get<ConfigMap>(`${path}/${ROOT_CONFIGMAP}`);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw err;
    }
    if (!live) {
      await this.options.client.create(path, { apiVersion: "v1", kind: "ConfigMap", ...desired }).catch((err: unknown) => {
        // 409: created meanwhile (another revision); 403/404: the namespace is going away.
        if (err instanceof ApiError && [403, 404, 409].includes(err.status)) return;
        throw err;
      });
      this.writes++;
      return undefined;
    }
    const sameData = JSON.stringify(live.data ?? {}) === JSON.stringify(desired.data);
    if (sameData && live.metadata.labels?.["istio.io/config"] === "true") return undefined;
    await this.options.client.replace(`${path}/${ROOT_CONFIGMAP}`, {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { ...live.metadata, labels: { ...live.metadata.labels, "istio.io/config": "true" } },
      data: desired.data,
    });
    this.writes++;
    return undefined;
  }
}
