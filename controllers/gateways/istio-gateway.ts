// An IstioGateway (operator.rigger.dev/v1alpha1, namespaced) and what it becomes, in the
// shapes of Istio's gateway Helm chart: ServiceAccount, a RoleBinding that lets it read TLS
// secrets (SDS) in its own namespace, Deployment, Service, HorizontalPodAutoscaler,
// PodDisruptionBudget, all named like the resource and owned by it. (The chart creates a Role
// with that one rule; the RoleBinding points at a ClusterRole with the same rule from the
// install manifest instead, so the operator needs no right to read Secrets to grant it.) The pods ask to be injected with the `gateway`
// template (sidecar.istio.io/inject=true, inject.istio.io/templates=gateway, an istio-proxy
// container with image auto), carry istio.io/rev when a revision or tag is named, and the
// revision it resolves to in an annotation: moving a tag changes the pod template, so the
// Deployment rolls — one pod at a time, never below the wanted count (maxUnavailable 0).
// Pure: resource and resolved revision in, objects and status out.

import { type IstioGateway, REVISION_ANNOTATION, type ServicePort } from "../../api/operator.ts";
import type { KubeObject } from "../../kube/apply.ts";
import { MANAGED_BY } from "../install/configmaps.ts";

/** ClusterRole (manifests/install.yaml) with the gateway's one rule: get/watch/list secrets. */
export const GATEWAY_SECRETS_ROLE = "rigger-gateway-secrets";

export const DEFAULT_PORTS: ServicePort[] = [
  { name: "status-port", port: 15021 },
  { name: "http2", port: 80 },
  { name: "https", port: 443 },
];

/** The `istio` label Istio Gateway selectors match: istio-ingressgateway → ingressgateway. */
export function istioLabel(gateway: IstioGateway): string {
  return gateway.spec.labels?.istio ?? gateway.metadata.name.replace(/^istio-/, "");
}

export function selectorLabels(gateway: IstioGateway): Record<string, string> {
  return { app: gateway.metadata.name, istio: istioLabel(gateway) };
}

export function serviceType(gateway: IstioGateway): string {
  return gateway.spec.service?.type ?? (gateway.spec.type === "egress" ? "ClusterIP" : "LoadBalancer");
}

export function autoscaled(gateway: IstioGateway): boolean {
  return gateway.spec.autoscaling?.enabled ?? true;
}

export function disruptionBudgeted(gateway: IstioGateway): boolean {
  return gateway.spec.podDisruptionBudget?.enabled ?? true;
}

/**
 * Everything the gateway needs. `revision` is the IstioRevision its reference resolves to
 * now; objects to delete (HPA or PDB turned off) are the caller's business.
 */
export function renderIstioGateway(gateway: IstioGateway, revision: string): KubeObject[] {
  const { name, namespace = "" } = gateway.metadata;
  const spec = gateway.spec;
  const selector = selectorLabels(gateway);
  // The controller adds the owner reference and GATEWAY_LABEL (ownedBy).
  const meta = () => ({ name, namespace, labels: { ...selector, ...MANAGED_BY } });
  // As the chart labels them, ambient opt-out included (a gateway is its own proxy).
  const podLabels: Record<string, string> = {
    "istio.io/dataplane-mode": "none",
    ...(spec.labels ?? {}),
    ...selector,
    "app.kubernetes.io/name": name,
    "sidecar.istio.io/inject": "true",
    ...(spec.revision ? { "istio.io/rev": spec.revision } : {}),
  };
  const ports = spec.service?.ports?.length ? spec.service.ports : DEFAULT_PORTS;
  const objects: KubeObject[] = [
    { apiVersion: "v1", kind: "ServiceAccount", metadata: meta() },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: meta(),
      // The gateway reads the TLS secrets its Gateway servers name (credentialName), in this namespace only.
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: GATEWAY_SECRETS_ROLE },
      subjects: [{ kind: "ServiceAccount", name, namespace }],
    } as KubeObject,
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: meta(),
      spec: {
        ...(autoscaled(gateway) ? {} : { replicas: spec.replicas ?? 1 }),
        selector: { matchLabels: selector },
        // Beyond upstream: a new revision rolls a pod at a time and never drops below the wanted count.
        strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
        template: {
          metadata: {
            labels: podLabels,
            annotations: {
              "prometheus.io/port": "15020",
              "prometheus.io/scrape": "true",
              "prometheus.io/path": "/stats/prometheus",
              ...(spec.annotations ?? {}),
              "inject.istio.io/templates": "gateway",
              [REVISION_ANNOTATION]: revision,
            },
          },
          spec: {
            serviceAccountName: name,
            containers: [
              {
                name: "istio-proxy",
                // Filled in by the injector's gateway template.
                image: "auto",
                ...(spec.imagePullPolicy ? { imagePullPolicy: spec.imagePullPolicy } : {}),
                ports: [{ name: "http-envoy-prom", containerPort: 15090, protocol: "TCP" }],
                resources: spec.resources ?? {
                  requests: { cpu: "100m", memory: "128Mi" },
                  limits: { cpu: "2", memory: "1Gi" },
                },
              },
            ],
          },
        },
      },
    } as KubeObject,
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { ...meta(), ...(spec.service?.annotations ? { annotations: spec.service.annotations } : {}) },
      spec: {
        type: serviceType(gateway),
        selector,
        ports: ports.map((p) => ({
          name: p.name,
          port: p.port,
          targetPort: p.targetPort ?? p.port,
          protocol: p.protocol ?? "TCP",
        })),
        ...(spec.service?.loadBalancerIP ? { loadBalancerIP: spec.service.loadBalancerIP } : {}),
        ...(spec.service?.externalTrafficPolicy ? { externalTrafficPolicy: spec.service.externalTrafficPolicy } : {}),
      },
    } as KubeObject,
  ];
  if (autoscaled(gateway)) {
    const a = spec.autoscaling ?? {};
    objects.push({
      apiVersion: "autoscaling/v2",
      kind: "HorizontalPodAutoscaler",
      metadata: meta(),
      spec: {
        scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name },
        minReplicas: a.minReplicas ?? 1,
        maxReplicas: a.maxReplicas ?? 5,
        metrics: [
          {
            type: "Resource",
            resource: {
              name: "cpu",
              target: { type: "Utilization", averageUtilization: a.targetCPUUtilizationPercentage ?? 80 },
            },
          },
        ],
      },
    } as KubeObject);
  }
  if (disruptionBudgeted(gateway)) {
    objects.push({
      apiVersion: "policy/v1",
      kind: "PodDisruptionBudget",
      metadata: meta(),
      spec: { minAvailable: spec.podDisruptionBudget?.minAvailable ?? 1, selector: { matchLabels: selector } },
    } as KubeObject);
  }
  return objects;
}

interface DeploymentState {
  metadata: { generation?: number };
  spec?: { replicas?: number };
  status?: { observedGeneration?: number; replicas?: number; updatedReplicas?: number; availableReplicas?: number };
}

/**
 * Ready: every wanted pod is available. A rollout does not make the gateway unready (it never
 * goes below the wanted count); `rolling` says one is under way.
 */
export function deploymentReadiness(deployment: DeploymentState | undefined): {
  ready: boolean;
  rolling: boolean;
  message: string;
} {
  if (!deployment) return { ready: false, rolling: false, message: "the Deployment does not exist yet" };
  const wanted = deployment.spec?.replicas ?? 1;
  const s = deployment.status ?? {};
  const available = s.availableReplicas ?? 0;
  const updated = s.updatedReplicas ?? 0;
  const seen = (s.observedGeneration ?? 0) >= (deployment.metadata.generation ?? 0);
  const rolling = !seen || updated < wanted || (s.replicas ?? 0) > updated;
  const ready = available >= wanted;
  const availability = `${available} of ${wanted} pods available`;
  if (!seen) return { ready, rolling, message: `${availability}; the Deployment controller has not seen the latest spec yet` };
  if (rolling) return { ready, rolling, message: `${availability}; rolling out: ${updated} of ${wanted} pods updated` };
  return { ready, rolling, message: availability };
}
