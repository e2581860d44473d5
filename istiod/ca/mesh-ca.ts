// The mesh CA of one control plane: its key/cert bundle (key-cert-bundle.ts), kept current
// (a changed cacerts or istio-ca-secret is reloaded; a self-signed root in its grace period
// is re-signed with the same key), and the signing of workload certificates.
import { X509Certificate } from "node:crypto";
import type pino from "pino";
import type { SharedCache } from "../../kube/cache.ts";
import { ApiError, type RawClient } from "../../kube/raw-client.ts";
import { type KeyAlgorithm, resignCertificateAuthority, signCertificateRequest } from "../../pki/certificates.ts";
import {
  inGracePeriod,
  type KeyCertBundle,
  loadBundle,
  PLUGGED_SECRET,
  SELF_SIGNED_ROOT_DAYS,
  SELF_SIGNED_SECRET,
  writeSelfSignedRoot,
} from "./key-cert-bundle.ts";

export interface MeshCaOptions {
  /** istiod's informer cache: the CA Secrets are watched through it. */
  cache: SharedCache;
  client: RawClient;
  namespace: string;
  algorithm: KeyAlgorithm;
  log: pino.Logger;
  /** How often the self-signed root's remaining life is checked (≤ 0: never). Default 1 h. */
  rootCheckIntervalMs?: number;
  /** Re-sign the root when less than this percentage of its life is left. Default 20. */
  gracePeriodPercentile?: number;
}

export class MeshCa {
  private current: KeyCertBundle | undefined;
  private readonly listeners: (() => void)[] = [];
  private readonly options: MeshCaOptions;
  private unsubscribe: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(options: MeshCaOptions) {
    this.options = options;
  }

  get bundle(): KeyCertBundle {
    if (!this.current) throw new Error("the mesh CA is not loaded yet");
    return this.current;
  }

  get rootPem(): string {
    return this.bundle.rootPem;
  }

  /** Called after the bundle changed (reload or rotation). */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  async start(): Promise<void> {
    this.current = await loadBundle(this.options.client, this.options.namespace, this.options.algorithm);
    this.options.log.info({ source: this.current.source, root: fingerprint(this.current.rootPem) }, "mesh CA loaded");
    // One watch per Secret name, so RBAC can grant exactly these two.
    let listed = false;
    const informers = [PLUGGED_SECRET, SELF_SIGNED_SECRET].map((name) =>
      this.options.cache.informer({
        path: `/api/v1/namespaces/${this.options.namespace}/secrets`,
        fieldSelector: `metadata.name=${name}`,
      }),
    );
    this.unsubscribe = informers.map((informer) =>
      informer.subscribe(() => {
        if (listed) void this.reload();
      }),
    );
    for (const informer of informers) await informer.start();
    listed = true;
    const interval = this.options.rootCheckIntervalMs ?? 60 * 60 * 1000;
    if (interval > 0) this.scheduleRootCheck(interval);
  }

  stop(): void {
    for (const unsubscribe of this.unsubscribe) unsubscribe();
    if (this.timer) clearTimeout(this.timer);
  }

  /** [leaf, intermediates…, roots…] for the CSR, with the given SPIFFE identity. */
  async sign(csrPem: string, spiffeId: string, validSeconds: number): Promise<string[]> {
    const bundle = this.bundle;
    const leaf = await signCertificateRequest(bundle.signer, { csrPem, uris: [spiffeId], validSeconds });
    return [leaf, ...bundle.chain, bundle.rootPem];
  }

  /** Re-reads the Secrets; tells listeners when the bundle changed. Bad content keeps the old bundle. */
  async reload(): Promise<void> {
    try {
      const next = await loadBundle(this.options.client, this.options.namespace, this.options.algorithm);
      const before = this.current;
      if (before && next.rootPem === before.rootPem && next.signer.certPem === before.signer.certPem) {
        this.current = { ...next };
        return;
      }
      this.current = next;
      this.options.log.info({ source: next.source, root: fingerprint(next.rootPem) }, "mesh CA changed");
      for (const listener of this.listeners) listener();
    } catch (err) {
      this.options.log.error({ error: (err as Error).message }, "mesh CA not reloaded; keeping the current one");
    }
  }

  /** Re-signs a self-signed root that entered its grace period. Returns whether it did. */
  async rotateIfDue(now = Date.now()): Promise<boolean> {
    const bundle = this.bundle;
    if (bundle.source !== SELF_SIGNED_SECRET) return false;
    if (!inGracePeriod(bundle.signer.certPem, this.options.gracePeriodPercentile ?? 20, now)) return false;
    const renewed = await resignCertificateAuthority(bundle.signer, SELF_SIGNED_ROOT_DAYS);
    try {
      await writeSelfSignedRoot(this.options.client, this.options.namespace, renewed, bundle.resourceVersion);
      this.options.log.info({ root: fingerprint(renewed.certPem) }, "self-signed root re-signed with its key");
    } catch (err) {
      // Another replica rotated first: take its root.
      if (!(err instanceof ApiError && err.status === 409)) throw err;
    }
    await this.reload();
    return true;
  }

  private scheduleRootCheck(intervalMs: number): void {
    // Jittered so replicas do not all check at once.
    const delay = intervalMs * (0.75 + Math.random() * 0.5);
    this.timer = setTimeout(() => {
      this.rotateIfDue()
        .catch((err: Error) => this.options.log.error({ error: err.message }, "root rotation failed; retrying next check"))
        .finally(() => this.scheduleRootCheck(intervalMs));
    }, delay);
    this.timer.unref();
  }
}

/** A certificate's SHA-256 fingerprint, for logs (never the key). */
export function fingerprint(certPem: string): string {
  return new X509Certificate(certPem).fingerprint256;
}
