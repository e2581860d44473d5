// Istio's `sidecar` injection template, rendered in code. Given the pod (stripped of
// any earlier injection) and the configuration, it returns the partial pod that is
// strategic-merged onto the original: labels, annotations, istio-init, istio-proxy,
// volumes. Field by field it matches what the pinned release's template renders
// after Kubernetes' typed round trip (zero values dropped, quantities canonical).
import type { V1Container, V1EnvVar, V1Pod, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import type { MeshConfig, ProxyConfig, Values } from "./config.ts";
import { canonicalQuantity } from "./quantity.ts";

export interface TemplateInput {
  /** The pod with earlier injections removed and user overrides reinserted. */
  pod: V1Pod;
  values: Values;
  mesh: MeshConfig;
  proxyConfig: ProxyConfig;
  revision: string;
  nativeSidecar: boolean;
  proxyImage: string;
  deployment: { name: string; namespace: string };
  owner: { apiVersion: string; kind: string };
}

export const PROXY = "istio-proxy";
export const INIT = "istio-init";
export const VALIDATION = "istio-validation";

export function renderSidecarTemplate(input: TemplateInput): V1Pod {
  const { pod, values } = input;
  const annotations = pod.metadata?.annotations ?? {};
  const annotation = (name: string, fallback: unknown): string => annotations[name] ?? String(fallback);
  const interceptionMode = annotation("sidecar.istio.io/interceptionMode", input.proxyConfig.interceptionMode ?? "REDIRECT");
  const native = (annotations["sidecar.istio.io/nativeSidecar"] ?? String(input.nativeSidecar)) !== "false";
  const noInitContainer = interceptionMode === "NONE" && !native;
  const cni = values.pilot.cni.enabled;

  const initContainers: V1Container[] = [];
  if (!noInitContainer && interceptionMode !== "NONE") initContainers.push(initContainer(input, annotation, interceptionMode));
  const proxy = proxyContainer(input, annotation, interceptionMode, native);
  // Native: istio-proxy is an init container and the template names no `containers`, so the
  // merge leaves the pod's own list alone. NONE without native: an empty init container list.
  const spec = {
    initContainers: noInitContainer ? [] : native ? [...initContainers, proxy] : initContainers,
    ...(native ? {} : { containers: [proxy] }),
    volumes: volumes(input),
    ...(values.global.imagePullSecrets.length > 0
      ? { imagePullSecrets: values.global.imagePullSecrets.map((name) => ({ name })) }
      : {}),
  } as NonNullable<V1Pod["spec"]>;

  return {
    metadata: { labels: templateLabels(input), annotations: templateAnnotations(input, annotation, interceptionMode, cni) },
    spec,
  };
}

function templateLabels({ pod, proxyConfig, deployment }: TemplateInput): Record<string, string> {
  const labels = pod.metadata?.labels ?? {};
  const out: Record<string, string> = { "security.istio.io/tlsMode": labels["security.istio.io/tlsMode"] || "istio" };
  if (proxyConfig.proxyMetadata?.ISTIO_META_ENABLE_HBONE === "true") {
    out["networking.istio.io/tunnel"] = labels["networking.istio.io/tunnel"] || "http";
  }
  const name = labels["service.istio.io/canonical-name"] || labels["app.kubernetes.io/name"] || labels.app || deployment.name;
  out["service.istio.io/canonical-name"] = trimOneSuffix(name.slice(0, 63), "-");
  out["service.istio.io/canonical-revision"] =
    labels["service.istio.io/canonical-revision"] || labels["app.kubernetes.io/version"] || labels.version || "latest";
  return out;
}

function templateAnnotations(
  input: TemplateInput,
  annotation: (name: string, fallback: unknown) => string,
  interceptionMode: string,
  cni: boolean,
): Record<string, string> {
  const { pod, values } = input;
  const existing = pod.metadata?.annotations ?? {};
  const out: Record<string, string> = { "istio.io/rev": input.revision || "default" };
  const first = appContainerNames(pod)[0];
  if (first !== undefined) {
    if (!("kubectl.kubernetes.io/default-logs-container" in existing))
      out["kubectl.kubernetes.io/default-logs-container"] = first;
    if (!("kubectl.kubernetes.io/default-container" in existing)) out["kubectl.kubernetes.io/default-container"] = first;
  }
  if (cni) {
    const proxy = values.global.proxy;
    out["sidecar.istio.io/interceptionMode"] = interceptionMode;
    const include = annotation("traffic.sidecar.istio.io/includeOutboundIPRanges", proxy.includeIPRanges);
    if (include) out["traffic.sidecar.istio.io/includeOutboundIPRanges"] = include;
    const exclude = annotation("traffic.sidecar.istio.io/excludeOutboundIPRanges", proxy.excludeIPRanges);
    if (exclude) out["traffic.sidecar.istio.io/excludeOutboundIPRanges"] = exclude;
    out["traffic.sidecar.istio.io/includeInboundPorts"] = annotation(
      "traffic.sidecar.istio.io/includeInboundPorts",
      proxy.includeInboundPorts,
    );
    out["traffic.sidecar.istio.io/excludeInboundPorts"] = excludedInboundPorts(input, annotation);
    if ("traffic.sidecar.istio.io/includeOutboundPorts" in existing || proxy.includeOutboundPorts !== "") {
      out["traffic.sidecar.istio.io/includeOutboundPorts"] = annotation(
        "traffic.sidecar.istio.io/includeOutboundPorts",
        proxy.includeOutboundPorts,
      );
    }
    if ("traffic.sidecar.istio.io/excludeOutboundPorts" in existing || proxy.excludeOutboundPorts !== "") {
      out["traffic.sidecar.istio.io/excludeOutboundPorts"] = annotation(
        "traffic.sidecar.istio.io/excludeOutboundPorts",
        proxy.excludeOutboundPorts,
      );
    }
    for (const name of [
      "traffic.sidecar.istio.io/kubevirtInterfaces",
      "istio.io/reroute-virtual-interfaces",
      "traffic.sidecar.istio.io/excludeInterfaces",
    ]) {
      if (existing[name]) out[name] = existing[name];
    }
  }
  return out;
}

function initContainer(input: TemplateInput, annotation: (name: string, fallback: unknown) => string, mode: string): V1Container {
  const { values, mesh, proxyConfig, pod } = input;
  const proxy = values.global.proxy;
  const existing = pod.metadata?.annotations ?? {};
  const cni = values.pilot.cni.enabled;
  const imageOverride = annotation("sidecar.istio.io/proxyImage", values.global.proxy_init.image);
  const excluded = excludedInboundPorts(input, annotation);
  const args = [
    "istio-iptables",
    "-p",
    String(mesh.proxyListenPort || 15001),
    "-z",
    String(mesh.proxyInboundListenPort || 15006),
    "-u",
    "1337",
    "-m",
    mode,
    "-i",
    annotation("traffic.sidecar.istio.io/includeOutboundIPRanges", proxy.includeIPRanges),
    "-x",
    annotation("traffic.sidecar.istio.io/excludeOutboundIPRanges", proxy.excludeIPRanges),
    "-b",
    annotation("traffic.sidecar.istio.io/includeInboundPorts", proxy.includeInboundPorts),
    "-d",
    excluded ? `15090,15021,${excluded}` : "15090,15021",
  ];
  if ("traffic.sidecar.istio.io/includeOutboundPorts" in existing || proxy.includeOutboundPorts !== "") {
    args.push("-q", annotation("traffic.sidecar.istio.io/includeOutboundPorts", proxy.includeOutboundPorts));
  }
  if ("traffic.sidecar.istio.io/excludeOutboundPorts" in existing || proxy.excludeOutboundPorts !== "") {
    args.push("-o", annotation("traffic.sidecar.istio.io/excludeOutboundPorts", proxy.excludeOutboundPorts));
  }
  const reroute = existing["istio.io/reroute-virtual-interfaces"] ?? existing["traffic.sidecar.istio.io/kubevirtInterfaces"];
  if (reroute !== undefined) args.push("-k", reroute);
  if ("traffic.sidecar.istio.io/excludeInterfaces" in existing)
    args.push("-c", existing["traffic.sidecar.istio.io/excludeInterfaces"] ?? "");
  args.push(`--log_output_level=${annotation("sidecar.istio.io/agentLogLevel", values.global.logging.level)}`);
  if (values.global.logAsJson) args.push("--log_as_json");
  if (cni) args.push("--run-validation", "--skip-rule-apply");
  else if (values.global.proxy_init.forceApplyIptables) args.push("--force-apply");
  if (values.global.nativeNftables) args.push("--native-nftables");

  const container: V1Container = {
    name: cni ? VALIDATION : INIT,
    image: imageOverride.includes("/") ? imageOverride : input.proxyImage,
    args,
  };
  if (values.global.imagePullPolicy) container.imagePullPolicy = values.global.imagePullPolicy;
  const metadataEnv = proxyMetadataEnv(proxyConfig);
  if (metadataEnv.length > 0) container.env = metadataEnv;
  container.resources = resources(input);
  container.securityContext = cni
    ? {
        allowPrivilegeEscalation: proxy.privileged,
        privileged: proxy.privileged,
        capabilities: { drop: ["ALL"] },
        readOnlyRootFilesystem: true,
        runAsGroup: 1337,
        runAsUser: 1337,
        runAsNonRoot: true,
      }
    : {
        allowPrivilegeEscalation: proxy.privileged,
        privileged: proxy.privileged,
        capabilities: { add: ["NET_ADMIN", "NET_RAW"], drop: ["ALL"] },
        readOnlyRootFilesystem: false,
        runAsGroup: 0,
        runAsNonRoot: false,
        runAsUser: 0,
      };
  return container;
}

function proxyContainer(
  input: TemplateInput,
  annotation: (name: string, fallback: unknown) => string,
  mode: string,
  native: boolean,
): V1Container {
  const { values, proxyConfig, pod } = input;
  const proxy = values.global.proxy;
  const existing = pod.metadata?.annotations ?? {};
  const tproxy = mode === "TPROXY";
  const capNetBindService = annotation("sidecar.istio.io/capNetBindService", proxy.capNetBindService) === "true";
  const statusPort = annotation("status.sidecar.istio.io/port", proxy.statusPort);

  const container = proxyContainerBase(input, annotation, "sidecar");
  if (native) container.restartPolicy = "Always";
  if (proxy.outlierLogPath) container.args?.push(`--outlierLogPath=${proxy.outlierLogPath}`);

  const hold = (proxyConfig.holdApplicationUntilProxyStarts === true || proxy.holdApplicationUntilProxyStarts) && !native;
  if (proxy.lifecycle && Object.keys(proxy.lifecycle).length > 0) {
    container.lifecycle = structuredClone(proxy.lifecycle) as V1Container["lifecycle"];
  } else if (hold) {
    container.lifecycle = { postStart: { exec: { command: ["pilot-agent", "wait"] } } };
  } else if (native) {
    container.lifecycle = {
      preStop: { exec: { command: ["pilot-agent", "request", `--debug-port=${statusPort}`, "POST", "drain"] } },
    };
  }

  container.env = proxyEnv(input, mode);
  if (values.global.imagePullPolicy) container.imagePullPolicy = values.global.imagePullPolicy;
  if (statusPort !== "0") {
    if (proxy.startupProbe.enabled) {
      container.startupProbe = {
        httpGet: { path: "/healthz/ready", port: 15021 },
        periodSeconds: 1,
        timeoutSeconds: 3,
        failureThreshold: proxy.startupProbe.failureThreshold,
      };
    }
    container.readinessProbe = omitZero({
      httpGet: { path: "/healthz/ready", port: 15021 },
      initialDelaySeconds: Number(
        annotation("readiness.status.sidecar.istio.io/initialDelaySeconds", proxy.readinessInitialDelaySeconds),
      ),
      periodSeconds: Number(annotation("readiness.status.sidecar.istio.io/periodSeconds", proxy.readinessPeriodSeconds)),
      timeoutSeconds: 3,
      failureThreshold: Number(annotation("readiness.status.sidecar.istio.io/failureThreshold", proxy.readinessFailureThreshold)),
    });
  }
  if (proxyConfig.proxyMetadata?.IPTABLES_TRACE_LOGGING === "true") {
    container.securityContext = {
      allowPrivilegeEscalation: true,
      capabilities: { add: ["NET_ADMIN"], drop: ["ALL"] },
      privileged: true,
      readOnlyRootFilesystem: true,
      runAsGroup: 1337,
      runAsNonRoot: false,
      runAsUser: 0,
    };
  } else {
    const add = [...(tproxy ? ["NET_ADMIN"] : []), ...(capNetBindService ? ["NET_BIND_SERVICE"] : [])];
    container.securityContext = {
      allowPrivilegeEscalation: proxy.privileged,
      capabilities: add.length > 0 ? { add, drop: ["ALL"] } : { drop: ["ALL"] },
      privileged: proxy.privileged,
      readOnlyRootFilesystem: true,
      ...(tproxy || capNetBindService
        ? { runAsNonRoot: false, runAsUser: 0, runAsGroup: 1337 }
        : { runAsNonRoot: true, runAsUser: 1337, runAsGroup: 1337 }),
    };
  }
  container.resources = resources(input);
  container.volumeMounts = proxyVolumeMounts(input, existing);
  return container;
}

/** istio-proxy's name, image, metrics port and agent arguments, as both templates start it. */
export function proxyContainerBase(
  input: TemplateInput,
  annotation: (name: string, fallback: unknown) => string,
  mode: "sidecar" | "router",
): V1Container {
  const { values } = input;
  const proxy = values.global.proxy;
  const imageOverride = annotation("sidecar.istio.io/proxyImage", proxy.image);
  const args = [
    "proxy",
    mode,
    "--domain",
    `$(POD_NAMESPACE).svc.${proxy.clusterDomain}`,
    `--proxyLogLevel=${annotation("sidecar.istio.io/logLevel", proxy.logLevel)}`,
    `--proxyComponentLogLevel=${annotation("sidecar.istio.io/componentLogLevel", proxy.componentLogLevel)}`,
    `--log_output_level=${annotation("sidecar.istio.io/agentLogLevel", values.global.logging.level)}`,
  ];
  if (values.global.sts.servicePort) args.push(`--stsPort=${values.global.sts.servicePort}`);
  if (values.global.logAsJson) args.push("--log_as_json");
  return {
    name: PROXY,
    image: imageOverride.includes("/") ? imageOverride : input.proxyImage,
    ports: [{ containerPort: 15090, protocol: "TCP", name: "http-envoy-prom" }],
    args,
  };
}

/**
 * istio-proxy's environment. The gateway template differs from the sidecar's in three
 * small ways: no probe-rewrite flag, ISTIO_META_APP_CONTAINERS after GOMAXPROCS, and the
 * workload name from the owner only.
 */
export function proxyEnv(input: TemplateInput, mode: string, template: "sidecar" | "gateway" = "sidecar"): V1EnvVar[] {
  const { values, mesh, proxyConfig, pod, deployment } = input;
  const gateway = template === "gateway";
  const g = values.global;
  const field = (fieldPath: string) => ({ fieldRef: { fieldPath } });
  const resource = (name: string) => ({ resourceFieldRef: { divisor: "0", resource: name } as { resource: string } });
  const env: V1EnvVar[] = [];
  if (!gateway && mesh.inboundTrafficPolicy?.mode === "LOCALHOST")
    env.push({ name: "REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION", value: "true" });
  env.push(
    ...agentPodEnv(input),
    { name: "ISTIO_CPU_LIMIT", valueFrom: resource("limits.cpu") },
    { name: "PROXY_CONFIG", value: `${proxyConfigJson(proxyConfig)}\n` },
    { name: "ISTIO_META_POD_PORTS", value: podPortsJson(pod) },
  );
  // An empty value is dropped, as Go's omitempty drops it.
  const names = appContainerNames(pod).join(",");
  const appContainers = names ? { name: "ISTIO_META_APP_CONTAINERS", value: names } : { name: "ISTIO_META_APP_CONTAINERS" };
  if (!gateway) env.push(appContainers);
  env.push(
    { name: "GOMEMLIMIT", valueFrom: resource("limits.memory") },
    { name: "GOMAXPROCS", valueFrom: resource("limits.cpu") },
  );
  if (gateway) env.push(appContainers);
  env.push(
    { name: "ISTIO_META_CLUSTER_ID", value: g.multiCluster.clusterName || "Kubernetes" },
    { name: "ISTIO_META_NODE_NAME", valueFrom: field("spec.nodeName") },
    { name: "ISTIO_META_INTERCEPTION_MODE", value: mode },
  );
  if (g.network) env.push({ name: "ISTIO_META_NETWORK", value: g.network });
  const workload = (gateway ? "" : pod.metadata?.labels?.["service.istio.io/workload-name"]) || deployment.name;
  if (workload) env.push({ name: "ISTIO_META_WORKLOAD_NAME", value: workload });
  env.push(...ownerEnv(input));
  if (pod.metadata?.annotations?.["sidecar.istio.io/bootstrapOverride"] !== undefined) {
    env.push({ name: "ISTIO_BOOTSTRAP_OVERRIDE", value: "/etc/istio/custom-bootstrap/custom_bootstrap.json" });
  }
  env.push(...meshEnv(input), ...proxyMetadataEnv(proxyConfig));
  return env;
}

/** Where the agent reaches the CA and who the pod is: the first variables of every agent template. */
export function agentPodEnv({ values }: TemplateInput): V1EnvVar[] {
  const g = values.global;
  const field = (fieldPath: string) => ({ fieldRef: { fieldPath } });
  return [
    { name: "PILOT_CERT_PROVIDER", value: g.pilotCertProvider },
    {
      name: "CA_ADDR",
      value: g.caAddress || `istiod${values.revision ? `-${values.revision}` : ""}.${g.istioNamespace}.svc:15012`,
    },
    { name: "POD_NAME", valueFrom: field("metadata.name") },
    { name: "POD_NAMESPACE", valueFrom: field("metadata.namespace") },
    { name: "INSTANCE_IP", valueFrom: field("status.podIP") },
    { name: "SERVICE_ACCOUNT", valueFrom: field("spec.serviceAccountName") },
    { name: "HOST_IP", valueFrom: field("status.hostIP") },
  ];
}

/** ISTIO_META_OWNER: the workload the pod belongs to, when known. */
export function ownerEnv({ deployment, owner }: TemplateInput): V1EnvVar[] {
  if (!owner.apiVersion || !deployment.name) return [];
  return [
    {
      name: "ISTIO_META_OWNER",
      value: `kubernetes://apis/${owner.apiVersion}/namespaces/${deployment.namespace || "default"}/${owner.kind.toLowerCase()}s/${deployment.name}`,
    },
  ];
}

/** The mesh ID (or else the trust domain) and the trust domain. */
export function meshEnv({ values, mesh }: TemplateInput): V1EnvVar[] {
  const g = values.global;
  const env: V1EnvVar[] = [];
  const trustDomain = mesh.trustDomain || g.trustDomain;
  if (g.meshID) env.push({ name: "ISTIO_META_MESH_ID", value: g.meshID });
  else if (trustDomain) env.push({ name: "ISTIO_META_MESH_ID", value: trustDomain });
  if (trustDomain) env.push({ name: "TRUST_DOMAIN", value: trustDomain });
  return env;
}

/**
 * The gateway and gRPC templates' labels and annotations: canonical names (not trimmed, unlike
 * the sidecar's), the revision, and the app's first container as the default for kubectl.
 */
export function workloadMetadata(input: TemplateInput): { labels: Record<string, string>; annotations: Record<string, string> } {
  const { pod } = input;
  const annotations = pod.metadata?.annotations ?? {};
  const labels = pod.metadata?.labels ?? {};
  const out: Record<string, string> = { "istio.io/rev": input.revision || "default" };
  const first = appContainerNames(pod)[0];
  if (first !== undefined) {
    if (!("kubectl.kubernetes.io/default-logs-container" in annotations))
      out["kubectl.kubernetes.io/default-logs-container"] = first;
    if (!("kubectl.kubernetes.io/default-container" in annotations)) out["kubectl.kubernetes.io/default-container"] = first;
  }
  return {
    labels: {
      "service.istio.io/canonical-name":
        labels["service.istio.io/canonical-name"] || labels["app.kubernetes.io/name"] || labels.app || input.deployment.name,
      "service.istio.io/canonical-revision":
        labels["service.istio.io/canonical-revision"] || labels["app.kubernetes.io/version"] || labels.version || "latest",
    },
    annotations: out,
  };
}

/** istio-proxy's mounts; the gateway template has no CRL mount and no user mounts. */
export function proxyVolumeMounts(
  input: TemplateInput,
  annotations: Record<string, string>,
  template: "sidecar" | "gateway" = "sidecar",
): V1VolumeMount[] {
  const g = input.values.global;
  const gateway = template === "gateway";
  const mounts: V1VolumeMount[] = [
    { name: "workload-socket", mountPath: "/var/run/secrets/workload-spiffe-uds" },
    { name: "credential-socket", mountPath: "/var/run/secrets/credential-uds" },
    g.caName === "GkeWorkloadCertificate"
      ? { name: "gke-workload-certificate", mountPath: "/var/run/secrets/workload-spiffe-credentials", readOnly: true }
      : { name: "workload-certs", mountPath: "/var/run/secrets/workload-spiffe-credentials" },
  ];
  if (g.pilotCertProvider === "istiod") {
    mounts.push({ mountPath: "/var/run/secrets/istio", name: "istiod-ca-cert" });
    if (!gateway) mounts.push({ mountPath: "/var/run/secrets/istio/crl", name: "istio-ca-crl" });
  }
  mounts.push({ mountPath: "/var/lib/istio/data", name: "istio-data" });
  if (annotations["sidecar.istio.io/bootstrapOverride"] !== undefined) {
    mounts.push({ mountPath: "/etc/istio/custom-bootstrap", name: "custom-bootstrap-volume" });
  }
  mounts.push(
    { mountPath: "/etc/istio/proxy", name: "istio-envoy" },
    { mountPath: "/var/run/secrets/tokens", name: "istio-token" },
  );
  if (g.mountMtlsCerts) mounts.push({ mountPath: "/etc/certs/", name: "istio-certs", readOnly: true });
  mounts.push({ name: "istio-podinfo", mountPath: "/etc/istio/pod" });
  const user = annotations["sidecar.istio.io/userVolumeMount"];
  if (user !== undefined && !gateway) {
    const parsed = JSON.parse(user) as Record<string, object>;
    for (const name of Object.keys(parsed).sort()) mounts.push({ name, ...(parsed[name] as Omit<V1VolumeMount, "name">) });
  }
  return mounts;
}

/** The pod's volumes; the gateway template has no CRL volume and no user volumes. */
export function volumes(input: TemplateInput, template: "sidecar" | "gateway" = "sidecar"): V1Volume[] {
  const g = input.values.global;
  const gateway = template === "gateway";
  const annotations = input.pod.metadata?.annotations ?? {};
  // The gateway template spells two of the emptyDirs out; the sidecar's leave them null.
  const emptyDir = gateway ? { emptyDir: {} } : {};
  const out: V1Volume[] = [{ name: "workload-socket" }, { name: "credential-socket", ...emptyDir }];
  out.push(
    g.caName === "GkeWorkloadCertificate"
      ? { name: "gke-workload-certificate", csi: { driver: "workloadcertificates.security.cloud.google.com" } }
      : { name: "workload-certs", ...emptyDir },
  );
  if (annotations["sidecar.istio.io/bootstrapOverride"] !== undefined) {
    out.push({ name: "custom-bootstrap-volume", configMap: { name: annotations["sidecar.istio.io/bootstrapOverride"] } });
  }
  out.push({ emptyDir: { medium: "Memory" }, name: "istio-envoy" }, { name: "istio-data", emptyDir: {} }, podInfoVolume(), {
    name: "istio-token",
    projected: {
      sources: [{ serviceAccountToken: { path: "istio-token", expirationSeconds: 43200, audience: g.sds.token.aud } }],
    },
  });
  if (g.pilotCertProvider === "istiod") {
    out.push({ name: "istiod-ca-cert", configMap: { name: g.trustBundleName || "istio-ca-root-cert" } });
  }
  if (!gateway) out.push({ name: "istio-ca-crl", configMap: { name: "istio-ca-crl", optional: true } });
  if (g.mountMtlsCerts) {
    const account = input.pod.spec?.serviceAccountName;
    out.push({ name: "istio-certs", secret: { optional: true, secretName: account ? `istio.${account}` : "istio.default" } });
  }
  const user = annotations["sidecar.istio.io/userVolume"];
  if (user !== undefined && !gateway) {
    const parsed = JSON.parse(user) as Record<string, object>;
    for (const name of Object.keys(parsed).sort()) out.push({ name, ...(parsed[name] as Omit<V1Volume, "name">) });
  }
  return out;
}

/** The pod's labels and annotations as files, for the agent (every proxy template mounts it). */
export function podInfoVolume(): V1Volume {
  return {
    name: "istio-podinfo",
    downwardAPI: {
      items: [
        { path: "labels", fieldRef: { fieldPath: "metadata.labels" } },
        { path: "annotations", fieldRef: { fieldPath: "metadata.annotations" } },
      ],
    },
  };
}

/** Resources for both injected containers: the four annotations if any is set, else the values' defaults. */
export function resources({ pod, values }: TemplateInput): V1Container["resources"] {
  const a = pod.metadata?.annotations ?? {};
  const names = [
    "sidecar.istio.io/proxyCPU",
    "sidecar.istio.io/proxyMemory",
    "sidecar.istio.io/proxyCPULimit",
    "sidecar.istio.io/proxyMemoryLimit",
  ];
  const out: { requests?: Record<string, string>; limits?: Record<string, string> } = {};
  if (names.some((n) => n in a)) {
    const pick = (cpu: string, memory: string) => {
      const r: Record<string, string> = {};
      if (cpu in a) r.cpu = canonicalQuantity(a[cpu] ?? "");
      if (memory in a) r.memory = canonicalQuantity(a[memory] ?? "");
      return r;
    };
    const requests = pick("sidecar.istio.io/proxyCPU", "sidecar.istio.io/proxyMemory");
    const limits = pick("sidecar.istio.io/proxyCPULimit", "sidecar.istio.io/proxyMemoryLimit");
    if (Object.keys(limits).length > 0) out.limits = limits;
    if (Object.keys(requests).length > 0) out.requests = requests;
    return out;
  }
  const defaults = values.global.proxy.resources;
  const canonical = (m?: Record<string, string>) =>
    m && Object.keys(m).length > 0
      ? Object.fromEntries(Object.entries(m).map(([k, v]) => [k, canonicalQuantity(String(v))]))
      : undefined;
  const limits = canonical(defaults?.limits);
  const requests = canonical(defaults?.requests);
  if (limits) out.limits = limits;
  if (requests) out.requests = requests;
  return out;
}

function excludedInboundPorts(input: TemplateInput, annotation: (name: string, fallback: unknown) => string): string {
  const proxy = input.values.global.proxy;
  const statusPort = annotation("status.sidecar.istio.io/port", proxy.statusPort).trim();
  const excluded = annotation("traffic.sidecar.istio.io/excludeInboundPorts", proxy.excludeInboundPorts);
  if (statusPort === "" || statusPort === "0") return excluded;
  const ports = excluded.split(",");
  if (ports.includes(statusPort)) return excluded;
  return [...ports.map((p) => p.trim()).filter((p) => p !== ""), statusPort].join(",");
}

export function proxyMetadataEnv(proxyConfig: ProxyConfig): V1EnvVar[] {
  const metadata = proxyConfig.proxyMetadata ?? {};
  return Object.keys(metadata)
    .sort()
    .map((name) => ({ name, value: metadata[name] ?? "" }));
}

/** Containers other than istio-proxy, in order. */
export function appContainerNames(pod: V1Pod): string[] {
  return (pod.spec?.containers ?? []).map((c) => c.name).filter((name) => name !== PROXY);
}

/** The JSON text upstream writes for ISTIO_META_POD_PORTS: one port per line, Go field order. */
export function podPortsJson(pod: V1Pod): string {
  const lines: string[] = [];
  for (const container of pod.spec?.containers ?? []) {
    for (const p of container.ports ?? []) {
      const port: Record<string, unknown> = {};
      if (p.name) port.name = p.name;
      if (p.hostPort) port.hostPort = p.hostPort;
      port.containerPort = p.containerPort;
      if (p.protocol) port.protocol = p.protocol;
      if (p.hostIP) port.hostIP = p.hostIP;
      lines.push(`    ${lines.length > 0 ? "," : ""}${JSON.stringify(port)}`);
    }
  }
  return ["[", ...lines, "]"].join("\n");
}

// ProxyConfig fields compared with Istio's defaults before PROXY_CONFIG is written,
// and the order protobuf JSON prints the fields in (their field numbers).
const PROXY_CONFIG_DEFAULTS: Record<string, unknown> = {
  configPath: "./etc/istio/proxy",
  binaryPath: "/usr/local/bin/envoy",
  serviceCluster: "istio-proxy",
  drainDuration: "45s",
  terminationDrainDuration: "5s",
  discoveryAddress: "istiod.istio-system.svc:15012",
  proxyAdminPort: 15000,
  controlPlaneAuthPolicy: "MUTUAL_TLS",
  statNameLength: 189,
  statusPort: 15020,
  tracing: { zipkin: { address: "zipkin.istio-system:9411" } },
};
const PROXY_CONFIG_FIELD_ORDER = [
  "configPath",
  "binaryPath",
  "serviceCluster",
  "drainDuration",
  "parentShutdownDuration",
  "discoveryAddress",
  "discoveryRefreshDelay",
  "zipkinAddress",
  "statsdUdpAddress",
  "envoyMetricsServiceAddress",
  "proxyAdminPort",
  "availabilityZone",
  "controlPlaneAuthPolicy",
  "customConfigFile",
  "statNameLength",
  "concurrency",
  "proxyBootstrapTemplatePath",
  "interceptionMode",
  "tracing",
  "sds",
  "envoyAccessLogService",
  "envoyMetricsService",
  "proxyMetadata",
  "statusPort",
  "extraStatTags",
  "gatewayTopology",
  "terminationDrainDuration",
  "meshId",
  "readinessProbe",
  "proxyStatsMatcher",
  "holdApplicationUntilProxyStarts",
  "caCertificatesPem",
  "image",
  "privateKeyProvider",
  "proxyHeaders",
  "fileFlushInterval",
  "fileFlushMinSizeKb",
  "tracingServiceName",
];

/** PROXY_CONFIG: the proxy config with default-valued fields removed, as compact protobuf JSON. */
export function proxyConfigJson(proxyConfig: ProxyConfig): string {
  const kept: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(proxyConfig)) {
    if (value === undefined || value === null) continue;
    if (key in PROXY_CONFIG_DEFAULTS && JSON.stringify(value) === JSON.stringify(PROXY_CONFIG_DEFAULTS[key])) continue;
    if (key === "interceptionMode" && value === "REDIRECT") continue; // the proto's zero value
    if (key === "proxyMetadata" && Object.keys(value as object).length === 0) continue;
    kept[key] = key === "proxyMetadata" ? sortedKeys(value as Record<string, unknown>) : value;
  }
  const rank = (k: string) => {
    const i = PROXY_CONFIG_FIELD_ORDER.indexOf(k);
    return i === -1 ? PROXY_CONFIG_FIELD_ORDER.length : i;
  };
  const ordered = Object.fromEntries(Object.entries(kept).sort(([a], [b]) => rank(a) - rank(b)));
  return JSON.stringify(ordered);
}

/** Protobuf JSON prints map entries sorted by key. */
function sortedKeys(map: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.keys(map)
      .sort()
      .map((k) => [k, map[k]]),
  );
}

function trimOneSuffix(text: string, suffix: string): string {
  return text.endsWith(suffix) ? text.slice(0, -suffix.length) : text;
}

/** Drops numeric fields equal to 0, as Go's omitempty does for the probe's int32 fields. */
export function omitZero<T extends object>(probe: T): T {
  return Object.fromEntries(Object.entries(probe).filter(([, v]) => v !== 0)) as T;
}
