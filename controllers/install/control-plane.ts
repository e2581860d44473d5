// A revision's Deployment istiod[-<rev>] running `rigger istiod`, and the RBAC it needs,
// least privilege for what the program does today:
//   Role istiod[-<rev>] (its namespace): read ConfigMaps; read Secrets cacerts and
//     istio-ca-secret, create and re-sign the latter; dry-run create Gateways (self-test).
//   ClusterRole istiod-clusterrole[-<rev>]-<ns>: read and update its own webhook
//     configurations (by name) for caBundle and failurePolicy; TokenReviews for the CA;
//     namespaces and ConfigMaps for istio-ca-root-cert in every namespace.
//   ClusterRoleBinding istiod-credentials[-<rev>]-<ns> to install.yaml's ClusterRole
//     rigger-istiod-credentials: read Secrets (gateways' credentialName certificates) and ask
//     SubjectAccessReviews (may this gateway read them?). The operator holds neither right: it
//     may only bind that role, and only to an istiod ServiceAccount (manifests/install.ts).
// Pure: spec in, objects out.
import type { V1ClusterRole, V1ClusterRoleBinding, V1Deployment, V1Role, V1RoleBinding } from "@kubernetes/client-node";
import { MANAGED_BY, type RevisionSpec } from "./configmaps.ts";
import { istiodName } from "./revision.ts";

/** istiod's right to write analysis findings into Istio config objects' status (status only, never their spec). */
export const ANALYSIS_STATUS_RULES = [
  {
    apiGroups: ["networking.istio.io"],
    resources: [
      "serviceentries/status",
      "workloadentries/status",
      "virtualservices/status",
      "destinationrules/status",
      "sidecars/status",
      "gateways/status",
    ],
    verbs: ["patch"],
  },
  {
    apiGroups: ["security.istio.io"],
    resources: ["authorizationpolicies/status", "peerauthentications/status", "requestauthentications/status"],
    verbs: ["patch"],
  },
  { apiGroups: ["telemetry.istio.io"], resources: ["telemetries/status"], verbs: ["patch"] },
];

export interface ControlPlaneImage {
  /** The image that holds `rigger` (the operator's own image by default). */
  image: string;
  pullPolicy?: string;
}

function revisionLabel(spec: RevisionSpec): string {
  return spec.name || "default";
}

function labels(spec: RevisionSpec): Record<string, string> {
  return { app: "istiod", "istio.io/rev": revisionLabel(spec), ...MANAGED_BY };
}

const suffix = (spec: RevisionSpec) => (spec.name && spec.name !== "default" ? `-${spec.name}` : "");

/** The ClusterRole (in manifests/install.yaml) istiod reads gateways' certificates with. */
export const ISTIOD_CREDENTIALS_ROLE = "rigger-istiod-credentials";

export function clusterRoleName(spec: RevisionSpec): string {
  return `istiod-clusterrole${suffix(spec)}-${spec.namespace}`;
}

export function deployment(
  spec: RevisionSpec & { values?: { pilot?: { env?: Record<string, string>; resources?: object } } },
  image: ControlPlaneImage,
): V1Deployment {
  const name = istiodName(spec.name);
  const podLabels = { app: "istiod", "istio.io/rev": revisionLabel(spec), istio: "pilot", "sidecar.istio.io/inject": "false" };
  const userEnv = Object.entries(spec.values?.pilot?.env ?? {}).map(([key, value]) => ({ name: key, value }));
  const port = (containerPort: number, portName: string) => ({ containerPort, name: portName, protocol: "TCP" });
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, namespace: spec.namespace, labels: { ...labels(spec), istio: "pilot" } },
    spec: {
      // No replicas: the HorizontalPodAutoscaler owns the count.
      selector: { matchLabels: { app: "istiod", "istio.io/rev": revisionLabel(spec) } },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: "100%", maxUnavailable: "25%" } },
      template: {
        metadata: { labels: podLabels },
        spec: {
          serviceAccountName: name,
          securityContext: { runAsNonRoot: true, runAsUser: 1337, runAsGroup: 1337, fsGroup: 1337 },
          containers: [
            {
              name: "discovery",
              image: image.image,
              imagePullPolicy: image.pullPolicy ?? "IfNotPresent",
              args: ["istiod", `--revision=${spec.name === "default" ? "" : spec.name}`, "--port=15017", "--log-level=info"],
              ports: [
                port(15017, "https-webhooks"),
                port(15010, "grpc-xds"),
                port(15012, "tls-xds"),
                port(15014, "http-monitoring"),
              ],
              readinessProbe: {
                httpGet: { path: "/ready", port: 15017, scheme: "HTTPS" },
                initialDelaySeconds: 1,
                periodSeconds: 3,
                timeoutSeconds: 5,
              },
              // Restarts an istiod whose event loop has stalled: /healthz answers from that loop.
              livenessProbe: {
                httpGet: { path: "/healthz", port: 15017, scheme: "HTTPS" },
                initialDelaySeconds: 10,
                periodSeconds: 10,
                timeoutSeconds: 5,
                failureThreshold: 3,
              },
              env: [
                { name: "REVISION", value: revisionLabel(spec) },
                { name: "POD_NAME", valueFrom: { fieldRef: { apiVersion: "v1", fieldPath: "metadata.name" } } },
                { name: "POD_NAMESPACE", valueFrom: { fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" } } },
                ...userEnv,
              ],
              resources: (spec.values?.pilot?.resources as object | undefined) ?? {
                requests: { cpu: "100m", memory: "256Mi" },
              },
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ["ALL"] },
              },
            },
          ],
        },
      },
    },
  };
}

export function role(spec: RevisionSpec): V1Role {
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "Role",
    metadata: { name: istiodName(spec.name), namespace: spec.namespace, labels: labels(spec) },
    rules: [
      { apiGroups: [""], resources: ["configmaps"], verbs: ["get", "list", "watch"] },
      // The mesh CA: a plugged-in cacerts, or its own self-signed istio-ca-secret (created, re-signed).
      { apiGroups: [""], resources: ["secrets"], verbs: ["create"] },
      { apiGroups: [""], resources: ["secrets"], resourceNames: ["cacerts", "istio-ca-secret"], verbs: ["get", "list", "watch"] },
      { apiGroups: [""], resources: ["secrets"], resourceNames: ["istio-ca-secret"], verbs: ["update"] },
      { apiGroups: ["networking.istio.io"], resources: ["gateways"], verbs: ["create"] },
    ],
  };
}

export function roleBinding(spec: RevisionSpec): V1RoleBinding {
  const name = istiodName(spec.name);
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: { name, namespace: spec.namespace, labels: labels(spec) },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
    subjects: [{ kind: "ServiceAccount", name, namespace: spec.namespace }],
  };
}

/** `webhookNames`: the mutating and validating configurations this revision patches. */
export function clusterRole(spec: RevisionSpec, webhookNames: { mutating: string[]; validating: string[] }): V1ClusterRole {
  const group = "admissionregistration.k8s.io";
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: { name: clusterRoleName(spec), labels: labels(spec) },
    rules: [
      {
        apiGroups: [group],
        resources: ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"],
        verbs: ["list", "watch"],
      },
      // Workload certificates: callers' tokens are checked by TokenReview.
      { apiGroups: ["authentication.k8s.io"], resources: ["tokenreviews"], verbs: ["create"] },
      // istio-ca-root-cert in every namespace.
      { apiGroups: [""], resources: ["namespaces"], verbs: ["get", "list", "watch"] },
      // Service discovery for xDS: Services, their endpoints, the pods behind them and their nodes' localities.
      { apiGroups: [""], resources: ["services", "pods", "nodes"], verbs: ["list", "watch"] },
      { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["list", "watch"] },
      // Istio config the proxies' configuration is built from.
      {
        apiGroups: ["security.istio.io"],
        resources: ["peerauthentications", "authorizationpolicies", "requestauthentications"],
        verbs: ["list", "watch"],
      },
      {
        apiGroups: ["networking.istio.io"],
        resources: ["serviceentries", "workloadentries", "virtualservices", "destinationrules", "sidecars", "gateways"],
        verbs: ["list", "watch"],
      },
      { apiGroups: ["telemetry.istio.io"], resources: ["telemetries"], verbs: ["list", "watch"] },
      // The Gateway API's gateways and routes, which configure gateway pods too.
      {
        apiGroups: ["gateway.networking.k8s.io"],
        resources: ["gateways", "httproutes", "grpcroutes", "referencegrants"],
        verbs: ["list", "watch"],
      },
      // The certificate conditions of Gateway API listeners (the operator writes the rest of the status).
      { apiGroups: ["gateway.networking.k8s.io"], resources: ["gateways/status"], verbs: ["patch"] },
      // Analysis findings in the status of the Istio config objects istiod reads (status only: never their spec).
      ...ANALYSIS_STATUS_RULES,
      // A configuration a proxy rejects (NACK) is told as a Warning Event on its pod.
      { apiGroups: [""], resources: ["events"], verbs: ["create"] },
      { apiGroups: [""], resources: ["configmaps"], verbs: ["get", "list", "watch", "create", "update"] },
      {
        apiGroups: [group],
        resources: ["mutatingwebhookconfigurations"],
        resourceNames: webhookNames.mutating,
        verbs: ["get", "update"],
      },
      {
        apiGroups: [group],
        resources: ["validatingwebhookconfigurations"],
        resourceNames: webhookNames.validating,
        verbs: ["get", "update"],
      },
    ],
  };
}

export function clusterRoleBinding(spec: RevisionSpec): V1ClusterRoleBinding {
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRoleBinding",
    metadata: { name: clusterRoleName(spec), labels: labels(spec) },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: clusterRoleName(spec) },
    subjects: [{ kind: "ServiceAccount", name: istiodName(spec.name), namespace: spec.namespace }],
  };
}

/** Binds the revision's istiod to rigger-istiod-credentials (gateways' credentialName Secrets). */
export function credentialsRoleBinding(spec: RevisionSpec): V1ClusterRoleBinding {
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRoleBinding",
    metadata: { name: `istiod-credentials${suffix(spec)}-${spec.namespace}`, labels: labels(spec) },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: ISTIOD_CREDENTIALS_ROLE },
    subjects: [{ kind: "ServiceAccount", name: istiodName(spec.name), namespace: spec.namespace }],
  };
}
