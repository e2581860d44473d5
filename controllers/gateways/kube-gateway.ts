// What a Kubernetes Gateway API Gateway of class `istio` gets, in the shapes upstream istiod's
// deployment controller renders (its kube-gateway.yaml): ServiceAccount, Deployment and
// Service named <gateway>-istio (or the gateway.istio.io/name-override annotation), owned by
// the Gateway and labelled gateway.networking.k8s.io/gateway-name. The proxy is rendered
// directly in router mode (no injection: sidecar.istio.io/inject=false), revision-aware via
// the Gateway's istio.io/rev label (resolved by the caller: a tag move changes the pod
// template's istio.io/rev annotation, and the Deployment rolls a pod at a time). Pure:
// Gateway and settings in, objects out; gateway-api-controller.ts applies them.
// e2e/gateway-parity.test.ts compares them, field by field after the apiserver's defaulting,
// with what the pinned upstream istiod deploys for the same Gateway.
import type { V1Deployment, V1Service, V1ServiceAccount } from "@kubernetes/client-node";
import { podInfoVolume } from "../../webhooks/inject/sidecar-template.ts";
import type { Listener } from "./gateway-status.ts";

export const GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name";
export const MANAGED_LABEL = "gateway.istio.io/managed";
const NOT_COPIED = new Set([
  "kubectl.kubernetes.io/last-applied-configuration",
  "gateway.istio.io/name-override",
  "gateway.istio.io/service-account",
  "gateway.istio.io/controller-version",
]);

export interface Gateway {
  apiVersion: string;
  kind: "Gateway";
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec: {
    gatewayClassName: string;
    listeners?: Listener[];
    addresses?: { type?: string; value: string }[];
    infrastructure?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  };
}

export interface GatewaySettings {
  /** e.g. docker.io/istio/proxyv2:1.27.9 */
  proxyImage: string;
  /** The control plane's namespace and Service (CA_ADDR points at it). */
  istioNamespace: string;
  istiodService: string;
  /** The IstioRevision the Gateway's istio.io/rev resolves to ("default" for the default revision). */
  revision: string;
  trustDomain: string;
  clusterDomain?: string;
  /** The revision's mesh-wide proxy config as PROXY_CONFIG carries it (default-valued fields left out). */
  proxyConfigJson?: string;
  clusterId?: string;
  network?: string;
  /** The mesh's defaultConfig.proxyMetadata: environment of the proxy's agent (e.g. CLOUD_PLATFORM). */
  proxyMetadata?: Record<string, string>;
}

/** A listener protocol's Service appProtocol, as upstream maps them. */
function appProtocol(protocol: string): string {
  switch (protocol.toUpperCase()) {
    case "HTTP":
      return "http";
    case "HTTPS":
    case "TLS":
      return "https";
    case "GRPC":
      return "grpc";
    default:
      return "tcp";
  }
}

export function gatewayResourceName(gateway: Gateway): string {
  return (
    gateway.metadata.annotations?.["gateway.istio.io/name-override"] ??
    `${gateway.metadata.name}-${gateway.spec.gatewayClassName}`
  );
}

export function renderKubeGateway(gateway: Gateway, settings: GatewaySettings): [V1ServiceAccount, V1Deployment, V1Service] {
  const name = gatewayResourceName(gateway);
  const namespace = gateway.metadata.namespace;
  const serviceAccount = gateway.metadata.annotations?.["gateway.istio.io/service-account"] ?? name;
  const infraLabels = gateway.spec.infrastructure?.labels ?? {};
  const infraAnnotations = Object.fromEntries(
    Object.entries(gateway.spec.infrastructure?.annotations ?? {}).filter(([k]) => !NOT_COPIED.has(k)),
  );
  const owner = [
    { apiVersion: "gateway.networking.k8s.io/v1beta1", kind: "Gateway", name: gateway.metadata.name, uid: gateway.metadata.uid },
  ];
  // Every object carries the managed label: upstream's controller adds it when it applies them.
  const labels = { ...infraLabels, [GATEWAY_NAME_LABEL]: gateway.metadata.name, [MANAGED_LABEL]: "istio.io-gateway-controller" };
  const serviceType = gateway.metadata.annotations?.["networking.istio.io/service-type"] ?? "LoadBalancer";
  const fieldEnv = (envName: string, fieldPath: string) => ({ name: envName, valueFrom: { fieldRef: { fieldPath } } });
  const resourceEnv = (envName: string, resource: string) => ({ name: envName, valueFrom: { resourceFieldRef: { resource } } });
  const ready = { path: "/healthz/ready", port: 15021, scheme: "HTTP" };
  const ports = [
    { name: "status-port", port: 15021, appProtocol: "tcp" },
    ...(gateway.spec.listeners ?? []).map((l) => ({
      name: l.name,
      port: l.port,
      appProtocol: appProtocol(l.protocol),
    })),
  ].filter((p, i, all) => all.findIndex((q) => q.port === p.port) === i);

  const sa: V1ServiceAccount = {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: { name: serviceAccount, namespace, labels, annotations: infraAnnotations, ownerReferences: owner },
  };
  const deployment: V1Deployment = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: {
      name,
      namespace,
      labels,
      annotations: infraAnnotations,
      ownerReferences: owner,
    },
    spec: {
      selector: { matchLabels: { [GATEWAY_NAME_LABEL]: gateway.metadata.name } },
      // A revision change rolls the gateway a pod at a time: never fewer ready pods than asked for.
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: {
          annotations: {
            ...infraAnnotations,
            "istio.io/rev": settings.revision || "default",
            "prometheus.io/path": "/stats/prometheus",
            "prometheus.io/port": "15020",
            "prometheus.io/scrape": "true",
          },
          labels: {
            "sidecar.istio.io/inject": "false",
            "service.istio.io/canonical-name": name,
            "service.istio.io/canonical-revision": "latest",
            ...labels,
          },
        },
        spec: {
          serviceAccountName: serviceAccount,
          securityContext: { sysctls: [{ name: "net.ipv4.ip_unprivileged_port_start", value: "0" }] },
          containers: [
            {
              name: "istio-proxy",
              image: settings.proxyImage,
              securityContext: {
                capabilities: { drop: ["ALL"] },
                allowPrivilegeEscalation: false,
                privileged: false,
                readOnlyRootFilesystem: true,
                runAsUser: 1337,
                runAsGroup: 1337,
                runAsNonRoot: true,
              },
              ports: [
                { containerPort: 15020, name: "metrics", protocol: "TCP" },
                { containerPort: 15021, name: "status-port", protocol: "TCP" },
                { containerPort: 15090, name: "http-envoy-prom", protocol: "TCP" },
              ],
              args: [
                "proxy",
                "router",
                "--domain",
                `$(POD_NAMESPACE).svc.${settings.clusterDomain ?? "cluster.local"}`,
                "--proxyLogLevel",
                "warning",
                "--proxyComponentLogLevel",
                "misc:error",
                "--log_output_level",
                "default:info",
              ],
              env: [
                { name: "PILOT_CERT_PROVIDER", value: "istiod" },
                { name: "CA_ADDR", value: `${settings.istiodService}.${settings.istioNamespace}.svc:15012` },
                fieldEnv("POD_NAME", "metadata.name"),
                fieldEnv("POD_NAMESPACE", "metadata.namespace"),
                fieldEnv("INSTANCE_IP", "status.podIP"),
                fieldEnv("SERVICE_ACCOUNT", "spec.serviceAccountName"),
                fieldEnv("HOST_IP", "status.hostIP"),
                resourceEnv("ISTIO_CPU_LIMIT", "limits.cpu"),
                { name: "PROXY_CONFIG", value: `${settings.proxyConfigJson ?? "{}"}\n` },
                { name: "ISTIO_META_POD_PORTS", value: "[]" },
                { name: "ISTIO_META_APP_CONTAINERS", value: "" },
                resourceEnv("GOMEMLIMIT", "limits.memory"),
                resourceEnv("GOMAXPROCS", "limits.cpu"),
                { name: "ISTIO_META_CLUSTER_ID", value: settings.clusterId || "Kubernetes" },
                fieldEnv("ISTIO_META_NODE_NAME", "spec.nodeName"),
                { name: "ISTIO_META_INTERCEPTION_MODE", value: "REDIRECT" },
                ...(settings.network ? [{ name: "ISTIO_META_NETWORK", value: settings.network }] : []),
                { name: "ISTIO_META_WORKLOAD_NAME", value: name },
                { name: "ISTIO_META_OWNER", value: `kubernetes://apis/apps/v1/namespaces/${namespace}/deployments/${name}` },
                { name: "ISTIO_META_MESH_ID", value: settings.trustDomain },
                { name: "TRUST_DOMAIN", value: settings.trustDomain },
                ...Object.entries(settings.proxyMetadata ?? {}).map(([key, value]) => ({ name: key, value: String(value) })),
              ],
              resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { cpu: "2", memory: "1Gi" } },
              startupProbe: {
                httpGet: ready,
                failureThreshold: 30,
                initialDelaySeconds: 1,
                periodSeconds: 1,
                successThreshold: 1,
                timeoutSeconds: 1,
              },
              readinessProbe: {
                httpGet: ready,
                failureThreshold: 4,
                initialDelaySeconds: 0,
                periodSeconds: 15,
                successThreshold: 1,
                timeoutSeconds: 1,
              },
              volumeMounts: [
                { name: "workload-socket", mountPath: "/var/run/secrets/workload-spiffe-uds" },
                { name: "credential-socket", mountPath: "/var/run/secrets/credential-uds" },
                { name: "workload-certs", mountPath: "/var/run/secrets/workload-spiffe-credentials" },
                { name: "istiod-ca-cert", mountPath: "/var/run/secrets/istio" },
                { name: "istio-data", mountPath: "/var/lib/istio/data" },
                { name: "istio-envoy", mountPath: "/etc/istio/proxy" },
                { name: "istio-token", mountPath: "/var/run/secrets/tokens" },
                { name: "istio-podinfo", mountPath: "/etc/istio/pod" },
              ],
            },
          ],
          volumes: [
            { name: "workload-socket", emptyDir: {} },
            { name: "credential-socket", emptyDir: {} },
            { name: "workload-certs", emptyDir: {} },
            { name: "istio-envoy", emptyDir: { medium: "Memory" } },
            { name: "istio-data", emptyDir: {} },
            podInfoVolume(),
            {
              name: "istio-token",
              projected: {
                sources: [{ serviceAccountToken: { path: "istio-token", expirationSeconds: 43200, audience: "istio-ca" } }],
              },
            },
            { name: "istiod-ca-cert", configMap: { name: "istio-ca-root-cert" } },
          ],
        },
      },
    },
  };
  const address = gateway.spec.addresses?.[0]?.value;
  const service: V1Service = {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace, labels, annotations: infraAnnotations, ownerReferences: owner },
    spec: {
      ipFamilyPolicy: "PreferDualStack",
      ports: ports.map((p) => ({ name: p.name, port: p.port, protocol: "TCP", appProtocol: p.appProtocol })),
      selector: { [GATEWAY_NAME_LABEL]: gateway.metadata.name },
      type: serviceType,
      ...(address && serviceType === "LoadBalancer" ? { loadBalancerIP: address } : {}),
    },
  };
  return [sa, deployment, service];
}
