// The two ConfigMaps a control plane revision reads, rendered from its IstioRevision spec,
// in the shapes upstream Istio uses so existing tooling reads them unchanged:
//   istio[-<rev>]                   key `mesh`: the mesh config (YAML)
//   istio-sidecar-injector[-<rev>]  keys `config` (policy, selectors, templates) and `values` (JSON)
// Pure: spec in, objects out; applying them is the reconciler's job.
import type { V1ConfigMap } from "@kubernetes/client-node";
import { stringify } from "yaml";
import { versions } from "../../versions.ts";
import {
  deepMerge,
  defaultValues,
  isPlainObject,
  type LabelSelector,
  RENDERED_TEMPLATES,
  type Values,
} from "../../webhooks/inject/config.ts";

/** The part of an IstioRevision's spec the ConfigMaps come from (see crds/operator.ts). */
export interface RevisionSpec {
  /** The revision's name; "default" is the default revision. */
  name: string;
  namespace: string;
  version?: string;
  values?: {
    global?: {
      hub?: string;
      tag?: string;
      proxy?: Record<string, unknown>;
      network?: string;
      multiCluster?: { clusterName?: string };
    };
    meshConfig?: Record<string, unknown>;
    pilot?: {
      replicaCount?: number;
      resources?: object;
      env?: Record<string, string>;
    };
    sidecarInjectorWebhook?: {
      policy?: "enabled" | "disabled";
      neverInjectSelector?: LabelSelector[];
      alwaysInjectSelector?: LabelSelector[];
      enableNamespacesByDefault?: boolean;
      reinvocationPolicy?: "Never" | "IfNeeded";
      nativeSidecars?: boolean;
    };
    externalControlPlaneURL?: string;
  };
}

export const MANAGED_BY = { "app.kubernetes.io/managed-by": "rigger" };

function suffix(revision: string): string {
  return revision && revision !== "default" ? `-${revision}` : "";
}

function labels(spec: RevisionSpec): Record<string, string> {
  return { "istio.io/rev": spec.name || "default", ...MANAGED_BY };
}

/** The values the injector reads: Istio's defaults, the pinned version, then the spec's settings. */
export function revisionValues(spec: RevisionSpec): Values {
  const base = defaultValues();
  const version = spec.version || versions.istio;
  const overlay = {
    revision: spec.name === "default" ? "" : spec.name,
    global: {
      tag: version,
      istioNamespace: spec.namespace,
      ...(spec.values?.global ?? {}),
    },
  };
  return deepMerge(base, overlay) as Values;
}

export function injectorConfigMap(spec: RevisionSpec): V1ConfigMap {
  const webhook = spec.values?.sidecarInjectorWebhook ?? {};
  const config = {
    policy: webhook.policy ?? "enabled",
    alwaysInjectSelector: webhook.alwaysInjectSelector ?? [],
    neverInjectSelector: webhook.neverInjectSelector ?? [],
    injectedAnnotations: {},
    defaultTemplates: ["sidecar"],
    // Rigger renders the templates in code; the names are kept so tools that list templates see them.
    templates: Object.fromEntries(RENDERED_TEMPLATES.map((name) => [name, "# rendered by rigger istiod"])),
  };
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: `istio-sidecar-injector${suffix(spec.name)}`, namespace: spec.namespace, labels: labels(spec) },
    data: { config: stringify(config), values: JSON.stringify(revisionValues(spec), null, 2) },
  };
}

export function meshConfigMap(spec: RevisionSpec): V1ConfigMap {
  const base = {
    defaultConfig: { discoveryAddress: `istiod${suffix(spec.name)}.${spec.namespace}.svc:15012` },
    enablePrometheusMerge: true,
    rootNamespace: spec.namespace,
    trustDomain: "cluster.local",
  };
  const user = isPlainObject(spec.values?.meshConfig) ? spec.values.meshConfig : {};
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: `istio${suffix(spec.name)}`, namespace: spec.namespace, labels: labels(spec) },
    data: { mesh: stringify(deepMerge(base, user)) },
  };
}
