// Which revisions and tags workloads use, from pods, kept in memory from a metadata-only
// watch of pods that have not finished (status.phase is neither Succeeded nor Failed: a
// completed Job must not pin a revision). A pod refers to:
//   - the revision that injected it (annotation istio.io/rev, written at injection), else
//   - its istio.io/rev label (a revision or a tag), or sidecar.istio.io/inject=true → default;
//   - nothing when labelled sidecar.istio.io/inject=false (istiod's own pods are).
// Only the pod's key and that one name are kept per pod here; the shared cache's store keeps
// the pod's labels and that one annotation. The watch is the shared cache's, retried like all.
import type { Informer, InformerSpec, SharedCache } from "../../kube/cache.ts";
import type { WatchedObject } from "../../kube/watcher.ts";

interface PodMetadata {
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/**
 * The revision or tag a namespace refers to: istio-injection=enabled means `default` and wins
 * over istio.io/rev; otherwise its istio.io/rev label.
 */
export function namespaceReference(labels: Record<string, string>): string | undefined {
  if (labels["istio-injection"] === "enabled") return "default";
  return labels["istio.io/rev"];
}

/** Namespaces (sorted) that refer to `ref`, a revision or a tag. */
export function namespacesUsing(ref: string, namespaces: { name: string; labels: Record<string, string> }[]): string[] {
  return namespaces
    .filter(({ labels }) => namespaceReference(labels) === ref)
    .map((n) => n.name)
    .sort();
}

/** The revision or tag a pod refers to, if any. */
export function podReference(metadata: PodMetadata | undefined): string | undefined {
  // Opted out (the control plane's own pods among them): no revision is used for it. Except
  // Gateway API gateways' pods: never injected, their proxy is rendered for the annotated revision.
  const gateway = metadata?.labels?.["gateway.istio.io/managed"] === "istio.io-gateway-controller";
  if (!gateway && metadata?.labels?.["sidecar.istio.io/inject"] === "false") return undefined;
  const annotation = metadata?.annotations?.["istio.io/rev"];
  if (annotation) return annotation;
  const label = metadata?.labels?.["istio.io/rev"];
  if (label) return label;
  if (metadata?.labels?.["sidecar.istio.io/inject"] === "true") return "default";
  return undefined;
}

/** The pod informer's spec: pods not finished, metadata only, and of that only what podReference reads. */
export const POD_USAGE_INFORMER: InformerSpec = {
  path: "/api/v1/pods",
  fieldSelector: "status.phase!=Succeeded,status.phase!=Failed",
  metadataOnly: true,
  transform: (object) => {
    const { labels, annotations } = (object as WatchedObject & { metadata?: PodMetadata }).metadata ?? {};
    const rev = annotations?.["istio.io/rev"];
    return { metadata: { labels, ...(rev ? { annotations: { "istio.io/rev": rev } } : {}) } };
  },
};

export class PodUsage {
  private readonly byPod = new Map<string, string>();
  private readonly byRef = new Map<string, Set<string>>();
  private readonly informer: Informer;
  private readonly unsubscribe: () => void;

  /** `onChange(ref)` runs when the set of pods referring to `ref` changes. The cache starts the watch (and retries it). */
  constructor(cache: SharedCache, onChange: (ref: string) => void) {
    this.informer = cache.informer(POD_USAGE_INFORMER);
    this.unsubscribe = this.informer.subscribe((key, object, deleted) => {
      const before = this.byPod.get(key);
      const after = deleted ? undefined : podReference((object as WatchedObject & { metadata?: PodMetadata })?.metadata);
      if (before === after) return;
      if (before) {
        this.byRef.get(before)?.delete(key);
        if (this.byRef.get(before)?.size === 0) this.byRef.delete(before);
        this.byPod.delete(key);
        onChange(before);
      }
      if (after) {
        this.byPod.set(key, after);
        const set = this.byRef.get(after) ?? new Set<string>();
        set.add(key);
        this.byRef.set(after, set);
        onChange(after);
      }
    });
  }

  /** Resolves once the pods have been listed (the cache retries a failed list until it works). */
  start(): Promise<void> {
    return this.informer.start();
  }

  stop(): void {
    this.unsubscribe();
  }

  /** Pods (namespace/name) referring to `ref`, sorted. */
  pods(ref: string): string[] {
    return [...(this.byRef.get(ref) ?? [])].sort();
  }

  get size(): number {
    return this.byPod.size;
  }
}
