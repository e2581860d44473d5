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
}

const NOT_OPTED_OUT = { key: "sidecar.istio.io/inject", operator: "NotIn", values: ["false"] };

export function injectionWebhookConfiguration(options: InjectionWebhookOptions): V1MutatingWebhookConfiguration {
  const revision = options.revision && options.revision !== "default" ? options.revision : "";
  const value = revision || "default";
  const webhook = (name: string, namespaceSelector: object, objectSelector: object): V1MutatingWebhook => ({
    name: `${name}.sidecar-injector.istio.io`,
    clientConfig: options.clientConfig,
    rules: [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"] }],
    failurePolicy: "Fail",
    sideEffects: "None",
    admissionReviewVersions: ["v1"],
    reinvocationPolicy: "Never",
    namespaceSelector,
    objectSelector,
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
  if (options.isDefault) {
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
  }
  return {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: {
      name: revision ? `istio-sidecar-injector-${revision}` : "istio-sidecar-injector",
      labels: { "istio.io/rev": value, app: "sidecar-injector" },
    },
    webhooks,
  };
}
