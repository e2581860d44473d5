// What an IstioRevisionTag renders, as `istioctl tag set` does upstream:
//   MutatingWebhookConfiguration istio-revision-tag-<tag>[-<ns>]  selectors match the tag's
//     name (istio.io/rev=<tag>); the tag "default" also serves istio-injection=enabled and
//     sidecar.istio.io/inject=true; it calls the target revision's control plane
//   Service istiod-revision-tag-<tag>                              the target's pods, istiod's ports
//   ValidatingWebhookConfiguration istiod-default-validator        the tag "default" only
// Pure: the tag, its resolved revision and how that revision is reached, in; objects out.
import type {
  AdmissionregistrationV1WebhookClientConfig,
  V1MutatingWebhookConfiguration,
  V1Service,
  V1ValidatingWebhookConfiguration,
} from "@kubernetes/client-node";
import { injectionWebhookConfiguration } from "../../webhooks/inject/webhook-configuration.ts";
import { validationWebhookConfigurations } from "../../webhooks/validate/webhook-configuration.ts";
import { MANAGED_BY } from "../install/configmaps.ts";
import { service as revisionService } from "../install/revision.ts";

export interface TagRenderInput {
  tag: string;
  /** The revision the tag resolves to. */
  revision: string;
  namespace: string;
  /** How the target revision's webhooks reach its control plane (its MWC's clientConfig, without caBundle). */
  inject: AdmissionregistrationV1WebhookClientConfig;
  validate: AdmissionregistrationV1WebhookClientConfig;
  enableNamespacesByDefault?: boolean;
  reinvocationPolicy?: "Never" | "IfNeeded";
}

export function tagServiceName(tag: string): string {
  return `istiod-revision-tag-${tag}`;
}

export function renderTag(
  input: TagRenderInput,
): [V1MutatingWebhookConfiguration, V1Service, ...V1ValidatingWebhookConfiguration[]] {
  const mutating = injectionWebhookConfiguration({
    revision: input.revision,
    tag: input.tag,
    isDefault: false,
    clientConfig: input.inject,
    namespace: input.namespace,
    enableNamespacesByDefault: input.enableNamespacesByDefault,
    reinvocationPolicy: input.reinvocationPolicy,
  });
  const base = revisionService({ name: input.revision, namespace: input.namespace });
  const service: V1Service = {
    ...base,
    metadata: {
      name: tagServiceName(input.tag),
      namespace: input.namespace,
      labels: { app: "istiod", "istio.io/rev": input.revision, "istio.io/tag": input.tag, ...MANAGED_BY },
    },
  };
  const validating =
    input.tag === "default"
      ? validationWebhookConfigurations({
          revision: input.revision,
          namespace: input.namespace,
          isDefault: true,
          clientConfig: input.validate,
        }).filter((v) => v.metadata?.name === "istiod-default-validator")
      : [];
  return [mutating, service, ...validating];
}
