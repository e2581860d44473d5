// The ValidatingWebhookConfigurations that send Istio config to a revision's validator,
// as upstream names and scopes them:
//   istio-validator[-<rev>]-<namespace>   config labelled istio.io/rev=<rev or "default">
//   istiod-default-validator              unlabelled config, for the default revision only
// Both start with failurePolicy Ignore: the control plane switches them to Fail once it
// has seen its own server reject a known-bad object, so a fresh install never blocks
// config on a validator that is not up yet.
import type {
  AdmissionregistrationV1WebhookClientConfig,
  V1ValidatingWebhook,
  V1ValidatingWebhookConfiguration,
} from "@kubernetes/client-node";

export interface ValidationWebhookOptions {
  revision: string;
  /** The control plane's namespace (istio-system). */
  namespace: string;
  clientConfig: AdmissionregistrationV1WebhookClientConfig;
  isDefault: boolean;
}

const RULES = [
  {
    operations: ["CREATE", "UPDATE"],
    apiGroups: ["security.istio.io", "networking.istio.io", "telemetry.istio.io", "extensions.istio.io"],
    apiVersions: ["*"],
    resources: ["*"],
  },
];

/** istio-validator[-<rev>]-<namespace>: the revision's own validator. */
export function validatorConfigurationName(revision: string, namespace: string): string {
  const rev = revision && revision !== "default" ? revision : "";
  return `istio-validator${rev ? `-${rev}` : ""}-${namespace}`;
}

export function validationWebhookConfigurations(options: ValidationWebhookOptions): V1ValidatingWebhookConfiguration[] {
  const revision = options.revision && options.revision !== "default" ? options.revision : "";
  const value = revision || "default";
  const webhook = (name: string, objectSelector?: object): V1ValidatingWebhook => ({
    name,
    clientConfig: options.clientConfig,
    rules: RULES,
    failurePolicy: "Ignore",
    sideEffects: "None",
    admissionReviewVersions: ["v1"],
    ...(objectSelector ? { objectSelector } : {}),
  });
  const labels = { "istio.io/rev": value, app: "istiod" };
  const configs: V1ValidatingWebhookConfiguration[] = [
    {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingWebhookConfiguration",
      metadata: { name: validatorConfigurationName(revision, options.namespace), labels },
      webhooks: [
        webhook("rev.validation.istio.io", { matchExpressions: [{ key: "istio.io/rev", operator: "In", values: [value] }] }),
      ],
    },
  ];
  if (options.isDefault) {
    configs.push({
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingWebhookConfiguration",
      metadata: { name: "istiod-default-validator", labels: { ...labels, "istio.io/tag": "default" } },
      webhooks: [webhook("validation.istio.io", { matchExpressions: [{ key: "istio.io/rev", operator: "DoesNotExist" }] })],
    });
  }
  return configs;
}
