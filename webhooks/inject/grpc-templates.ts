// Istio's two proxyless gRPC injection templates, rendered in code. A pod asks for one with
// `inject.istio.io/templates: grpc-agent` (or grpc-simple) instead of the sidecar.
//
// grpc-agent: istio-proxy runs pilot-agent without Envoy (DISABLE_ENVOY). The agent gets the
// workload certificate, writes it and the root to /var/lib/istio/data (OUTPUT_CERTS), writes
// a gRPC xDS bootstrap to /etc/istio/proxy/grpc-bootstrap.json and proxies xDS for the app
// over a Unix socket beside it, asking istiod for the gRPC generator (ISTIO_META_GENERATOR).
// Every app container gets GRPC_XDS_BOOTSTRAP and those mounts. Nothing intercepts traffic:
// no istio-init, and the gRPC library itself does routing, balancing and mTLS.
//
// grpc-simple: no agent; a busybox init container writes a bootstrap naming istiod's plaintext
// xDS port (15010) directly. Rigger's istiod serves that port only when started with
// --plaintext-xds-port (xDS without TLS crosses the network), so grpc-agent is the one to use.
//
// Field by field both match the pinned release's templates after Kubernetes' typed round trip
// (golden cases grpc-agent.yaml, grpc-simple.yaml).
import type { V1Container, V1EnvVar, V1Pod, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import {
  agentPodEnv,
  appContainerNames,
  meshEnv,
  omitZero,
  ownerEnv,
  PROXY,
  podInfoVolume,
  podPortsJson,
  proxyConfigJson,
  proxyMetadataEnv,
  resources,
  type TemplateInput,
  workloadMetadata,
} from "./sidecar-template.ts";

/** Where the agent writes the gRPC bootstrap, and the mount both containers share. */
export const GRPC_BOOTSTRAP = "/etc/istio/proxy/grpc-bootstrap.json";

export function renderGrpcAgentTemplate(input: TemplateInput): V1Pod {
  const { pod, values } = input;
  const g = values.global;
  const annotations = pod.metadata?.annotations ?? {};
  const annotation = (name: string, fallback: unknown): string => annotations[name] ?? String(fallback);
  // security.istio.io/tlsMode is the user's to set: only a server built with xDS credentials
  // can take mTLS, which the template cannot know.
  const metadata = workloadMetadata(input);
  metadata.annotations["sidecar.istio.io/rewriteAppHTTPProbers"] = "false";

  const certs: V1VolumeMount =
    g.caName === "GkeWorkloadCertificate"
      ? { name: "gke-workload-certificate", mountPath: "/var/run/secrets/workload-spiffe-credentials", readOnly: true }
      : { name: "workload-certs", mountPath: "/var/run/secrets/workload-spiffe-credentials" };
  const apps: V1Container[] = appContainerNames(pod).map((name) => ({
    name,
    env: [
      { name: "GRPC_XDS_EXPERIMENTAL_SECURITY_SUPPORT", value: "true" },
      { name: "GRPC_XDS_BOOTSTRAP", value: GRPC_BOOTSTRAP },
    ],
    volumeMounts: [
      { mountPath: "/var/lib/istio/data", name: "istio-data" },
      { mountPath: "/etc/istio/proxy", name: "istio-xds" },
      { ...certs },
    ],
  }));

  return {
    metadata,
    spec: {
      containers: [agentContainer(input, annotation, certs), ...apps],
      volumes: agentVolumes(input),
      ...(g.imagePullSecrets.length > 0 ? { imagePullSecrets: g.imagePullSecrets.map((name) => ({ name })) } : {}),
    } as NonNullable<V1Pod["spec"]>,
  };
}

function agentContainer(
  input: TemplateInput,
  annotation: (name: string, fallback: unknown) => string,
  certs: V1VolumeMount,
): V1Container {
  const { values } = input;
  const g = values.global;
  const proxy = g.proxy;
  const imageOverride = annotation("sidecar.istio.io/proxyImage", proxy.image);
  const args = [
    "proxy",
    "sidecar",
    "--domain",
    `$(POD_NAMESPACE).svc.${proxy.clusterDomain}`,
    `--proxyLogLevel=${annotation("sidecar.istio.io/logLevel", proxy.logLevel)}`,
    `--proxyComponentLogLevel=${annotation("sidecar.istio.io/componentLogLevel", proxy.componentLogLevel)}`,
    `--log_output_level=${annotation("sidecar.istio.io/agentLogLevel", g.logging.level)}`,
  ];
  if (g.sts.servicePort) args.push(`--stsPort=${g.sts.servicePort}`);
  if (g.logAsJson) args.push("--log_as_json");
  const container: V1Container = {
    name: PROXY,
    image: imageOverride.includes("/") ? imageOverride : input.proxyImage,
    ports: [{ containerPort: 15020, protocol: "TCP", name: "mesh-metrics" }],
    args,
    lifecycle: { postStart: { exec: { command: ["pilot-agent", "wait", "--url=http://localhost:15020/healthz/ready"] } } },
    env: agentEnv(input),
  };
  if (g.imagePullPolicy) container.imagePullPolicy = g.imagePullPolicy;
  // Upstream's template keeps the probe, the resources and the mounts under one condition:
  // a status port of 0 drops all three.
  if (annotation("status.sidecar.istio.io/port", proxy.statusPort) !== "0") {
    container.readinessProbe = omitZero({
      httpGet: { path: "/healthz/ready", port: 15020 },
      initialDelaySeconds: Number(
        annotation("readiness.status.sidecar.istio.io/initialDelaySeconds", proxy.readinessInitialDelaySeconds),
      ),
      periodSeconds: Number(annotation("readiness.status.sidecar.istio.io/periodSeconds", proxy.readinessPeriodSeconds)),
      timeoutSeconds: 3,
      failureThreshold: Number(annotation("readiness.status.sidecar.istio.io/failureThreshold", proxy.readinessFailureThreshold)),
    });
    const r = resources(input);
    if (r && Object.keys(r).length > 0) container.resources = r;
    const mounts: V1VolumeMount[] = [{ name: "workload-socket", mountPath: "/var/run/secrets/workload-spiffe-uds" }, certs];
    if (g.pilotCertProvider === "istiod") mounts.push({ mountPath: "/var/run/secrets/istio", name: "istiod-ca-cert" });
    mounts.push(
      { mountPath: "/var/lib/istio/data", name: "istio-data" },
      { mountPath: "/etc/istio/proxy", name: "istio-xds" },
      { mountPath: "/var/run/secrets/tokens", name: "istio-token" },
    );
    if (g.mountMtlsCerts) mounts.push({ mountPath: "/etc/certs/", name: "istio-certs", readOnly: true });
    mounts.push({ name: "istio-podinfo", mountPath: "/etc/istio/pod" });
    container.volumeMounts = mounts;
  }
  const user = input.pod.metadata?.annotations?.["sidecar.istio.io/userVolumeMount"];
  if (user !== undefined) {
    const parsed = JSON.parse(user) as Record<string, object>;
    container.volumeMounts ??= [];
    for (const name of Object.keys(parsed).sort())
      container.volumeMounts.push({ name, ...(parsed[name] as Omit<V1VolumeMount, "name">) });
  }
  return container;
}

function agentEnv(input: TemplateInput): V1EnvVar[] {
  const { values, mesh, proxyConfig, pod, deployment } = input;
  const g = values.global;
  const env: V1EnvVar[] = [
    { name: "ISTIO_META_GENERATOR", value: "grpc" },
    { name: "OUTPUT_CERTS", value: "/var/lib/istio/data" },
  ];
  if (mesh.inboundTrafficPolicy?.mode === "LOCALHOST")
    env.push({ name: "REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION", value: "true" });
  const names = appContainerNames(pod).join(",");
  env.push(
    ...agentPodEnv(input),
    { name: "PROXY_CONFIG", value: `${proxyConfigJson(proxyConfig)}\n` },
    { name: "ISTIO_META_POD_PORTS", value: podPortsJson(pod) },
    // An empty value is dropped, as Go's omitempty drops it.
    names ? { name: "ISTIO_META_APP_CONTAINERS", value: names } : { name: "ISTIO_META_APP_CONTAINERS" },
    { name: "ISTIO_META_CLUSTER_ID", value: g.multiCluster.clusterName || "Kubernetes" },
    { name: "ISTIO_META_NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
  );
  if (g.network) env.push({ name: "ISTIO_META_NETWORK", value: g.network });
  if (deployment.name) env.push({ name: "ISTIO_META_WORKLOAD_NAME", value: deployment.name });
  env.push(...ownerEnv(input), ...meshEnv(input));
  env.push(
    ...proxyMetadataEnv(proxyConfig),
    // gRPC resolves xds:/// names itself: no DNS capture, and no Envoy.
    { name: "ISTIO_META_DNS_CAPTURE", value: "false" },
    { name: "DISABLE_ENVOY", value: "true" },
  );
  return env;
}

function agentVolumes(input: TemplateInput): V1Volume[] {
  const g = input.values.global;
  const annotations = input.pod.metadata?.annotations ?? {};
  const out: V1Volume[] = [{ name: "workload-socket" }];
  out.push(
    g.caName === "GkeWorkloadCertificate"
      ? { name: "gke-workload-certificate", csi: { driver: "workloadcertificates.security.cloud.google.com" } }
      : { name: "workload-certs" },
  );
  if (annotations["sidecar.istio.io/bootstrapOverride"] !== undefined) {
    out.push({ name: "custom-bootstrap-volume", configMap: { name: annotations["sidecar.istio.io/bootstrapOverride"] } });
  }
  out.push({ emptyDir: { medium: "Memory" }, name: "istio-xds" }, { name: "istio-data", emptyDir: {} }, podInfoVolume(), {
    name: "istio-token",
    projected: {
      sources: [{ serviceAccountToken: { path: "istio-token", expirationSeconds: 43200, audience: g.sds.token.aud } }],
    },
  });
  if (g.pilotCertProvider === "istiod") {
    out.push({ name: "istiod-ca-cert", configMap: { name: g.trustBundleName || "istio-ca-root-cert" } });
  }
  if (g.mountMtlsCerts) {
    const account = input.pod.spec?.serviceAccountName;
    out.push({ name: "istio-certs", secret: { optional: true, secretName: account ? `istio.${account}` : "istio.default" } });
  }
  const user = annotations["sidecar.istio.io/userVolume"];
  if (user !== undefined) {
    const parsed = JSON.parse(user) as Record<string, object>;
    for (const name of Object.keys(parsed).sort()) out.push({ name, ...(parsed[name] as Omit<V1Volume, "name">) });
  }
  return out;
}

/** The bootstrap grpc-simple's init container writes, as upstream's template spells it. */
const SIMPLE_BOOTSTRAP_SCRIPT = `NODE_ID="sidecar~\${INSTANCE_IP}~\${POD_NAME}.\${POD_NAMESPACE}~cluster.local"
SERVER_URI="dns:///istiod.\${ISTIO_NAMESPACE}.svc:15010"
echo '
{
  "xds_servers": [
    {
      "server_uri": "'\${SERVER_URI}'",
      "channel_creds": [{"type": "insecure"}],
      "server_features" : ["xds_v3"]
    }
  ],
  "node": {
    "id": "'\${NODE_ID}'",
    "metadata": {
      "GENERATOR": "grpc"
    }
  }
}' > /var/lib/grpc/data/bootstrap.json`;

export function renderGrpcSimpleTemplate(input: TemplateInput): V1Pod {
  const field = (fieldPath: string) => ({ fieldRef: { fieldPath } });
  const mount = { mountPath: "/var/lib/grpc/data/", name: "grpc-io-proxyless-bootstrap" };
  return {
    metadata: { annotations: { "sidecar.istio.io/rewriteAppHTTPProbers": "false" } },
    spec: {
      initContainers: [
        {
          name: "grpc-bootstrap-init",
          image: "busybox:1.28",
          volumeMounts: [{ ...mount }],
          env: [
            { name: "INSTANCE_IP", valueFrom: field("status.podIP") },
            { name: "POD_NAME", valueFrom: field("metadata.name") },
            { name: "POD_NAMESPACE", valueFrom: field("metadata.namespace") },
            { name: "ISTIO_NAMESPACE", value: `${input.values.global.istioNamespace}\n` },
          ],
          command: ["sh", "-c", SIMPLE_BOOTSTRAP_SCRIPT],
        },
      ],
      containers: (input.pod.spec?.containers ?? []).map((c) => ({
        name: c.name,
        env: [
          { name: "GRPC_XDS_BOOTSTRAP", value: "/var/lib/grpc/data/bootstrap.json" },
          { name: "GRPC_GO_LOG_VERBOSITY_LEVEL", value: "99" },
          { name: "GRPC_GO_LOG_SEVERITY_LEVEL", value: "info" },
        ],
        volumeMounts: [{ ...mount }],
      })),
      volumes: [{ name: "grpc-io-proxyless-bootstrap", emptyDir: {} }],
    },
  };
}
