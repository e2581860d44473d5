// The IstioRevision controller: for each revision, apply every object it needs (render.ts),
// owned by the revision so that deleting it removes them (garbage collection), then write
// its status. Level-based: it reads everything, writes only what differs, and a converged
// revision costs reads only. Fields the control plane owns are left to it: caBundle (never
// rendered) and the validators' failurePolicy (kept as the live object has it).

import { type IstioRevision, ownerReference, REVISION_LABEL, REVISIONS_PATH, TAGS_PATH } from "../../api/operator.ts";
import {
  applyAll,
  FIELD_MANAGER,
  getOrUndefined,
  type KubeObject,
  objectPath,
  withRenderedHash,
  writeStatus,
} from "../../kube/apply.ts";
import { type Condition, condition } from "../../kube/conditions.ts";
import type { Controller } from "../../kube/controller.ts";
import type { EventRecorder } from "../../kube/events.ts";
import type { RawClient } from "../../kube/raw-client.ts";
import { errorReason, TerminalError } from "../../kube/reconcile.ts";
import { injectorConfigurationName } from "../../webhooks/inject/webhook-configuration.ts";
import type { PodUsage } from "../revisions/usage.ts";
import { namespacesUsing } from "../revisions/usage.ts";
import { MANAGED_BY, type RevisionSpec } from "./configmaps.ts";
import type { LocalControlPlanes } from "./local-control-planes.ts";
import { keepFailurePolicy, ownedBy } from "./ownership.ts";
import { renderRevision } from "./render.ts";
import { istiodName } from "./revision.ts";
import { revisionStatus } from "./revision-status.ts";

/** Where the revision's objects are watched (all carry the revision label). */
const OWNED = [
  "/api/v1/configmaps",
  "/api/v1/serviceaccounts",
  "/api/v1/services",
  "/apis/apps/v1/deployments",
  "/apis/policy/v1/poddisruptionbudgets",
  "/apis/autoscaling/v2/horizontalpodautoscalers",
  "/apis/rbac.authorization.k8s.io/v1/roles",
  "/apis/rbac.authorization.k8s.io/v1/rolebindings",
  "/apis/rbac.authorization.k8s.io/v1/clusterroles",
  "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
  "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
  "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
];

export interface RevisionControllerOptions {
  client: RawClient;
  events: EventRecorder;
  /** The image Deployments run (`rigger istiod`). */
  image: string;
  /** Set in --local mode: revisions' istiod run as child processes. */
  local?: LocalControlPlanes;
  /** Which pods refer to which revision (metadata-only pod watch). */
  pods?: PodUsage;
}

export function revisionController(options: RevisionControllerOptions): Controller {
  const { client, events, local } = options;
  const known = new Set<string>();
  /** Every IstioRevisionTag, with the revision its status says it resolves to (kept from the tag watch). */
  const tags = new Map<string, string | undefined>();
  const tagsPointingAt = (revision: string) =>
    [...tags]
      .filter(([, target]) => target === revision)
      .map(([tag]) => tag)
      .sort();

  const ensureNamespace = async (revision: IstioRevision) => {
    const name = revision.spec.namespace;
    const ref = { ...ownerReference(revision), controller: false };
    const live = await getOrUndefined<KubeObject>(client, `/api/v1/namespaces/${name}`);
    if (!live) {
      // Created here, so owned by the revisions that use it: the last one deleted takes it along.
      await client.create("/api/v1/namespaces", {
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name, labels: { ...MANAGED_BY }, ownerReferences: [ref] },
      });
      return;
    }
    const ours = live.metadata.labels?.["app.kubernetes.io/managed-by"] === "rigger";
    if (ours && !live.metadata.ownerReferences?.some((r) => r.uid === ref.uid)) {
      // One field manager per revision, so each revision's owner reference is its own entry.
      await client.apply(
        `/api/v1/namespaces/${name}`,
        { apiVersion: "v1", kind: "Namespace", metadata: { name, ownerReferences: [ref] } },
        `${FIELD_MANAGER}-${revision.metadata.name}`,
      );
    }
  };

  const applyRevision = async (revision: IstioRevision): Promise<{ logFile?: string; serving?: boolean }> => {
    const name = revision.metadata.name;
    const values = revision.spec.values as RevisionSpec["values"];
    const spec: RevisionSpec = { name, namespace: revision.spec.namespace, version: revision.spec.version, values };
    await ensureNamespace(revision);
    let externalUrl = values?.externalControlPlaneURL;
    let localState: { url: string; serving: boolean; logFile: string } | undefined;
    if (local) {
      localState = await local.ensure({
        name,
        namespace: spec.namespace,
        nativeSidecars: values?.sidecarInjectorWebhook?.nativeSidecars ?? false,
      });
      externalUrl = localState.url;
    }
    // A `default` tag takes over the default rows and istiod-default-validator; the default
    // revision's own injector is then kept but matches nothing, as `istioctl tag set default` does.
    // Tags come from the tag watch: every tag event requeues every revision.
    const defaultTag = tags.has("default");
    const mine = tagsPointingAt(name);
    const rendered = renderRevision(spec, {
      tagWebhooks: {
        mutating: mine.map((tag) => injectorConfigurationName({ revision: name, tag, namespace: spec.namespace })),
        validating: mine.includes("default") ? ["istiod-default-validator"] : [],
      },
      isDefault: name === "default" && !defaultTag,
      deactivated: name === "default" && defaultTag,
      externalUrl,
      image: options.image,
    });
    const desired: KubeObject[] = [];
    for (const obj of rendered) {
      const object = withRenderedHash(ownedBy(obj as KubeObject, revision, REVISION_LABEL));
      desired.push(keepFailurePolicy(object, await getOrUndefined<KubeObject>(client, objectPath(object))));
    }
    // All or nothing: values the apiserver refuses (a bad quantity, a bad port) leave every object as it was.
    const refused = await applyAll(client, desired);
    if (refused) throw new TerminalError("Invalid", refused);
    await pruneWebhookConfigurations(rendered, name);
    return localState ?? {};
  };

  /** Deletes this revision's webhook configurations it no longer renders (the default validator once a tag owns it). */
  const pruneWebhookConfigurations = async (rendered: { kind: string; metadata: { name: string } }[], name: string) => {
    for (const kind of ["ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"]) {
      const collection = `/apis/admissionregistration.k8s.io/v1/${kind.toLowerCase()}s`;
      const wanted = new Set(rendered.filter((o) => o.kind === kind).map((o) => o.metadata.name));
      const live = await client.get<{ items: KubeObject[] }>(
        `${collection}?labelSelector=${encodeURIComponent(`${REVISION_LABEL}=${name}`)}`,
      );
      for (const item of live.items)
        if (!wanted.has(item.metadata.name)) await client.delete(`${collection}/${item.metadata.name}`).catch(() => undefined);
    }
  };

  const reconcile = async (name: string) => {
    const revision = await getOrUndefined<IstioRevision>(client, `${REVISIONS_PATH}/${name}`);
    if (!revision || revision.metadata.deletionTimestamp) {
      known.delete(name);
      await local?.stop(name);
      return undefined;
    }
    known.add(name);
    let error: string | undefined;
    let failure: unknown;
    let localState: { logFile?: string; serving?: boolean } = {};
    try {
      localState = await applyRevision(revision);
    } catch (err) {
      failure = err;
      error = (err as Error).message;
    }
    const deployment = await getOrUndefined<{ status?: { replicas?: number; readyReplicas?: number } }>(
      client,
      `/apis/apps/v1/namespaces/${revision.spec.namespace}/deployments/${istiodName(name)}`,
    ).catch(() => undefined);
    const namespaces = await client.get<{ items: KubeObject[] }>("/api/v1/namespaces");
    const status = revisionStatus(
      {
        generation: revision.metadata.generation,
        previous: revision.status?.conditions,
        error,
        errorReason: failure === undefined ? undefined : errorReason(failure),
        deployment: deployment && { name: istiodName(name), ...deployment.status },
        local: local ? { serving: localState.serving ?? false, logFile: localState.logFile ?? "" } : undefined,
        tagsUsing: tagsPointingAt(name),
        podsUsing: options.pods?.pods(name),
        namespacesUsing: namespacesUsing(
          name,
          namespaces.items.map((n) => ({ name: n.metadata.name, labels: n.metadata.labels ?? {} })),
        ),
      },
      new Date(),
    );
    const outcome = await writeStatus(client, revision, revision.status, status);
    if (outcome === "gone") return undefined; // deleted meanwhile: the next event says so
    if (outcome === "written") await recordTransitions(events, revision, revision.status?.conditions, status.conditions);
    // Input the apiserver refused waits for its owner to change it; anything else is retried.
    if (failure !== undefined && !(failure instanceof TerminalError)) throw failure;
    return undefined;
  };

  const byLabel = (_key: string, object?: { metadata?: { labels?: Record<string, string> } }) => {
    const revision = object?.metadata?.labels?.[REVISION_LABEL];
    return revision ? [revision] : [];
  };

  return {
    name: "istiorevision",
    reconcile,
    watches: [
      { path: REVISIONS_PATH, map: (key) => [key] },
      ...OWNED.map((path) => ({ path, labelSelector: REVISION_LABEL, map: byLabel })),
      // Namespace labels decide InUse.
      { path: "/api/v1/namespaces", map: () => [...known] },
      // A `default` tag changes what the default revision renders; tags pointing at a revision keep it in use.
      {
        path: TAGS_PATH,
        map: (key, object, deleted) => {
          const target = (object as { status?: { istioRevision?: string } } | undefined)?.status?.istioRevision;
          if (deleted) tags.delete(key);
          else tags.set(key, target);
          return [...known];
        },
      },
    ],
  };
}

async function recordTransitions(
  events: EventRecorder,
  revision: IstioRevision,
  before: Condition[] | undefined,
  after: Condition[],
): Promise<void> {
  const was = (type: string) => condition(before, type);
  const now = (type: string) => condition(after, type);
  const ready = now("Ready");
  const wasReady = was("Ready");
  // A transition, not the first word: a new revision is not ready for its first seconds.
  if (ready && wasReady && ready.status !== wasReady.status && (ready.status === "True" || wasReady.status === "True"))
    await events.record(
      revision,
      ready.status === "True" ? "Normal" : "Warning",
      ready.status === "True" ? "Ready" : ready.reason,
      ready.message,
    );
  const reconciled = now("Reconciled");
  if (reconciled?.status === "False" && reconciled.message !== was("Reconciled")?.message)
    await events.record(revision, "Warning", reconciled.reason, reconciled.message);
}
