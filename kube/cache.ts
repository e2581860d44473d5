// The shared informer cache: one list-watch per collection and selector, however many
// controllers want it, and an in-memory store of what it saw that reconcilers read instead of
// the apiserver (cachedReads). The coming xDS server reads Services, EndpointSlices, Pods and
// Istio config from the same stores.
//
// - SharedCache.informer(spec) returns the informer for that collection and selector, creating
//   it once; subscribe() adds a handler (late subscribers get the current contents replayed).
// - start() resolves when every required informer has listed once (optional ones, for CRDs that
//   may not be installed, keep retrying in the background).
// - lookup(objectPath) answers a GET from the store: the object, null when a full (unselected)
//   informer is synced and does not have it (a 404), or undefined when the cache cannot say;
//   lookupList(path) answers a collection GET whose label selector an informer's covers.
import type { KubeConfig } from "@kubernetes/client-node";
import { ApiError, type RawClient } from "./raw-client.ts";
import { type WatchedObject, Watcher } from "./watcher.ts";

export interface InformerSpec {
  /** Collection path, e.g. /apis/apps/v1/deployments (all namespaces) or /api/v1/namespaces/x/configmaps. */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Only metadata (PartialObjectMetadata): such a store never answers full reads. */
  metadataOnly?: boolean;
  /** What the store keeps of each object (e.g. a few labels of pods instead of all their metadata). */
  transform?: (object: WatchedObject) => WatchedObject;
  /** A collection that may not exist yet: start() does not wait for it. */
  optional?: boolean;
}

export type Handler = (key: string, object: WatchedObject | undefined, deleted: boolean) => void;

export class Informer {
  readonly spec: InformerSpec;
  private readonly store = new Map<string, WatchedObject>();
  private readonly handlers = new Set<Handler>();
  private readonly watcher: Watcher;
  private started: Promise<void> | undefined;
  synced = false;

  constructor(kc: KubeConfig, spec: InformerSpec, onError?: (err: Error) => void) {
    this.spec = spec;
    this.watcher = new Watcher({
      kc,
      path: spec.path,
      labelSelector: spec.labelSelector,
      fieldSelector: spec.fieldSelector,
      metadataOnly: spec.metadataOnly,
      onError,
      onKey: (key, object, deleted) => {
        if (deleted) this.store.delete(key);
        else if (object) this.store.set(key, spec.transform ? spec.transform(object) : object);
        for (const handler of this.handlers) handler(key, object, Boolean(deleted));
      },
    });
  }

  /** Adds a handler; when the store is already filled, it is called for every key first. */
  subscribe(handler: Handler): () => void {
    this.handlers.add(handler);
    if (this.synced) for (const [key, object] of this.store) handler(key, object, false);
    return () => this.handlers.delete(handler);
  }

  start(): Promise<void> {
    this.started ??= this.watcher.start().then(() => {
      this.synced = true;
    });
    return this.started;
  }

  stop(): void {
    this.watcher.stop();
  }

  get(key: string): WatchedObject | undefined {
    return this.store.get(key);
  }

  list(): WatchedObject[] {
    return [...this.store.values()];
  }

  get size(): number {
    return this.store.size;
  }
}

export class SharedCache {
  private readonly kc: KubeConfig;
  private readonly informers = new Map<string, Informer>();
  private readonly onError?: (spec: InformerSpec, err: Error) => void;
  private running = false;

  constructor(kc: KubeConfig, onError?: (spec: InformerSpec, err: Error) => void) {
    this.kc = kc;
    this.onError = onError;
  }

  /** The informer for this collection and selector (created on first use; started if the cache runs). */
  informer(spec: InformerSpec): Informer {
    const key = informerKey(spec);
    let informer = this.informers.get(key);
    if (!informer) {
      informer = new Informer(this.kc, spec, (err) => this.onError?.(spec, err));
      this.informers.set(key, informer);
      if (this.running) void informer.start();
    } else if (informer.spec.optional && !spec.optional) {
      // Someone needs it: it stays optional only as long as everyone treats it so.
      informer.spec.optional = false;
    }
    return informer;
  }

  /** Starts every informer; resolves once the required ones have listed. */
  async start(): Promise<void> {
    this.running = true;
    const all = [...this.informers.values()];
    for (const informer of all.filter((i) => i.spec.optional)) void informer.start();
    await Promise.all(all.filter((i) => !i.spec.optional).map((i) => i.start()));
  }

  stop(): void {
    this.running = false;
    for (const informer of this.informers.values()) informer.stop();
  }

  /** How many list-watch streams the cache holds. */
  get streams(): number {
    return this.informers.size;
  }

  /**
   * The stored object at an API object path (e.g. /apis/apps/v1/namespaces/a/deployments/b):
   * the object; null when a synced, unselected, full-object informer of its collection lacks
   * it; undefined when no informer can say (the caller asks the apiserver).
   */
  lookup(objectPath: string): WatchedObject | null | undefined {
    const match = /^(\/api\/v1|\/apis\/[^/]+\/[^/]+)(?:\/namespaces\/([^/]+))?\/([^/?]+)\/([^/?]+)$/.exec(objectPath);
    if (!match) return undefined;
    const [, prefix, namespace, resource, name] = match;
    const key = namespace ? `${namespace}/${name}` : (name ?? "");
    const candidates = [`${prefix}/${resource}`, ...(namespace ? [`${prefix}/namespaces/${namespace}/${resource}`] : [])];
    let absent = false;
    let newest: WatchedObject | undefined;
    for (const path of candidates) {
      for (const informer of this.informers.values()) {
        const spec = informer.spec;
        if (spec.path !== path || !informer.synced || spec.metadataOnly || spec.transform) continue;
        const object = informer.get(key);
        // Several informers (other selectors) may hold it, each as far as its own watch got: the
        // newest copy, or a reconcile woken by the newer one would read the older and stop there.
        if (object) newest = newest && !isNewer(object, newest) ? newest : object;
        else if (!spec.labelSelector && !spec.fieldSelector) absent = true;
      }
    }
    if (newest) return newest;
    return absent ? null : undefined;
  }

  /**
   * A collection GET (`/api/v1/namespaces`, `…/validatingwebhookconfigurations?labelSelector=a=b`)
   * from a synced, full-object informer of that collection whose selector the query's implies;
   * undefined when none can answer it (other query parameters, set-based selectors).
   */
  lookupList(path: string): { items: WatchedObject[] } | undefined {
    const [collection = "", query = ""] = path.split("?");
    const params = new URLSearchParams(query);
    if ([...params.keys()].some((k) => k !== "labelSelector")) return undefined;
    const wanted = selectorTerms(params.get("labelSelector") ?? undefined);
    if (!wanted) return undefined;
    for (const informer of this.informers.values()) {
      const spec = informer.spec;
      if (spec.path !== collection || !informer.synced || spec.metadataOnly || spec.transform || spec.fieldSelector) continue;
      const has = selectorTerms(spec.labelSelector);
      // The informer holds a superset of the answer when each of its terms is implied by the query's.
      const implied = has && [...has].every(([k, v]) => wanted.has(k) && (v === undefined || wanted.get(k) === v));
      if (!implied) continue;
      const items = informer.list().filter((o) => {
        const labels = (o.metadata?.labels ?? {}) as Record<string, string>;
        return [...wanted].every(([k, v]) => (v === undefined ? k in labels : labels[k] === v));
      });
      return { items };
    }
    return undefined;
  }
}

/**
 * Whether `a` is a later version of an object than `b`: resourceVersions are opaque, but one
 * apiserver's are etcd revisions (integers), so compared as numbers when both are.
 */
export function isNewer(a: WatchedObject, b: WatchedObject): boolean {
  const va = (a.metadata as { resourceVersion?: string } | undefined)?.resourceVersion ?? "";
  const vb = (b.metadata as { resourceVersion?: string } | undefined)?.resourceVersion ?? "";
  if (!/^\d+$/.test(va) || !/^\d+$/.test(vb)) return false;
  return BigInt(va) > BigInt(vb);
}

/** Label selector terms: "k=v" (equals) or "k" (exists); undefined for anything else (set-based, !=). */
function selectorTerms(selector: string | undefined): Map<string, string | undefined> | undefined {
  const terms = new Map<string, string | undefined>();
  for (const term of (selector ?? "").split(",").filter(Boolean)) {
    const match = /^([A-Za-z0-9._/-]+)(?:=([A-Za-z0-9._-]*))?$/.exec(term);
    if (!match?.[1]) return undefined;
    terms.set(match[1], match[2]);
  }
  return terms;
}

function informerKey(spec: InformerSpec): string {
  return JSON.stringify([spec.path, spec.labelSelector ?? "", spec.fieldSelector ?? "", Boolean(spec.metadataOnly)]);
}

/**
 * `client` with GETs of single objects answered from `cache` when it can (a copy, so callers
 * may change what they get); everything else, writes included, goes to the apiserver.
 */
export function cachedReads(client: RawClient, cache: SharedCache): RawClient {
  return {
    ...client,
    get: async <T>(path: string, accept?: string): Promise<T> => {
      if (accept === undefined) {
        const cached = cache.lookup(path);
        if (cached === null) throw new ApiError(404, "NotFound", `GET ${path}: 404 NotFound (from the cache)`);
        if (cached !== undefined) return structuredClone(cached) as T;
        const list = cache.lookupList(path);
        if (list) return structuredClone(list) as T;
      }
      return client.get<T>(path, accept);
    },
  };
}
