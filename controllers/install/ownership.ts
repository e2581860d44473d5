// How the operator marks what it creates, and which fields it leaves to the control plane.

import { ownerReference } from "../../api/operator.ts";
import type { KubeObject } from "../../kube/apply.ts";

interface WebhookConfiguration extends KubeObject {
  webhooks?: { name: string; failurePolicy?: string }[];
}

/** `obj` owned by `owner` (garbage-collected with it) and labelled `label=<owner name>` (watched by it). */
export function ownedBy(obj: KubeObject, owner: KubeObject, label: string): KubeObject {
  return {
    ...obj,
    metadata: {
      ...obj.metadata,
      labels: { ...obj.metadata.labels, [label]: owner.metadata.name },
      ownerReferences: [ownerReference(owner)],
    },
  };
}

/** The validators' failurePolicy belongs to the control plane once it exists: keep the live value. */
export function keepFailurePolicy(desired: KubeObject, live: KubeObject | undefined): KubeObject {
  if (desired.kind !== "ValidatingWebhookConfiguration" || !live) return desired;
  const livePolicies = new Map(((live as WebhookConfiguration).webhooks ?? []).map((w) => [w.name, w.failurePolicy]));
  const webhooks = ((desired as WebhookConfiguration).webhooks ?? []).map((w) => ({
    ...w,
    failurePolicy: livePolicies.get(w.name) ?? w.failurePolicy,
  }));
  return { ...desired, webhooks };
}
