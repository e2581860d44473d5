// A control plane revision's ServiceAccount, Service, PodDisruptionBudget,
// HorizontalPodAutoscaler and webhook configurations. Names, ports and selectors follow
// upstream's istiod chart. Pure: spec in, objects out.
import type {
  AdmissionregistrationV1WebhookClientConfig,
  V1MutatingWebhookConfiguration,
  V1PodDisruptionBudget,
  V1Service,
  V1ServiceAccount,
  V1ValidatingWebhookConfiguration,
  V2HorizontalPodAutoscaler,
} from "@kubernetes/client-node";
import { injectionWebhookConfiguration } from "../../webhooks/inject/webhook-configuration.ts";
import { validationWebhookConfigurations } from "../../webhooks/validate/webhook-configuration.ts";
import { MANAGED_BY, type RevisionSpec } from "./configmaps.ts";

export interface RevisionRenderOptions {
  /** Whether this revision serves the default tag (istio-injection=enabled, unlabelled config). */
  isDefault: boolean;
  /** A control plane outside the cluster: webhooks call this base URL instead of the Service. */
  externalUrl?: string;
  /** The default revision once a `default` tag took over its rows: its injector matches nothing. */
  deactivated?: boolean;
  /** Webhook configurations of tags pointing at this revision: its control plane may patch them too. */
  tagWebhooks?: { mutating: string[]; validating: string[] };
}

export function istiodName(revision: string): string {
  return revision && revision !== "default" ? `istiod-${revision}` : "istiod";
}

function podLabels(spec: RevisionSpec): Record<string, string> {
  return { app: "istiod", "istio.io/rev": spec.name || "default" };
}

function meta(spec: RevisionSpec, name = istiodName(spec.name)) {
  return { name, namespace: spec.namespace, labels: { ...podLabels(spec), istio: "pilot", ...MANAGED_BY } };
}

export function serviceAccount(spec: RevisionSpec): V1ServiceAccount {
  return { apiVersion: "v1", kind: "ServiceAccount", metadata: meta(spec) };
}

export function service(spec: RevisionSpec): V1Service {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: meta(spec),
    spec: {
      selector: podLabels(spec),
      ports: [
        { name: "grpc-xds", port: 15010, protocol: "TCP" },
        { name: "https-dns", port: 15012, protocol: "TCP" },
        { name: "https-webhook", port: 443, targetPort: 15017, protocol: "TCP" },
        { name: "http-monitoring", port: 15014, protocol: "TCP" },
      ],
    },
  };
}

export function podDisruptionBudget(spec: RevisionSpec): V1PodDisruptionBudget {
  return {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: meta(spec),
    spec: { minAvailable: 1, selector: { matchLabels: podLabels(spec) } },
  };
}

export function horizontalPodAutoscaler(spec: RevisionSpec): V2HorizontalPodAutoscaler {
  const min = spec.values?.pilot?.replicaCount ?? 1;
  const replicas = { min, max: Math.max(5, min) };
  return {
    apiVersion: "autoscaling/v2",
    kind: "HorizontalPodAutoscaler",
    metadata: meta(spec),
    spec: {
      scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: istiodName(spec.name) },
      minReplicas: replicas.min,
      maxReplicas: replicas.max,
      metrics: [{ type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 80 } } }],
    },
  };
}

/** The revision's webhook configurations, calling its Service (or the external URL). No caBundle: the control plane patches it in. */
export function webhookConfigurations(
  spec: RevisionSpec,
  options: RevisionRenderOptions,
): [V1MutatingWebhookConfiguration, ...V1ValidatingWebhookConfiguration[]] {
  const client = (path: string): AdmissionregistrationV1WebhookClientConfig =>
    options.externalUrl
      ? { url: `${options.externalUrl.replace(/\/+$/, "")}${path}` }
      : { service: { name: istiodName(spec.name), namespace: spec.namespace, path, port: 443 } };
  const revision = spec.name === "default" ? "" : spec.name;
  const injector = spec.values?.sidecarInjectorWebhook;
  const mutating = injectionWebhookConfiguration({
    revision,
    isDefault: options.isDefault,
    deactivated: options.deactivated,
    clientConfig: client("/inject"),
    namespace: spec.namespace,
    enableNamespacesByDefault: injector?.enableNamespacesByDefault,
    reinvocationPolicy: injector?.reinvocationPolicy,
  });
  const validating = validationWebhookConfigurations({
    revision,
    namespace: spec.namespace,
    isDefault: options.isDefault,
    clientConfig: client("/validate"),
  });
  return [mutating, ...validating];
}
