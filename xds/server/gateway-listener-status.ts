// istiod's part of a Gateway API Gateway's status: the ResolvedRefs and Programmed conditions of
// its TLS-terminating listeners (gateway-api-certificates.ts judges their certificateRefs; istiod
// reads Secrets, the operator may not). Written by server-side apply to the status subresource
// under istiod's own field manager, so the operator's apply of the rest of the status (its own
// manager) neither removes nor fights these two conditions. Only for the Gateways this revision
// serves, only when a condition changed (no write per push), a failed write retried by itself.
import type pino from "pino";
import type { Condition } from "../../kube/conditions.ts";
import { setCondition } from "../../kube/conditions.ts";
import type { RawClient } from "../../kube/raw-client.ts";
import type { KubeGateway, ReferenceGrant } from "../generate/gateway-api.ts";
import { CERTIFICATE_CONDITION_TYPES, listenerCertificateConditions } from "../generate/gateway-api-certificates.ts";
import type { CredentialSecret } from "../generate/gateway-secrets.ts";

export const ISTIOD_FIELD_MANAGER = "rigger-istiod";
const API = "/apis/gateway.networking.k8s.io/v1";

export interface LiveKubeGateway extends KubeGateway {
  metadata?: KubeGateway["metadata"] & {
    generation?: number;
    labels?: Record<string, string>;
    managedFields?: { manager?: string; subresource?: string; fieldsV1?: Record<string, unknown> }[];
  };
  status?: { listeners?: { name: string; conditions?: Condition[] }[] };
}

export interface ListenerStatusInput {
  gateways: LiveKubeGateway[];
  referenceGrants: ReferenceGrant[];
  secretOf: (key: string) => CredentialSecret | undefined;
}

interface Options {
  client: RawClient;
  log: pino.Logger;
  /** Whether this istiod serves the Gateway (its istio.io/rev label names this revision or one of its tags). */
  serves: (gateway: LiveKubeGateway) => boolean;
  className?: string;
  retryMs?: number;
}

/** The listeners whose conditions istiod's field manager owns now (from the Gateway's managedFields). */
export function ownedListeners(gateway: LiveKubeGateway): string[] {
  const entry = gateway.metadata?.managedFields?.find((m) => m.manager === ISTIOD_FIELD_MANAGER && m.subresource === "status");
  const listeners = (entry?.fieldsV1?.["f:status"] as Record<string, unknown> | undefined)?.["f:listeners"] ?? {};
  return Object.keys(listeners as object).flatMap((k) => {
    if (!k.startsWith("k:")) return [];
    try {
      const name = (JSON.parse(k.slice(2)) as { name?: string }).name;
      return name ? [name] : [];
    } catch {
      return [];
    }
  });
}
const same = (a: Condition | undefined, b: Condition) =>
  a !== undefined &&
  a.status === b.status &&
  a.reason === b.reason &&
  a.message === b.message &&
  a.observedGeneration === b.observedGeneration;

export class GatewayListenerStatus {
  private readonly options: Options;
  private latest: ListenerStatusInput | undefined;
  private running = false;
  private again = false;
  private retry: NodeJS.Timeout | undefined;
  /** Writes made (for tests and /debug). */
  writes = 0;

  constructor(options: Options) {
    this.options = options;
  }

  /** Brings the status in line with `input` (the latest wins when writes are still going). */
  update(input: ListenerStatusInput): void {
    this.latest = input;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.run().finally(() => {
      this.running = false;
      if (this.again) {
        this.again = false;
        if (this.latest) this.update(this.latest);
      }
    });
  }

  stop(): void {
    if (this.retry) clearTimeout(this.retry);
  }

  private async run(): Promise<void> {
    const input = this.latest;
    if (!input) return;
    let failed = false;
    for (const gateway of input.gateways) {
      if (gateway.spec?.gatewayClassName !== (this.options.className ?? "istio") || !this.options.serves(gateway)) continue;
      const desired = listenerCertificateConditions(gateway, input.referenceGrants, input.secretOf);
      const listeners = this.listeners(gateway, desired);
      if (listeners !== "unchanged" && !(await this.write(gateway, listeners))) failed = true;
    }
    if (failed && !this.retry)
      this.retry = setTimeout(() => {
        this.retry = undefined;
        if (this.latest) this.update(this.latest);
      }, this.options.retryMs ?? 5_000);
  }

  /** The listeners' conditions to apply, or "unchanged" when the status already says it. */
  private listeners(
    gateway: LiveKubeGateway,
    desired: Map<string, Omit<Condition, "lastTransitionTime">[]>,
  ): { name: string; conditions: Condition[] }[] | "unchanged" {
    const now = new Date();
    const generation = gateway.metadata?.generation;
    const current = new Map((gateway.status?.listeners ?? []).map((l) => [l.name, l.conditions ?? []]));
    let changed = false;
    const out: { name: string; conditions: Condition[] }[] = [];
    for (const [listener, conditions] of desired) {
      let kept: Condition[] = (current.get(listener) ?? []).filter((c) => CERTIFICATE_CONDITION_TYPES.includes(c.type));
      for (const c of conditions) {
        const next = { ...c, observedGeneration: generation };
        if (
          !same(
            kept.find((k) => k.type === c.type),
            next,
          )
        )
          changed = true;
        kept = setCondition(kept, next, now);
      }
      out.push({ name: listener, conditions: kept });
    }
    // A listener written before that no longer needs these conditions (its TLS changed or it went away).
    if (ownedListeners(gateway).some((l) => !desired.has(l))) changed = true;
    return changed ? out : "unchanged";
  }

  private async write(gateway: LiveKubeGateway, listeners: { name: string; conditions: Condition[] }[]): Promise<boolean> {
    const namespace = gateway.metadata?.namespace ?? "default";
    const name = gateway.metadata?.name ?? "";
    const body = {
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "Gateway",
      metadata: { name, namespace },
      status: { listeners },
    };
    try {
      await this.options.client.apply(`${API}/namespaces/${namespace}/gateways/${name}/status`, body, ISTIOD_FIELD_MANAGER);
      this.writes++;
      return true;
    } catch (err) {
      const status = (err as { status?: number }).status;
      if (status === 404) return true;
      // 422 until the operator has written the listener's required fields: retried.
      this.options.log.warn(
        { gateway: `${namespace}/${name}`, error: (err as Error).message },
        "Gateway listener status not written",
      );
      return false;
    }
  }
}
