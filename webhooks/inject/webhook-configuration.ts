// The MutatingWebhookConfiguration that sends pods to a revision's injector, with
// upstream's selector matrix: which namespaces and pods reach which revision.
//
//   rev.namespace  namespace istio.io/rev=<V> (and no istio-injection label)
//   rev.object     pod istio.io/rev=<V> in a namespace with neither label
//   namespace      namespace istio-injection=enabled           (default revision only)
//   object         pod sidecar.istio.io/inject=true, no labels (default revision only)
//
// Every row skips pods labelled sidecar.istio.io/inject=false.
import type {
  AdmissionregistrationV1WebhookClientConfig,
  V1MutatingWebhook,
  V1MutatingWebhookConfiguration,
} from "@kubernetes/client-node";

export interface InjectionWebhookOptions {
  /** The control plane revision; "" or "default" is the default revision. */
  revision: string;
  /** Where the apiserver sends pods: a URL (local and external control planes) or a Service. */
  clientConfig: AdmissionregistrationV1WebhookClientConfig;
  /** Whether this revision is the default one (gets the istio-injection=enabled rows). */
  isDefault: boolean;
  /** Default revision only: also inject namespaces with no injection label (the `auto` row). */
  enableNamespacesByDefault?: boolean;
  reinvocationPolicy?: "Never" | "IfNeeded";
  /** The control plane's namespace; outside istio-system it is appended to the name, as upstream does. */
  namespace?: string;
  /**
   * A revision tag: the configuration is istio-revision-tag-<tag>, its selectors match the tag's
   * name, and it is labelled istio.io/tag=<tag> (istio.io/rev stays the target revision).
   * The tag "default" also gets the default rows.
   */
  tag?: string;
  /** The previous default's configuration once a default tag exists: kept, but matching nothing. */
  deactivated?: boolean;
}

/**
 * istio-sidecar-injector[-<rev>] or istio-revision-tag-<tag>, with -<namespace> appended outside
 * istio-system, as upstream names them.
 */
export function injectorConfigurationName(options: { revision: string; tag?: string; namespace?: string }): string {
  const revision = options.revision && options.revision !== "default" ? options.revision : "";
  const base = options.tag
    ? `istio-revision-tag-${options.tag}`
    : revision
      ? `istio-sidecar-injector-${revision}`
      : "istio-sidecar-injector";
  return `${base}${options.namespace && options.namespace !== "istio-system" ? `-${options.namespace}` : ""}`;
}

/** What a deactivated configuration selects: nothing (upstream's never-match label). */
const NEVER_MATCH = { matchExpressions: [{ key: "istio.io/deactivated", operator: "In", values: ["never-match"] }] };

/** Namespaces the `auto` row never injects, as upstream's chart lists them. */
const SYSTEM_NAMESPACES = ["kube-system", "kube-public", "kube-node-lease", "local-path-storage"];

const NOT_OPTED_OUT = { key: "sidecar.istio.io/inject", operator: "NotIn", values: ["false"] };

export function injectionWebhookConfiguration(options: InjectionWebhookOptions): V1MutatingWebhookConfiguration {
  const revision = options.revision && options.revision !== "default" ? options.revision : "";
  const value = options.tag ?? (revision || "default");
  const webhook = (name: string, namespaceSelector: object, objectSelector: object): V1MutatingWebhook => ({
    name: `${name}.sidecar-injector.istio.io`,
    clientConfig: options.clientConfig,
    rules: [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"] }],
    failurePolicy: "Fail",
    sideEffects: "None",
    admissionReviewVersions: ["v1"],
    reinvocationPolicy: options.reinvocationPolicy ?? "Never",
    namespaceSelector: options.deactivated ? NEVER_MATCH : namespaceSelector,
    objectSelector: options.deactivated ? NEVER_MATCH : objectSelector,
  });
  const webhooks = [
    webhook(
      "rev.namespace",
      {
        matchExpressions: [
          { key: "istio.io/rev", operator: "In", values: [value] },
          { key: "istio-injection", operator: "DoesNotExist" },
        ],
      },
      { matchExpressions: [NOT_OPTED_OUT] },
    ),
    webhook(
      "rev.object",
      {
        matchExpressions: [
          { key: "istio.io/rev", operator: "DoesNotExist" },
          { key: "istio-injection", operator: "DoesNotExist" },
        ],
      },
      { matchExpressions: [NOT_OPTED_OUT, { key: "istio.io/rev", operator: "In", values: [value] }] },
    ),
  ];
  if (options.isDefault || options.tag === "default") {
    webhooks.push(
      webhook(
        "namespace",
        { matchExpressions: [{ key: "istio-injection", operator: "In", values: ["enabled"] }] },
        { matchExpressions: [NOT_OPTED_OUT] },
      ),
      webhook(
        "object",
        {
          matchExpressions: [
            { key: "istio-injection", operator: "DoesNotExist" },
            { key: "istio.io/rev", operator: "DoesNotExist" },
          ],
        },
        {
          matchExpressions: [
            { key: "sidecar.istio.io/inject", operator: "In", values: ["true"] },
            { key: "istio.io/rev", operator: "DoesNotExist" },
          ],
        },
      ),
    );
    if (options.enableNamespacesByDefault)
      webhooks.push(
        webhook(
          "auto",
          {
            matchExpressions: [
              { key: "istio-injection", operator: "DoesNotExist" },
              { key: "istio.io/rev", operator: "DoesNotExist" },
              { key: "kubernetes.io/metadata.name", operator: "NotIn", values: SYSTEM_NAMESPACES },
            ],
          },
          {
            matchExpressions: [
              { key: "sidecar.istio.io/inject", operator: "DoesNotExist" },
              { key: "istio.io/rev", operator: "DoesNotExist" },
            ],
          },
        ),
      );
  }
  return {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: {
      name: injectorConfigurationName(options),
      labels: {
        "istio.io/rev": revision || "default",
        app: "sidecar-injector",
        ...(options.tag ? { "istio.io/tag": options.tag } : {}),
      },
    },
    webhooks,
  };
}
