// The operator's own objects in manifests/install.yaml: its namespace, identity, RBAC and
// Deployment. RBAC is what the operator does, and no more, plus what it grants the
// control planes it creates (Kubernetes lets a subject grant only permissions it holds).
import { GATEWAY_SECRETS_ROLE } from "../controllers/gateways/istio-gateway.ts";
import { ANALYSIS_STATUS_RULES, ISTIOD_CREDENTIALS_ROLE } from "../controllers/install/control-plane.ts";
import packageJson from "../package.json" with { type: "json" };

export const OPERATOR_NAMESPACE = "rigger-system";
const NAME = "rigger-operator";
const labels = { "app.kubernetes.io/name": NAME, "app.kubernetes.io/managed-by": "rigger" };
const ALL = ["get", "list", "watch", "create", "update", "patch", "delete"];

/** What an IstioGateway's pods may do in their namespace: read the TLS secrets their servers name (SDS). */
export function gatewaySecretsClusterRole(): object {
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: { name: GATEWAY_SECRETS_ROLE, labels },
    rules: [{ apiGroups: [""], resources: ["secrets"], verbs: ["get", "watch", "list"] }],
  };
}

/**
 * What every revision's istiod may do beyond its own Role: read Secrets cluster-wide (the
 * certificates Gateways name; istiod keeps only their certificate keys) and ask whether a
 * gateway's ServiceAccount may read them (SubjectAccessReview, upstream's check before SDS).
 */
export function istiodCredentialsClusterRole(): object {
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: { name: ISTIOD_CREDENTIALS_ROLE, labels },
    rules: [
      { apiGroups: [""], resources: ["secrets"], verbs: ["get", "watch", "list"] },
      { apiGroups: ["authorization.k8s.io"], resources: ["subjectaccessreviews"], verbs: ["create"] },
    ],
  };
}

export function operatorClusterRole(): object {
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: { name: NAME, labels },
    rules: [
      {
        apiGroups: ["operator.rigger.dev"],
        resources: ["istios", "istiorevisions", "istiorevisiontags", "istiogateways"],
        verbs: ALL,
      },
      {
        apiGroups: ["operator.rigger.dev"],
        resources: ["istios/status", "istiorevisions/status", "istiorevisiontags/status", "istiogateways/status"],
        verbs: ["get", "update", "patch"],
      },
      // Owner references with blockOwnerDeletion need this where OwnerReferencesPermissionEnforcement is on (OpenShift).
      {
        apiGroups: ["operator.rigger.dev"],
        resources: ["istios/finalizers", "istiorevisions/finalizers", "istiorevisiontags/finalizers", "istiogateways/finalizers"],
        verbs: ["update"],
      },
      // Namespaces: InUse is read from their labels; a control plane namespace is created when missing.
      { apiGroups: [""], resources: ["namespaces"], verbs: ["get", "list", "watch", "create", "patch"] },
      { apiGroups: [""], resources: ["configmaps", "serviceaccounts", "services"], verbs: ALL },
      { apiGroups: [""], resources: ["events"], verbs: ["create", "patch"] },
      { apiGroups: ["apps"], resources: ["deployments"], verbs: ALL },
      // InUse from pods (metadata-only watch); updateWorkloads restarts workloads whose pods run another revision.
      { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] },
      { apiGroups: ["apps"], resources: ["replicasets"], verbs: ["get", "list"] },
      { apiGroups: ["apps"], resources: ["statefulsets", "daemonsets"], verbs: ["get", "list", "patch"] },
      { apiGroups: ["policy"], resources: ["poddisruptionbudgets"], verbs: ALL },
      { apiGroups: ["autoscaling"], resources: ["horizontalpodautoscalers"], verbs: ALL },
      {
        apiGroups: ["rbac.authorization.k8s.io"],
        resources: ["roles", "rolebindings", "clusterroles", "clusterrolebindings"],
        verbs: ALL,
      },
      {
        apiGroups: ["admissionregistration.k8s.io"],
        resources: ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"],
        verbs: ALL,
      },
      // Held only so the operator may grant them to istiod (its Role): see controllers/install/control-plane.ts.
      { apiGroups: [""], resources: ["secrets"], verbs: ["create"] },
      { apiGroups: [""], resources: ["secrets"], resourceNames: ["cacerts", "istio-ca-secret"], verbs: ["get", "list", "watch"] },
      { apiGroups: [""], resources: ["secrets"], resourceNames: ["istio-ca-secret"], verbs: ["update"] },
      { apiGroups: ["authentication.k8s.io"], resources: ["tokenreviews"], verbs: ["create"] },
      { apiGroups: ["networking.istio.io"], resources: ["gateways"], verbs: ["create"] },
      // istiod's service discovery (xDS) reads nodes' localities, EndpointSlices and mTLS policies.
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
      // istiod writes analysis findings into those objects' status.
      ...ANALYSIS_STATUS_RULES,
      { apiGroups: [""], resources: ["nodes"], verbs: ["list", "watch"] },
      { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["list", "watch"] },
      // Gateways read TLS secrets in their own namespace, istiod reads the certificates Gateways
      // name: the operator binds them to these ClusterRoles, and may bind these only (it cannot
      // read Secrets itself; what it may bind them to is checked by operatorGuardPolicies).
      {
        apiGroups: ["rbac.authorization.k8s.io"],
        resources: ["clusterroles"],
        resourceNames: [GATEWAY_SECRETS_ROLE, ISTIOD_CREDENTIALS_ROLE],
        verbs: ["bind"],
      },
      // Kubernetes Gateway API: the class, the Gateways and their status; the CRDs to notice it installed.
      {
        apiGroups: ["gateway.networking.k8s.io"],
        resources: ["gatewayclasses"],
        verbs: ["get", "list", "watch", "create", "patch"],
      },
      {
        apiGroups: ["gateway.networking.k8s.io"],
        resources: ["gateways", "httproutes", "grpcroutes"],
        verbs: ["get", "list", "watch"],
      },
      // Held only so the operator may grant it to istiod (which reads routes' ReferenceGrants).
      { apiGroups: ["gateway.networking.k8s.io"], resources: ["referencegrants"], verbs: ["list", "watch"] },
      {
        apiGroups: ["gateway.networking.k8s.io"],
        resources: ["gatewayclasses/status", "gateways/status", "httproutes/status", "grpcroutes/status"],
        verbs: ["get", "update", "patch"],
      },
      { apiGroups: ["apiextensions.k8s.io"], resources: ["customresourcedefinitions"], verbs: ["get", "list", "watch"] },
    ],
  };
}

const OPERATOR_USER = `system:serviceaccount:${OPERATOR_NAMESPACE}:${NAME}`;

/**
 * What RBAC cannot say, said by ValidatingAdmissionPolicies that apply to the operator's own
 * requests. RBAC cannot restrict what a created binding names (create is not scoped by
 * resourceNames) nor what a webhook configuration intercepts, so without these the operator
 * could bind itself to rigger-gateway-secrets or rigger-istiod-credentials (read every Secret) or register a webhook that
 * is sent every Secret written. The operator cannot change these policies (it has no rights
 * on validatingadmissionpolicies).
 */
export function operatorGuardPolicies(): object[] {
  const policy = (name: string, resources: string[], group: string, validations: object[]) => [
    {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicy",
      metadata: { name, labels },
      spec: {
        failurePolicy: "Fail",
        matchConstraints: {
          resourceRules: [{ apiGroups: [group], apiVersions: ["*"], operations: ["CREATE", "UPDATE"], resources }],
        },
        matchConditions: [{ name: "by-the-operator", expression: `request.userInfo.username == '${OPERATOR_USER}'` }],
        validations,
      },
    },
    {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicyBinding",
      metadata: { name, labels },
      spec: { policyName: name, validationActions: ["Deny"] },
    },
  ];
  return [
    ...policy("rigger-operator-bindings", ["rolebindings", "clusterrolebindings"], "rbac.authorization.k8s.io", [
      {
        expression: `object.roleRef.name != '${GATEWAY_SECRETS_ROLE}' || (request.kind.kind == 'RoleBinding' && has(object.subjects) && object.subjects.all(s, s.kind == 'ServiceAccount' && has(s.namespace) && s.namespace == request.namespace && s.namespace != '${OPERATOR_NAMESPACE}'))`,
        message: `the operator may bind ${GATEWAY_SECRETS_ROLE} only in a RoleBinding to ServiceAccounts of that RoleBinding's namespace (a gateway's), never cluster-wide and never in ${OPERATOR_NAMESPACE}`,
      },
      {
        expression: `object.roleRef.name != '${ISTIOD_CREDENTIALS_ROLE}' || (request.kind.kind == 'ClusterRoleBinding' && has(object.subjects) && object.subjects.all(s, s.kind == 'ServiceAccount' && has(s.namespace) && s.namespace != '${OPERATOR_NAMESPACE}' && s.name.startsWith('istiod')))`,
        message: `the operator may bind ${ISTIOD_CREDENTIALS_ROLE} only to control planes' istiod ServiceAccounts, never in ${OPERATOR_NAMESPACE}`,
      },
    ]),
    ...policy(
      "rigger-operator-webhooks",
      ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"],
      "admissionregistration.k8s.io",
      [
        {
          expression:
            "request.kind.kind != 'MutatingWebhookConfiguration' || !has(object.webhooks) || object.webhooks.all(w, !has(w.rules) || w.rules.all(r, r.apiGroups.all(g, g == '') && r.resources.all(x, x == 'pods')))",
          message: "the operator's mutating webhooks may intercept pods only (sidecar injection)",
        },
        {
          expression:
            "request.kind.kind != 'ValidatingWebhookConfiguration' || !has(object.webhooks) || object.webhooks.all(w, !has(w.rules) || w.rules.all(r, r.apiGroups.all(g, g.endsWith('.istio.io'))))",
          message: "the operator's validating webhooks may intercept Istio config (*.istio.io) only",
        },
      ],
    ),
  ];
}

export function operatorObjects(image = `rigger:${packageJson.version}`): object[] {
  const meta = (name: string) => ({ name, namespace: OPERATOR_NAMESPACE, labels });
  return [
    { apiVersion: "v1", kind: "Namespace", metadata: { name: OPERATOR_NAMESPACE, labels } },
    { apiVersion: "v1", kind: "ServiceAccount", metadata: meta(NAME) },
    operatorClusterRole(),
    gatewaySecretsClusterRole(),
    istiodCredentialsClusterRole(),
    ...operatorGuardPolicies(),
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: NAME, labels },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: NAME },
      subjects: [{ kind: "ServiceAccount", name: NAME, namespace: OPERATOR_NAMESPACE }],
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: meta(`${NAME}-leader-election`),
      rules: [{ apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"] }],
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: meta(`${NAME}-leader-election`),
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: `${NAME}-leader-election` },
      subjects: [{ kind: "ServiceAccount", name: NAME, namespace: OPERATOR_NAMESPACE }],
    },
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: meta(NAME),
      spec: {
        replicas: 2,
        selector: { matchLabels: { "app.kubernetes.io/name": NAME } },
        template: {
          metadata: { labels: { "app.kubernetes.io/name": NAME, "sidecar.istio.io/inject": "false" } },
          spec: {
            serviceAccountName: NAME,
            securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532 },
            containers: [
              {
                name: "operator",
                image,
                args: ["operator", "--health-addr=0.0.0.0:8443"],
                env: [{ name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } }],
                ports: [{ name: "https-metrics", containerPort: 8443 }],
                livenessProbe: { httpGet: { path: "/healthz", port: 8443, scheme: "HTTPS" }, periodSeconds: 10 },
                readinessProbe: { httpGet: { path: "/readyz", port: 8443, scheme: "HTTPS" }, periodSeconds: 5 },
                resources: { requests: { cpu: "50m", memory: "128Mi" }, limits: { memory: "512Mi" } },
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
    },
  ];
}
