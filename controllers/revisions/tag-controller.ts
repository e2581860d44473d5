// The IstioRevisionTag controller: a stable name (prod-stable, prod-canary, default) for a
// revision. targetRef to an Istio follows its active revision; to an IstioRevision pins it.
// Renders tags.ts owned by the tag (deleting the tag removes them); the webhooks call the
// target revision's control plane exactly as the revision's own do (its MWC's clientConfig),
// and carry istio.io/rev=<target> so that control plane keeps their caBundle and failurePolicy.

import type { AdmissionregistrationV1WebhookClientConfig } from "@kubernetes/client-node";
import {
  ISTIOS_PATH,
  type Istio,
  type IstioRevision,
  type IstioRevisionTag,
  REVISIONS_PATH,
  TAG_LABEL,
  TAGS_PATH,
} from "../../api/operator.ts";
import { applyIfChanged, getOrUndefined, type KubeObject, objectPath, withRenderedHash, writeStatus } from "../../kube/apply.ts";
import { type Condition, setCondition } from "../../kube/conditions.ts";
import type { Controller } from "../../kube/controller.ts";
import type { RawClient } from "../../kube/raw-client.ts";
import { injectorConfigurationName } from "../../webhooks/inject/webhook-configuration.ts";
import { validatorConfigurationName } from "../../webhooks/validate/webhook-configuration.ts";
import { keepFailurePolicy, ownedBy } from "../install/ownership.ts";
import { usageCondition } from "../install/revision-status.ts";
import { renderTag } from "./tags.ts";
import { namespacesUsing, type PodUsage } from "./usage.ts";

const ADMISSION = "/apis/admissionregistration.k8s.io/v1";

interface WebhookConfiguration extends KubeObject {
  webhooks?: { clientConfig?: AdmissionregistrationV1WebhookClientConfig }[];
}

/** The revision a tag points at now, or why there is none. */
async function resolveTarget(client: RawClient, tag: IstioRevisionTag): Promise<IstioRevision | string> {
  const ref = tag.spec.targetRef;
  let revisionName = ref.name;
  if (ref.kind === "Istio") {
    const istio = await getOrUndefined<Istio>(client, `${ISTIOS_PATH}/${ref.name}`);
    if (!istio) return `Istio ${ref.name} does not exist`;
    if (!istio.status?.activeRevisionName) return `Istio ${ref.name} has no active revision yet`;
    revisionName = istio.status.activeRevisionName;
  }
  const revision = await getOrUndefined<IstioRevision>(client, `${REVISIONS_PATH}/${revisionName}`);
  return revision ?? `IstioRevision ${revisionName} does not exist`;
}

/** How a revision's own webhooks reach it (URL or Service), without the caBundle. */
function clientConfigOf(config: WebhookConfiguration | undefined) {
  const cc = config?.webhooks?.[0]?.clientConfig;
  if (!cc) return undefined;
  const { caBundle: _ignored, ...rest } = cc;
  return rest;
}

/**
 * A new tag configuration gets its target's caBundle at once, so the apiserver can call it
 * before the target's control plane has patched it. Applied under a field manager of its own
 * that the operator never applies again: the control plane's later patches take the field over.
 */
async function seedCaBundle(client: RawClient, config: WebhookConfiguration, caBundle: string): Promise<void> {
  if (config.kind !== "MutatingWebhookConfiguration" && config.kind !== "ValidatingWebhookConfiguration") return;
  const webhooks = (config.webhooks ?? []) as { name?: string }[];
  await client.apply(
    objectPath(config),
    {
      apiVersion: config.apiVersion,
      kind: config.kind,
      metadata: { name: config.metadata.name },
      webhooks: webhooks.map((w) => ({ name: w.name, clientConfig: { caBundle } })),
    },
    "rigger-operator-ca-seed",
  );
}

export function tagController({ client, pods }: { client: RawClient; pods?: PodUsage }): Controller {
  const known = new Set<string>();

  const reconcile = async (name: string) => {
    const tag = await getOrUndefined<IstioRevisionTag>(client, `${TAGS_PATH}/${name}`);
    if (!tag || tag.metadata.deletionTimestamp) {
      known.delete(name);
      return undefined;
    }
    known.add(name);
    const now = new Date();
    let conditions = tag.status?.conditions;
    const set = (type: string, status: Condition["status"], reason: string, message: string) => {
      conditions = setCondition(conditions, { type, status, reason, message }, now);
    };
    const target = await resolveTarget(client, tag);
    let outcome: { requeueAfterMs: number } | undefined;
    let revision: IstioRevision | undefined;
    if (typeof target === "string") {
      set("Reconciled", "False", "TargetNotFound", target);
      set("Ready", "False", "TargetNotFound", target);
    } else {
      revision = target;
      // A tag named like an existing revision: the older object keeps the name.
      const twin = await getOrUndefined<IstioRevision>(client, `${REVISIONS_PATH}/${name}`);
      const twinOlder =
        twin && Date.parse(twin.metadata.creationTimestamp ?? "") <= Date.parse(tag.metadata.creationTimestamp ?? "");
      if (twinOlder) {
        set("Reconciled", "False", "NameAlreadyExists", `an IstioRevision named ${name} exists and is older; rename the tag`);
        set("Ready", "False", "NameAlreadyExists", `an IstioRevision named ${name} exists and is older`);
      } else {
        const ns = revision.spec.namespace;
        const rev = revision.metadata.name;
        const mwc = await getOrUndefined<WebhookConfiguration>(
          client,
          `${ADMISSION}/mutatingwebhookconfigurations/${injectorConfigurationName({ revision: rev, namespace: ns })}`,
        );
        const vwc = await getOrUndefined<WebhookConfiguration>(
          client,
          `${ADMISSION}/validatingwebhookconfigurations/${validatorConfigurationName(rev, ns)}`,
        );
        const inject = clientConfigOf(mwc);
        const validate = clientConfigOf(vwc);
        const defaultValidator =
          name === "default"
            ? await getOrUndefined<KubeObject>(client, `${ADMISSION}/validatingwebhookconfigurations/istiod-default-validator`)
            : undefined;
        const heldByRevision = defaultValidator?.metadata.ownerReferences?.some((r) => r.kind === "IstioRevision");
        if (!inject || !validate) {
          set(
            "Reconciled",
            "False",
            "TargetNotReconciled",
            `IstioRevision ${revision.metadata.name} has no webhook configurations yet`,
          );
          outcome = { requeueAfterMs: 1000 };
        } else if (heldByRevision) {
          // The default revision hands istiod-default-validator over once it sees this tag.
          set(
            "Reconciled",
            "False",
            "WaitingForDefaultValidator",
            "istiod-default-validator still belongs to the default revision",
          );
          outcome = { requeueAfterMs: 1000 };
        } else {
          const values = revision.spec.values as
            | { sidecarInjectorWebhook?: { enableNamespacesByDefault?: boolean; reinvocationPolicy?: "Never" | "IfNeeded" } }
            | undefined;
          const objects = renderTag({
            tag: name,
            revision: revision.metadata.name,
            namespace: ns,
            inject,
            validate,
            enableNamespacesByDefault: values?.sidecarInjectorWebhook?.enableNamespacesByDefault,
            reinvocationPolicy: values?.sidecarInjectorWebhook?.reinvocationPolicy,
          });
          for (const obj of objects) {
            const desired = withRenderedHash(ownedBy(obj as KubeObject, tag, TAG_LABEL));
            const live = await getOrUndefined<KubeObject>(client, objectPath(desired));
            await applyIfChanged(client, keepFailurePolicy(desired, live), live);
            const caBundle = (desired.kind === "MutatingWebhookConfiguration" ? mwc : vwc)?.webhooks?.[0]?.clientConfig?.caBundle;
            if (!live && caBundle) await seedCaBundle(client, desired as WebhookConfiguration, caBundle);
          }
          set("Reconciled", "True", "Reconciled", `tag ${name} points at IstioRevision ${revision.metadata.name}`);
        }
        const ready = revision.status?.conditions?.find((c) => c.type === "Ready");
        set(
          "Ready",
          ready?.status ?? "Unknown",
          ready?.reason ?? "RevisionNotReady",
          ready?.message ?? "the revision has no status yet",
        );
      }
    }
    const namespaces = await client.get<{ items: KubeObject[] }>("/api/v1/namespaces");
    const using = namespacesUsing(
      name,
      namespaces.items.map((n) => ({ name: n.metadata.name, labels: n.metadata.labels ?? {} })),
    );
    const inUse = usageCondition({ namespaces: using, pods: pods?.pods(name) }, "no namespace or running pod uses this tag");
    set("InUse", inUse.status, inUse.reason, inUse.message);
    const reconciled = conditions?.find((c) => c.type === "Reconciled");
    const readyCondition = conditions?.find((c) => c.type === "Ready");
    const status = {
      conditions,
      istioRevision: revision?.metadata.name,
      istiodNamespace: revision?.spec.namespace,
      state:
        reconciled?.status !== "True"
          ? reconciled?.reason
          : readyCondition?.status === "True"
            ? "Healthy"
            : readyCondition?.reason,
    };
    await writeStatus(client, tag, tag.status, status);
    return outcome;
  };

  const all = () => [...known];
  return {
    name: "istiorevisiontag",
    reconcile,
    watches: [
      { path: TAGS_PATH, map: (key) => [key] },
      { path: REVISIONS_PATH, map: all },
      { path: ISTIOS_PATH, map: all },
      { path: "/api/v1/namespaces", map: all },
      ...[`${ADMISSION}/mutatingwebhookconfigurations`, `${ADMISSION}/validatingwebhookconfigurations`, "/api/v1/services"].map(
        (path) => ({
          path,
          labelSelector: TAG_LABEL,
          map: (_key: string, object?: { metadata?: { labels?: Record<string, string> } }) => {
            const tag = object?.metadata?.labels?.[TAG_LABEL];
            return tag ? [tag] : [];
          },
        }),
      ),
    ],
  };
}
