// The operator API, operator.rigger.dev/v1alpha1: Istio, IstioRevision, IstioRevisionTag
// (cluster-scoped) and IstioGateway (namespaced: a gateway lives where its traffic does). This module is the source of truth; `make crds` writes
// crds/operator.gen.yaml from it. OpenAPI and CEL rules give clear messages at kubectl
// apply, before any controller sees the object.
import { GROUP, VERSION } from "../api/operator.ts";
import { versions } from "../versions.ts";

type Schema = Record<string, unknown>;

const str = (description: string, extra: Schema = {}): Schema => ({ type: "string", description, ...extra });
const int = (description: string, extra: Schema = {}): Schema => ({ type: "integer", format: "int32", description, ...extra });
const bool = (description: string): Schema => ({ type: "boolean", description });
const free = (description: string): Schema => ({ type: "object", description, "x-kubernetes-preserve-unknown-fields": true });

const labelSelector: Schema = {
  type: "object",
  properties: {
    matchLabels: { type: "object", additionalProperties: { type: "string" } },
    matchExpressions: {
      type: "array",
      items: {
        type: "object",
        required: ["key", "operator"],
        properties: {
          key: { type: "string" },
          operator: { type: "string", enum: ["In", "NotIn", "Exists", "DoesNotExist"] },
          values: { type: "array", items: { type: "string" } },
        },
      },
    },
  },
};

const resources: Schema = {
  type: "object",
  description: "Requests and limits, as on a container.",
  properties: {
    requests: { type: "object", additionalProperties: { "x-kubernetes-int-or-string": true } },
    limits: { type: "object", additionalProperties: { "x-kubernetes-int-or-string": true } },
  },
};

/** The typed values a control plane revision takes (a subset of Istio's Helm values, same names). */
const values: Schema = {
  type: "object",
  description: "Settings of the control plane, named as in Istio's Helm values.",
  properties: {
    global: {
      type: "object",
      properties: {
        hub: str("Registry and repository of the proxy image, e.g. docker.io/istio."),
        tag: str("Tag of the proxy image; defaults to the Istio version."),
        imagePullPolicy: str("Pull policy of the injected proxy containers (unset: Kubernetes' default for the image).", {
          enum: ["Always", "IfNotPresent", "Never"],
        }),
        proxy: {
          type: "object",
          properties: {
            image: str("Proxy image name (default proxyv2)."),
            resources,
            holdApplicationUntilProxyStarts: bool("Start application containers only once the proxy is ready."),
          },
        },
        network: str("Network of this cluster, for multi-network meshes."),
        multiCluster: { type: "object", properties: { clusterName: str("Name of this cluster in the mesh.") } },
      },
    },
    pilot: {
      type: "object",
      properties: {
        replicaCount: int("Replicas of the control plane Deployment.", { minimum: 1 }),
        resources,
        env: {
          type: "object",
          description: "Environment variables of the control plane.",
          additionalProperties: { type: "string" },
        },
      },
    },
    meshConfig: free("Mesh configuration (ConfigMap istio, key mesh), as Istio's MeshConfig."),
    sidecarInjectorWebhook: {
      type: "object",
      properties: {
        policy: str("Whether pods are injected when nothing else says.", { enum: ["enabled", "disabled"] }),
        neverInjectSelector: { type: "array", items: labelSelector },
        alwaysInjectSelector: { type: "array", items: labelSelector },
        enableNamespacesByDefault: bool("Inject every namespace without an injection label."),
        reinvocationPolicy: str("Whether the apiserver calls the injector again after other webhooks.", {
          enum: ["Never", "IfNeeded"],
        }),
        nativeSidecars: bool("Inject istio-proxy as a native sidecar (a restartable init container)."),
      },
    },
    externalControlPlaneURL: str("Base URL of a control plane outside the cluster; webhooks then use clientConfig.url.", {
      pattern: "^https://",
    }),
  },
};

const condition: Schema = {
  type: "object",
  required: ["type", "status"],
  properties: {
    type: str("Reconciled, Ready, InUse, …"),
    status: str("True, False or Unknown.", { enum: ["True", "False", "Unknown"] }),
    reason: str("A CamelCase reason."),
    message: str("What a person should know."),
    lastTransitionTime: str("When the status last changed.", { format: "date-time" }),
    observedGeneration: { type: "integer", format: "int64" },
  },
};

const commonStatus = (extra: Record<string, Schema>): Schema => ({
  type: "object",
  properties: {
    observedGeneration: { type: "integer", format: "int64" },
    conditions: { type: "array", items: condition, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] },
    state: str("Short summary: Healthy, Reconciling, NotReady, Failed, …"),
    ...extra,
  },
});

const versionField = str(`Istio release to run; the pinned one (${versions.istio}) when empty.`, {
  pattern: "^1\\.[0-9]+\\.[0-9]+$",
});
const namespaceField = str("Namespace of the control plane.", {
  default: "istio-system",
  maxLength: 63,
  pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
  "x-kubernetes-validations": [
    { rule: "self == oldSelf", message: "namespace is immutable; create a new Istio resource instead" },
  ],
});

function crd(
  kind: string,
  plural: string,
  shortNames: string[],
  spec: Schema,
  status: Schema,
  columns: object[],
  scope: "Cluster" | "Namespaced" = "Cluster",
): object {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${plural}.${GROUP}` },
    spec: {
      group: GROUP,
      scope,
      names: {
        kind,
        listKind: `${kind}List`,
        plural,
        singular: kind.toLowerCase(),
        ...(shortNames.length > 0 ? { shortNames } : {}),
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [...columns, { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" }],
          schema: {
            openAPIV3Schema: {
              type: "object",
              required: ["spec"],
              properties: {
                apiVersion: { type: "string" },
                kind: { type: "string" },
                metadata: { type: "object" },
                spec,
                status,
              },
            },
          },
        },
      ],
    },
  };
}

export function operatorCrds(): object[] {
  const istio = crd(
    "Istio",
    "istios",
    [],
    {
      type: "object",
      description: "A control plane: its version, settings and how it is upgraded.",
      properties: {
        version: versionField,
        namespace: namespaceField,
        profile: str("Starting point for the values.", { enum: ["default", "minimal", "demo", "remote"], default: "default" }),
        values,
        updateStrategy: {
          type: "object",
          properties: {
            type: str("InPlace updates the one revision; RevisionBased adds a revision per change, canary style.", {
              enum: ["InPlace", "RevisionBased"],
              default: "InPlace",
            }),
            inactiveRevisionDeletionGracePeriodSeconds: int("How long an unused revision is kept before it is pruned.", {
              minimum: 0,
              default: 30,
            }),
            updateWorkloads: {
              type: "object",
              description: "Restart workloads whose pods run another revision than their namespace now asks for, batch by batch.",
              properties: {
                enabled: bool("Restart them (default false: restart them yourself)."),
                batchSize: int("Workloads restarted at once.", { minimum: 1, default: 1 }),
                delayBetweenBatches: str("Wait after a batch is ready, e.g. 30s or 2m.", {
                  pattern: "^[0-9]+(s|m)$",
                  default: "0s",
                }),
              },
            },
          },
        },
      },
    },
    commonStatus({
      activeRevisionName: str("The revision new workloads use."),
      revisions: {
        type: "object",
        properties: {
          total: int("Revisions of this Istio."),
          ready: int("Ready revisions."),
          inUse: int("Revisions workloads use."),
        },
      },
      workloadMigration: {
        type: "object",
        description: "Progress of updateWorkloads.",
        properties: {
          state: str("Idle, InProgress, Paused or Complete."),
          message: str("What it is doing or waiting for."),
          restarted: int("Workloads restarted so far."),
          remaining: int("Workloads still on another revision."),
          batchStartedAt: str("When the current batch was restarted.", { format: "date-time" }),
          lastBatchReadyAt: str("When the previous batch became ready.", { format: "date-time" }),
          batch: { type: "array", items: { type: "string" }, description: "The current batch (Kind/namespace/name)." },
        },
      },
      inactiveRevisions: {
        type: "array",
        description: "Revisions other than the active one: why each is kept, and when an unused one will be pruned.",
        items: {
          type: "object",
          properties: {
            name: str("The IstioRevision."),
            message: str("Why it is kept or when it goes."),
            pruneAt: str("When it will be pruned unless used again.", { format: "date-time" }),
          },
        },
      },
    }),
    [
      { name: "Revisions", type: "integer", jsonPath: ".status.revisions.total" },
      { name: "Ready", type: "integer", jsonPath: ".status.revisions.ready" },
      { name: "In use", type: "integer", jsonPath: ".status.revisions.inUse" },
      { name: "Active revision", type: "string", jsonPath: ".status.activeRevisionName" },
      { name: "Status", type: "string", jsonPath: ".status.state" },
      { name: "Version", type: "string", jsonPath: ".spec.version" },
    ],
  );
  const revision = crd(
    "IstioRevision",
    "istiorevisions",
    ["istiorev"],
    {
      type: "object",
      description: "One control plane revision (istiod-<name>); created by an Istio resource.",
      required: ["namespace"],
      properties: { version: versionField, namespace: namespaceField, values },
    },
    commonStatus({}),
    [
      { name: "Namespace", type: "string", jsonPath: ".spec.namespace" },
      { name: "Ready", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
      { name: "Status", type: "string", jsonPath: ".status.state" },
      { name: "In use", type: "string", jsonPath: '.status.conditions[?(@.type=="InUse")].status' },
      { name: "Version", type: "string", jsonPath: ".spec.version" },
    ],
  );
  const tag = crd(
    "IstioRevisionTag",
    "istiorevisiontags",
    ["istiorevtag"],
    {
      type: "object",
      description: "A stable name (prod-stable, prod-canary, default) for whichever revision it points at.",
      required: ["targetRef"],
      properties: {
        targetRef: {
          type: "object",
          required: ["kind", "name"],
          properties: {
            kind: str("What the tag points at.", { enum: ["Istio", "IstioRevision"] }),
            name: str("Its name.", { minLength: 1 }),
          },
        },
      },
    },
    commonStatus({
      istioRevision: str("The revision the tag resolves to."),
      istiodNamespace: str("Its control plane namespace."),
    }),
    [
      { name: "Status", type: "string", jsonPath: ".status.state" },
      { name: "In use", type: "string", jsonPath: '.status.conditions[?(@.type=="InUse")].status' },
      { name: "Revision", type: "string", jsonPath: ".status.istioRevision" },
    ],
  );
  return [istio, revision, tag, istioGateway()];
}

/** An ingress or egress gateway Deployment whose pods the gateway template injects. */
function istioGateway(): object {
  const port: Schema = {
    type: "object",
    required: ["name", "port"],
    properties: {
      name: str("Port name; its prefix (http2, https, tcp, tls, grpc) tells Istio the protocol."),
      port: int("Service port.", { minimum: 1, maximum: 65535 }),
      targetPort: int("Container port; the Service port when empty.", { minimum: 1, maximum: 65535 }),
      protocol: str("TCP or UDP.", { enum: ["TCP", "UDP"], default: "TCP" }),
    },
  };
  return crd(
    "IstioGateway",
    "istiogateways",
    ["istiogw"],
    {
      type: "object",
      description:
        "An Istio ingress or egress gateway: Deployment (pods injected with the gateway template), Service, ServiceAccount, Role for TLS secrets, HPA and PDB, all named like this resource.",
      properties: {
        type: str("ingress (Service LoadBalancer by default) or egress (ClusterIP by default).", {
          enum: ["ingress", "egress"],
          default: "ingress",
        }),
        revision: str(
          "Revision or revision tag whose control plane injects and serves the gateway; the default revision when empty. When a tag moves, the gateway rolls a pod at a time.",
          { maxLength: 63 },
        ),
        labels: {
          type: "object",
          description:
            "Extra pod labels. `istio` (what Istio Gateway selectors match) defaults to the name without an `istio-` prefix.",
          additionalProperties: { type: "string" },
        },
        annotations: { type: "object", description: "Extra pod annotations.", additionalProperties: { type: "string" } },
        replicas: int("Replicas when autoscaling is disabled.", { minimum: 0, default: 1 }),
        imagePullPolicy: str(
          "Pull policy of the proxy container (unset: Kubernetes' default for `image: auto`, Always), as the gateway chart's value.",
          { enum: ["Always", "IfNotPresent", "Never"] },
        ),
        autoscaling: {
          type: "object",
          properties: {
            enabled: bool("Scale with a HorizontalPodAutoscaler on CPU (default true)."),
            minReplicas: int("Fewest replicas.", { minimum: 1, default: 1 }),
            maxReplicas: int("Most replicas.", { minimum: 1, default: 5 }),
            targetCPUUtilizationPercentage: int("Target average CPU, percent of requests.", {
              minimum: 1,
              default: 80,
            }),
          },
          "x-kubernetes-validations": [
            {
              rule: "!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
              message: "autoscaling.minReplicas must not exceed maxReplicas",
            },
          ],
        },
        podDisruptionBudget: {
          type: "object",
          properties: {
            enabled: bool("Keep a PodDisruptionBudget (default true)."),
            minAvailable: int("Pods that must stay up during voluntary disruptions.", { minimum: 0, default: 1 }),
          },
        },
        service: {
          type: "object",
          properties: {
            type: str("Service type; LoadBalancer for ingress, ClusterIP for egress when empty.", {
              enum: ["LoadBalancer", "ClusterIP", "NodePort"],
            }),
            ports: {
              type: "array",
              description: "Service ports; status-port 15021, http2 80 and https 443 when empty.",
              items: port,
              maxItems: 32,
              "x-kubernetes-list-type": "map",
              "x-kubernetes-list-map-keys": ["name"],
              "x-kubernetes-validations": [
                {
                  rule: "self.all(p, self.exists_one(q, q.port == p.port))",
                  message: "service ports must have distinct port numbers",
                },
              ],
            },
            annotations: {
              type: "object",
              description: "Service annotations (cloud load balancer settings).",
              additionalProperties: { type: "string" },
            },
            loadBalancerIP: str("Requested load balancer address."),
            externalTrafficPolicy: str("Cluster or Local.", { enum: ["Cluster", "Local"] }),
          },
        },
        resources,
      },
    },
    commonStatus({
      revision: str("The revision the gateway's pods are injected by."),
      replicas: int("Pods the Deployment wants."),
      readyReplicas: int("Ready pods on the current revision."),
      addresses: {
        type: "array",
        description: "Load balancer addresses, or the Service's cluster hostname.",
        items: {
          type: "object",
          properties: { type: str("IPAddress or Hostname."), value: str("The address.") },
        },
      },
    }),
    [
      { name: "Revision", type: "string", jsonPath: ".status.revision" },
      { name: "Ready", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
      { name: "Address", type: "string", jsonPath: ".status.addresses[0].value" },
      { name: "Status", type: "string", jsonPath: ".status.state" },
    ],
    "Namespaced",
  );
}
