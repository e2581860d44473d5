// Istio's `gateway` injection template, rendered in code: what a pod annotated
// `inject.istio.io/templates: gateway` gets. Unlike the sidecar, the proxy is the pod's
// main container in router mode: no istio-init (a gateway intercepts nothing), no native
// sidecar, no probe rewrite flag, resources from the pod's own istio-proxy container. The
// pod may bind ports below 1024 through a sysctl. Field by field it matches the pinned
// release's template after Kubernetes' typed round trip (golden cases gateway-*.yaml).
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import {
  omitZero,
  proxyContainerBase,
  proxyEnv,
  proxyVolumeMounts,
  type TemplateInput,
  volumes,
  workloadMetadata,
} from "./sidecar-template.ts";

export function renderGatewayTemplate(input: TemplateInput): V1Pod {
  const { pod, values } = input;
  const annotations = pod.metadata?.annotations ?? {};
  const annotation = (name: string, fallback: unknown): string => annotations[name] ?? String(fallback);
  const gatewaySecurityContext = values.gateways?.securityContext;
  const spec = {
    securityContext:
      gatewaySecurityContext && Object.keys(gatewaySecurityContext).length > 0
        ? structuredClone(gatewaySecurityContext)
        : { sysctls: [{ name: "net.ipv4.ip_unprivileged_port_start", value: "0" }] },
    containers: [proxyContainer(input, annotation)],
    volumes: volumes(input, "gateway"),
    ...(values.global.imagePullSecrets.length > 0
      ? { imagePullSecrets: values.global.imagePullSecrets.map((name) => ({ name })) }
      : {}),
  } as NonNullable<V1Pod["spec"]>;

  return {
    metadata: workloadMetadata(input),
    spec,
  };
}

function proxyContainer(input: TemplateInput, annotation: (name: string, fallback: unknown) => string): V1Container {
  const { values } = input;
  const proxy = values.global.proxy;
  const container = proxyContainerBase(input, annotation, "router");
  if (proxy.lifecycle && Object.keys(proxy.lifecycle).length > 0) {
    container.lifecycle = structuredClone(proxy.lifecycle) as V1Container["lifecycle"];
  }
  container.securityContext = { runAsUser: 1337, runAsGroup: 1337 };
  container.env = proxyEnv(input, input.proxyConfig.interceptionMode ?? "REDIRECT", "gateway");
  if (values.global.imagePullPolicy) container.imagePullPolicy = values.global.imagePullPolicy;
  container.readinessProbe = omitZero({
    httpGet: { path: "/healthz/ready", port: 15021 },
    initialDelaySeconds: proxy.readinessInitialDelaySeconds,
    periodSeconds: proxy.readinessPeriodSeconds,
    timeoutSeconds: 3,
    failureThreshold: proxy.readinessFailureThreshold,
  });
  container.volumeMounts = proxyVolumeMounts(input, input.pod.metadata?.annotations ?? {}, "gateway");
  return container;
}
