// Keeps this revision's webhook configurations pointing at a control plane they trust:
// - caBundle of every webhook in the MutatingWebhookConfigurations and
//   ValidatingWebhookConfigurations labelled istio.io/rev=<revision> is set to our CA;
// - once the validator has been seen rejecting a bad object (the self-test), the
//   validating webhooks' failurePolicy becomes Fail. Until then it stays Ignore, so a
//   control plane that is not serving yet never blocks anyone's config.
// The operator renders these objects and leaves exactly these two fields to us.

import type { Informer, SharedCache } from "../kube/cache.ts";
import { WorkQueue } from "../kube/queue.ts";
import { ApiError, type RawClient } from "../kube/raw-client.ts";

const BASE = "/apis/admissionregistration.k8s.io/v1";
type Kind = "mutatingwebhookconfigurations" | "validatingwebhookconfigurations";

interface WebhookConfiguration {
  metadata: { name: string; resourceVersion?: string };
  webhooks?: { name: string; clientConfig?: { caBundle?: string }; failurePolicy?: string }[];
}

export interface WebhookPatcherOptions {
  cache: SharedCache;
  client: RawClient;
  /** The revision's label value: its name, or "default". */
  revisionLabel: string;
  caPem: () => string;
  /** Whether the validator has proved it rejects bad config. */
  validatorProven: () => boolean;
  log: (message: string, fields?: object) => void;
  /** Called when the set of revision tags pointing at this revision changes. */
  onTagsChanged?: (tags: string[]) => void;
}

/** The changes a configuration needs; undefined when it is already right. */
export function patchedConfiguration(
  config: WebhookConfiguration,
  kind: Kind,
  caBundle: string,
  failClosed: boolean,
): WebhookConfiguration | undefined {
  let changed = false;
  const webhooks = (config.webhooks ?? []).map((webhook) => {
    const next = { ...webhook, clientConfig: { ...webhook.clientConfig } };
    if (next.clientConfig.caBundle !== caBundle) {
      next.clientConfig.caBundle = caBundle;
      changed = true;
    }
    if (kind === "validatingwebhookconfigurations" && failClosed && next.failurePolicy !== "Fail") {
      next.failurePolicy = "Fail";
      changed = true;
    }
    return next;
  });
  return changed ? { ...config, webhooks } : undefined;
}

export class WebhookPatcher {
  private readonly queue = new WorkQueue({ baseDelayMs: 200, maxDelayMs: 10_000 });
  private readonly informers: Informer[];
  private readonly unsubscribe: (() => void)[];
  private readonly seen = new Set<string>();
  /** Writes made, for tests and metrics. */
  patches = 0;

  private readonly options: WebhookPatcherOptions;

  constructor(options: WebhookPatcherOptions) {
    this.options = options;
    const kinds = ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"] as const;
    this.informers = kinds.map((kind) =>
      options.cache.informer({ path: `${BASE}/${kind}`, labelSelector: `istio.io/rev=${options.revisionLabel}` }),
    );
    this.unsubscribe = this.informers.map((informer, i) =>
      informer.subscribe((name, object, deleted) => {
        const kind = kinds[i] as Kind;
        this.seen.add(`${kind}/${name}`);
        this.queue.add(`${kind}/${name}`);
        if (kind === "mutatingwebhookconfigurations")
          this.trackTag(name, deleted ? undefined : object?.metadata?.labels?.["istio.io/tag"]);
      }),
    );
  }

  async start(): Promise<void> {
    void this.queue.run(
      (key) => this.patch(key),
      1,
      (key, err) => this.options.log("webhook patch failed; retrying", { key, error: (err as Error).message }),
    );
    await Promise.all(this.informers.map((informer) => informer.start()));
  }

  /** Revision tags pointing at this revision (from their injectors' istio.io/tag label), by configuration name. */
  private readonly tagsByConfig = new Map<string, string>();

  /** The revision tags pointing at this revision now, sorted. */
  tags(): string[] {
    return [...new Set(this.tagsByConfig.values())].sort();
  }

  private trackTag(config: string, tag: string | undefined): void {
    const before = this.tags().join(",");
    if (tag) this.tagsByConfig.set(config, tag);
    else this.tagsByConfig.delete(config);
    if (this.tags().join(",") !== before) this.options.onTagsChanged?.(this.tags());
  }

  /** Re-checks every configuration seen so far (after the CA or the self-test outcome changed). */
  recheckAll(): void {
    for (const key of this.seen) this.queue.add(key);
  }

  stop(): void {
    for (const unsubscribe of this.unsubscribe) unsubscribe();
    this.queue.shutdown();
  }

  private async patch(key: string): Promise<undefined> {
    const [kind, name] = key.split("/") as [Kind, string];
    let current: WebhookConfiguration;
    try {
      current = await this.options.client.get<WebhookConfiguration>(`${BASE}/${kind}/${name}`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return undefined;
      throw err;
    }
    const caBundle = Buffer.from(this.options.caPem()).toString("base64");
    const next = patchedConfiguration(current, kind, caBundle, this.options.validatorProven());
    if (!next) return undefined;
    // The resourceVersion read above makes a concurrent edit fail this write (409) and retry.
    await this.options.client.replace(`${BASE}/${kind}/${name}`, next);
    this.patches++;
    this.options.log("webhook configuration patched", { kind, name });
    return undefined;
  }
}
