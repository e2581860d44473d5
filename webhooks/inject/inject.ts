// inject(pod, settings) → the injected pod, or a skip with its reason, or an
// InjectionError. Pure and deterministic: the webhook, `rigger inject` and the
// tests all call this one function.
//
// The steps follow upstream's injector: gate → validate annotations → strip an
// earlier injection → render the sidecar template → strategic-merge it onto the
// pod → re-apply user-defined istio containers → post-process (cluster env,
// Prometheus merge, probe rewrite, status annotation, container order).
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { parse as parseYaml } from "yaml";
import { annotationProblems, MAX_ANNOTATION_VALUE_BYTES, quoted } from "./annotations.ts";
import { deepMerge, type InjectorConfig, isPlainObject, type MeshConfig, type ProxyConfig, type Values } from "./config.ts";
import { injectionRequired } from "./gate.ts";
import { renderGatewayTemplate } from "./gateway-template.ts";
import { renderGrpcAgentTemplate, renderGrpcSimpleTemplate } from "./grpc-templates.ts";
import { strategicMergePod } from "./merge.ts";
import { podShapeProblem, withoutNulls } from "./pod-shape.ts";
import { dumpAppProbers, rewriteAppProbes } from "./probes.ts";
import { INIT, PROXY, renderSidecarTemplate, type TemplateInput, VALIDATION } from "./sidecar-template.ts";

export interface InjectionSettings {
  injector: InjectorConfig;
  values: Values;
  mesh: MeshConfig;
  /** This control plane's revision; "" is the default revision. */
  revision: string;
  /** Native sidecars (istio-proxy as a restartable init container) unless a pod says otherwise. */
  nativeSidecars: boolean;
}

export interface InjectRequest {
  pod: V1Pod;
  /** The namespace from the admission request, used when the pod has none yet. */
  namespace?: string;
  /** Overrides from the webhook path, e.g. /inject/cluster/c1/net/n1. */
  proxyEnvs?: Record<string, string>;
  /**
   * Offline injection (`rigger inject`), as istioctl kube-inject does it: policy "enabled"
   * without selectors, and no injectedAnnotations.
   */
  offline?: boolean;
  /** The workload whose pod template this is (offline); it stands in for the pod's owner. */
  workload?: { name: string; namespace: string; apiVersion: string; kind: string };
}

export type InjectResult = { kind: "injected"; pod: V1Pod } | { kind: "skipped"; reason: string };

export class InjectionError extends Error {}

const STATUS = "sidecar.istio.io/status";
const OVERRIDES = "proxy.istio.io/overrides";
/** The templates Rigger renders, by name. */
const TEMPLATES: Record<string, (input: TemplateInput) => V1Pod> = {
  sidecar: renderSidecarTemplate,
  gateway: renderGatewayTemplate,
  "grpc-agent": renderGrpcAgentTemplate,
  "grpc-simple": renderGrpcSimpleTemplate,
};

export function inject(request: InjectRequest, settings: InjectionSettings): InjectResult {
  const shape = podShapeProblem(request.pod);
  if (shape) throw new InjectionError(shape);
  const pod = withoutNulls(withoutManagedFields(request.pod));
  pod.metadata ??= {};
  if (!pod.metadata.namespace && request.namespace) pod.metadata.namespace = request.namespace;
  pod.spec ??= { containers: [] };
  pod.spec.containers ??= []; // required by the apiserver, but a direct caller may leave it out

  // Offline injection always uses policy "enabled" without selectors, as istioctl kube-inject does.
  const gateConfig = request.offline
    ? { ...settings.injector, policy: "enabled", alwaysInjectSelector: [], neverInjectSelector: [] }
    : settings.injector;
  const decision = injectionRequired(gateConfig, pod.spec, pod.metadata);
  if (!decision.inject) return { kind: "skipped", reason: decision.reason };

  const annotations = pod.metadata.annotations ?? {};
  const problems = annotationProblems(annotations);
  const proxyConfig = proxyConfigFor(settings.mesh, annotations, problems);
  if (problems.length > 0) throw new InjectionError(problems.join("; "));

  const templates = selectedTemplates(annotations, settings.injector);
  const proxyEnvs = clusterEnvs(pod, settings.values, request.proxyEnvs ?? {});
  const stripped = reinsertOverrides(stripEarlierInjection(pod, settings.mesh));
  const { deployment, owner } = request.workload
    ? { deployment: { name: request.workload.name, namespace: request.workload.namespace }, owner: request.workload }
    : ownerOf(pod);
  const native = nativeFor(annotations, settings.nativeSidecars);

  let merged: V1Pod = pod;
  let templatePod: V1Pod = {};
  for (const name of templates) {
    if (!settings.injector.templates.includes(name)) {
      throw new InjectionError(`requested template "${name}" not found; have ${settings.injector.templates.join(", ")}`);
    }
    const render = TEMPLATES[name];
    if (!render) throw new InjectionError(`template "${name}" is not supported by Rigger yet`);
    const rendered = render({
      pod: stripped,
      values: settings.values,
      mesh: settings.mesh,
      proxyConfig,
      revision: settings.revision,
      nativeSidecar: settings.nativeSidecars,
      proxyImage: proxyImage(settings.values, proxyConfig, annotations),
      deployment,
      owner,
    });
    templatePod = strategicMergePod(templatePod, rendered);
    // A user-defined istio-proxy in containers follows the injected one into initContainers.
    if (native && hasContainer(rendered.spec?.initContainers, PROXY) && hasContainer(merged.spec?.containers, PROXY)) {
      merged = structuredClone(merged);
      const spec = merged.spec as NonNullable<V1Pod["spec"]>;
      const user = spec.containers.find((c) => c.name === PROXY) as V1Container;
      spec.containers = spec.containers.filter((c) => c.name !== PROXY);
      spec.initContainers = [...(spec.initContainers ?? []), user];
    }
    merged = strategicMergePod(merged, rendered);
  }

  merged = reapplyUserContainers(merged, pod, templatePod, proxyConfig);
  postProcess(merged, templatePod, settings, proxyEnvs, proxyConfig, request.offline ?? false);
  return { kind: "injected", pod: merged };
}

/** The mesh's default proxy config with the pod's proxy.istio.io/config on top. Problems are appended. */
function proxyConfigFor(mesh: MeshConfig, annotations: Record<string, string>, problems: string[]): ProxyConfig {
  const text = annotations["proxy.istio.io/config"];
  // Too long: annotationProblems() has said so already.
  if (text === undefined || text.length > MAX_ANNOTATION_VALUE_BYTES) return mesh.defaultConfig;
  let overlay: unknown;
  try {
    overlay = parseYaml(text);
  } catch (err) {
    problems.push(`invalid value '${quoted(text)}' for annotation 'proxy.istio.io/config': ${(err as Error).message}`);
    return mesh.defaultConfig;
  }
  if (overlay === null || overlay === undefined) return mesh.defaultConfig;
  if (!isPlainObject(overlay)) {
    problems.push(`invalid value '${quoted(text)}' for annotation 'proxy.istio.io/config': not a ProxyConfig object`);
    return mesh.defaultConfig;
  }
  return deepMerge(mesh.defaultConfig, overlay) as ProxyConfig;
}

function selectedTemplates(annotations: Record<string, string>, injector: InjectorConfig): string[] {
  const requested = annotations["inject.istio.io/templates"];
  const names = requested !== undefined ? requested.split(",").map((n) => n.trim()) : injector.defaultTemplates;
  return names.flatMap((n) => injector.aliases[n] ?? [n]);
}

function nativeFor(annotations: Record<string, string>, defaultNative: boolean): boolean {
  const value = annotations["sidecar.istio.io/nativeSidecar"];
  if (value === "true") return true;
  if (value === "false") return false;
  return defaultNative;
}

/** Cluster and network for the proxy's env: values, then the webhook path, then the pod's network label. */
function clusterEnvs(pod: V1Pod, values: Values, fromPath: Record<string, string>): Record<string, string> {
  const envs = { ...fromPath };
  let cluster = values.global.multiCluster.clusterName;
  let network = values.global.network;
  if (fromPath.ISTIO_META_CLUSTER_ID) cluster = fromPath.ISTIO_META_CLUSTER_ID;
  if (fromPath.ISTIO_META_NETWORK) network = fromPath.ISTIO_META_NETWORK;
  const label = pod.metadata?.labels?.["topology.istio.io/network"];
  if (label !== undefined) network = label;
  if (cluster) envs.ISTIO_META_CLUSTER_ID = cluster;
  if (network) envs.ISTIO_META_NETWORK = network;
  return envs;
}

/** The image URL for the proxy: hub/image:tag, with the image type (distroless, debug) as a tag suffix. */
export function proxyImage(values: Values, proxyConfig: ProxyConfig, annotations: Record<string, string>): string {
  const g = values.global;
  let imageType = proxyConfig.image ? (proxyConfig.image.imageType ?? "") : g.variant;
  if ("sidecar.istio.io/proxyImageType" in annotations) imageType = annotations["sidecar.istio.io/proxyImageType"] ?? "";
  let tag = String(g.tag ?? "");
  if (imageType) {
    for (const known of ["distroless", "debug"]) {
      if (tag.endsWith(`-${known}`)) {
        tag = tag.slice(0, -(known.length + 1));
        break;
      }
    }
    if (imageType !== "default") tag = `${tag}-${imageType}`;
  }
  return `${g.hub}/${g.proxy.image || "proxyv2"}:${tag}`;
}

/** Who owns the pod, as upstream guesses it from a generated name and the controller reference. */
export function ownerOf(pod: V1Pod): {
  deployment: { name: string; namespace: string };
  owner: { apiVersion: string; kind: string };
} {
  const meta = pod.metadata ?? {};
  const deployment = { name: meta.name ?? "", namespace: meta.namespace ?? "" };
  const owner = { apiVersion: "v1", kind: "Pod" };
  const controller = meta.generateName ? meta.ownerReferences?.find((r) => r.controller) : undefined;
  if (controller) {
    owner.apiVersion = controller.apiVersion;
    owner.kind = controller.kind;
    deployment.name = controller.name;
    const hash = meta.labels?.["pod-template-hash"];
    const rolloutHash = meta.labels?.["rollouts-pod-template-hash"];
    if (controller.kind === "ReplicaSet" && hash && controller.name.endsWith(hash)) {
      deployment.name = trimSuffix(controller.name, `-${hash}`);
      owner.kind = "Deployment";
    } else if (controller.kind === "ReplicaSet" && rolloutHash && controller.name.endsWith(rolloutHash)) {
      deployment.name = trimSuffix(controller.name, `-${rolloutHash}`);
      owner.kind = "Rollout";
      owner.apiVersion = "v1alpha1";
    } else if (controller.kind === "ReplicationController" && meta.labels?.deploymentconfig) {
      deployment.name = meta.labels.deploymentconfig;
      owner.kind = "DeploymentConfig";
    } else if (controller.kind === "Job") {
      const cron = /^(.+)-\d{8,10}$/.exec(controller.name);
      if (cron?.[1]) {
        deployment.name = cron[1];
        owner.kind = "CronJob";
        owner.apiVersion = "batch/v1";
      }
    }
  }
  if (!deployment.name) deployment.name = meta.name ?? "";
  return { deployment, owner };
}

interface StatusNames {
  containers: string[];
  initContainers: string[];
}

function parseStatus(text: string | undefined): StatusNames | undefined {
  if (text === undefined) return undefined;
  try {
    const parsed = JSON.parse(text) as { containers?: unknown; initContainers?: unknown } | null;
    const names = (v: unknown) => (Array.isArray(v) ? v.filter((n): n is string => typeof n === "string") : []);
    return { containers: names(parsed?.containers), initContainers: names(parsed?.initContainers) };
  } catch {
    return undefined;
  }
}

/** For re-injection: the pod without the containers an earlier injection added, its status, and its Prometheus rewrite. */
function stripEarlierInjection(pod: V1Pod, mesh: MeshConfig): V1Pod {
  const status = parseStatus(pod.metadata?.annotations?.[STATUS]);
  if (!status) return pod;
  const out = structuredClone(pod);
  const spec = out.spec as NonNullable<V1Pod["spec"]>;
  spec.containers = spec.containers.filter((c) => !status.containers.includes(c.name));
  if (spec.initContainers) spec.initContainers = spec.initContainers.filter((c) => !status.initContainers.includes(c.name));
  const annotations = out.metadata?.annotations ?? {};
  const port = prometheusAnnotation(annotations, "prometheus_io_port");
  if (port !== undefined && annotations[port] === String(mesh.defaultConfig.statusPort ?? 15020))
    clearPrometheusAnnotations(annotations);
  delete annotations[STATUS];
  return out;
}

function readOverrides(pod: V1Pod): { containers: V1Container[]; initContainers: V1Container[] } {
  const text = pod.metadata?.annotations?.[OVERRIDES];
  if (text === undefined) return { containers: [], initContainers: [] };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new InjectionError(`invalid value for annotation '${OVERRIDES}': ${(err as Error).message}`);
  }
  const shape = podShapeProblem({ spec: parsed });
  if (shape || !isPlainObject(parsed)) {
    throw new InjectionError(
      `invalid value for annotation '${OVERRIDES}': ${shape?.replace("pod.spec", "overrides") ?? "not an object"}`,
    );
  }
  const overrides = withoutNulls(parsed) as { containers?: V1Container[]; initContainers?: V1Container[] };
  return { containers: overrides.containers ?? [], initContainers: overrides.initContainers ?? [] };
}

/** Puts user-defined istio containers recorded at the first injection back, so re-injection sees them. */
function reinsertOverrides(pod: V1Pod): V1Pod {
  const overrides = readOverrides(pod);
  if (overrides.containers.length === 0 && overrides.initContainers.length === 0) return pod;
  const out = structuredClone(pod);
  const spec = out.spec as NonNullable<V1Pod["spec"]>;
  for (const c of overrides.containers) if (!hasContainer(spec.containers, c.name)) spec.containers.push(c);
  for (const c of overrides.initContainers) {
    if (!hasContainer(spec.initContainers, c.name)) spec.initContainers = [...(spec.initContainers ?? []), c];
  }
  return out;
}

/**
 * A container the user defined under an injected name (usually istio-proxy) is merged
 * over the injected one, and recorded in proxy.istio.io/overrides for re-injection.
 * `image: auto` keeps the injected image.
 */
function reapplyUserContainers(finalPod: V1Pod, original: V1Pod, templatePod: V1Pod, proxyConfig: ProxyConfig): V1Pod {
  const existing = readOverrides(original);
  const injected = parseStatus(original.metadata?.annotations?.[STATUS]);
  const recorded: { containers: V1Container[]; initContainers: V1Container[] } = { containers: [], initContainers: [] };
  let out = finalPod;
  const userVersion = (name: string, lists: (V1Container[] | undefined)[]) => {
    for (const list of lists) {
      const match = list?.find((c) => c.name === name);
      if (match) return match;
    }
    return undefined;
  };
  // On re-injection the pod's istio containers are the injected ones; only the overrides
  // recorded at the first injection are the user's. (Upstream drops them here, so its
  // re-injection loses the user's settings; Rigger re-applies them and stays idempotent.)
  for (const c of templatePod.spec?.containers ?? []) {
    const match = userVersion(c.name, injected ? [existing.containers] : [existing.containers, original.spec?.containers]);
    if (!match) continue;
    const overlay = userOverlay(match);
    recorded.containers.push(overlay);
    out = strategicMergePod(out, { spec: { containers: [overlay] } });
  }
  for (const c of templatePod.spec?.initContainers ?? []) {
    const match = userVersion(
      c.name,
      injected
        ? [existing.initContainers, existing.containers]
        : [existing.initContainers, original.spec?.containers, original.spec?.initContainers],
    );
    if (!match) continue;
    const overlay = userOverlay(match);
    recorded.initContainers.push(overlay);
    out = strategicMergePod(out, { spec: { initContainers: [overlay] } });
  }
  if (!injected && (recorded.containers.length > 0 || recorded.initContainers.length > 0)) {
    out.metadata ??= {};
    out.metadata.annotations = { ...(out.metadata.annotations ?? {}), [OVERRIDES]: overridesJson(recorded) };
  }
  adjustInitContainerUser(out, original, proxyConfig);
  return out;
}

/** A user's container as merged over the injected one: `image: auto` and empty resources say nothing. */
function userOverlay(container: V1Container): V1Container {
  const overlay = structuredClone(container);
  if (overlay.image === "auto") delete (overlay as { image?: string }).image;
  if (overlay.resources && Object.keys(overlay.resources).length === 0) delete overlay.resources;
  return overlay;
}

function overridesJson(recorded: { containers: V1Container[]; initContainers: V1Container[] }): string {
  const out: Record<string, unknown> = {};
  if (recorded.containers.length > 0) out.containers = recorded.containers.map(goContainerJson);
  if (recorded.initContainers.length > 0) out.initContainers = recorded.initContainers.map(goContainerJson);
  return JSON.stringify(out);
}

/** A container as Go marshals it: `name` first, an empty `resources` always present, limits before requests. */
function goContainerJson(c: V1Container): Record<string, unknown> {
  const { name, ...rest } = c;
  const { limits, requests, ...other } = c.resources ?? {};
  return { name, ...rest, resources: { ...(limits ? { limits } : {}), ...(requests ? { requests } : {}), ...other } };
}

/** A user istio-proxy runAsUser becomes the iptables owner (-u), except in TPROXY mode, where the proxy must stay root. */
function adjustInitContainerUser(finalPod: V1Pod, original: V1Pod, proxyConfig: ProxyConfig): void {
  const user = findContainer(original, PROXY);
  const sc = user?.securityContext;
  if (sc?.runAsUser === undefined && sc?.runAsGroup === undefined) return;
  const init = finalPod.spec?.initContainers?.find((c) => c.name === INIT || c.name === VALIDATION);
  if (!init) return;
  const tproxy =
    proxyConfig.interceptionMode === "TPROXY" ||
    finalPod.metadata?.annotations?.["sidecar.istio.io/interceptionMode"] === "TPROXY";
  if (tproxy && sc.runAsUser !== undefined) {
    const proxy = findContainer(finalPod, PROXY);
    if (proxy?.securityContext) proxy.securityContext.runAsUser = 0;
  }
  if (!tproxy && init.name === VALIDATION) {
    init.securityContext ??= {};
    if (sc.runAsUser !== undefined) init.securityContext.runAsUser = sc.runAsUser;
    if (sc.runAsGroup !== undefined) init.securityContext.runAsGroup = sc.runAsGroup;
  }
  if (!sc.runAsUser) return;
  const args = init.args ?? [];
  const at = args.indexOf("-u");
  if (at >= 0 && at + 1 < args.length) args[at + 1] = String(sc.runAsUser);
}

function postProcess(
  pod: V1Pod,
  templatePod: V1Pod,
  settings: InjectionSettings,
  proxyEnvs: Record<string, string>,
  proxyConfig: ProxyConfig,
  offline: boolean,
): void {
  pod.metadata ??= {};
  pod.metadata.annotations ??= {};
  pod.metadata.labels ??= {};
  const annotations = pod.metadata.annotations;
  const labels = pod.metadata.labels;
  const proxy = findContainer(pod, PROXY);
  const statusPort = Number(settings.mesh.defaultConfig.statusPort ?? 15020);

  if (proxy && Object.keys(proxyEnvs).length > 0) {
    proxy.env = [
      ...(proxy.env ?? []).filter((e) => !(e.name in proxyEnvs)),
      ...Object.keys(proxyEnvs)
        .sort()
        .map((name) => ({ name, value: proxyEnvs[name] ?? "" })),
    ];
  }

  applyPrometheusMerge(pod, settings.mesh, statusPort);

  if (proxy && shouldRewriteProbes(annotations, settings.values.sidecarInjectorWebhook.rewriteAppHTTPProbe)) {
    const probers = dumpAppProbers(pod, statusPort);
    if (probers) mergeProbersEnv(proxy, probers, STATUS in annotations);
    const port = annotations["status.sidecar.istio.io/port"];
    rewriteAppProbes(pod, port !== undefined ? Number.parseInt(port, 10) || 0 : statusPort);
  }

  if (proxyEnvs.ISTIO_META_NETWORK !== undefined) labels["topology.istio.io/network"] = proxyEnvs.ISTIO_META_NETWORK;
  annotations[STATUS] = statusAnnotation(templatePod, settings.revision);
  if (!offline) Object.assign(annotations, settings.injector.injectedAnnotations);
  reorderContainers(pod, settings, proxyConfig);
}

function shouldRewriteProbes(annotations: Record<string, string>, fromValues: boolean): boolean {
  const value = annotations["sidecar.istio.io/rewriteAppHTTPProbers"];
  const parsed = value === undefined ? undefined : parseGoBool(value);
  return parsed ?? fromValues;
}

function mergeProbersEnv(proxy: V1Container, probers: string, previouslyInjected: boolean): void {
  const name = "ISTIO_KUBE_APP_PROBERS";
  proxy.env ??= [];
  const env = proxy.env;
  const existing = previouslyInjected ? env.find((e) => e.name === name) : undefined;
  if (!existing) {
    env.push({ name, value: probers });
    return;
  }
  const merged = { ...JSON.parse(probers), ...jsonObject(existing.value) } as Record<string, unknown>;
  existing.value = JSON.stringify(
    Object.fromEntries(
      Object.keys(merged)
        .sort()
        .map((k) => [k, merged[k]]),
    ),
  );
}

/** sidecar.istio.io/status: the names the template injected, in upstream's exact JSON form. */
export function statusAnnotation(templatePod: V1Pod, revision: string): string {
  const names = (list: { name: string }[] | undefined) => (list && list.length > 0 ? list.map((i) => i.name) : null);
  return JSON.stringify({
    initContainers: names(templatePod.spec?.initContainers),
    containers: names(templatePod.spec?.containers),
    volumes: names(templatePod.spec?.volumes),
    imagePullSecrets: names(templatePod.spec?.imagePullSecrets as { name: string }[] | undefined),
    revision: revision || "default",
  });
}

/** istio-proxy last among containers (first when the app must wait for it); init containers around it as upstream orders them. */
function reorderContainers(pod: V1Pod, settings: InjectionSettings, proxyConfig: ProxyConfig): void {
  const spec = pod.spec as NonNullable<V1Pod["spec"]>;
  const hold =
    proxyConfig.holdApplicationUntilProxyStarts === true || settings.values.global.proxy.holdApplicationUntilProxyStarts;
  spec.containers = move(spec.containers, PROXY, hold ? "first" : "last");
  let init = spec.initContainers ?? [];
  if (hasContainer(init, PROXY)) {
    for (const name of ["enable-core-dump", PROXY, VALIDATION, INIT]) init = move(init, name, "first");
  } else {
    init = move(init, VALIDATION, "first");
    init = move(init, INIT, "last");
    init = move(init, "enable-core-dump", "last");
  }
  if (spec.initContainers !== undefined || init.length > 0) spec.initContainers = init;
}

function move(list: V1Container[], name: string, to: "first" | "last"): V1Container[] {
  const match = list.find((c) => c.name === name);
  if (!match) return list;
  const rest = list.filter((c) => c.name !== name);
  return to === "first" ? [match, ...rest] : [...rest, match];
}

// Prometheus "metrics merge": the agent serves the app's metrics merged with Envoy's on
// the status port, so the pod's scrape annotations are moved into ISTIO_PROMETHEUS_ANNOTATIONS
// and pointed at the agent.
function applyPrometheusMerge(pod: V1Pod, mesh: MeshConfig, statusPort: number): void {
  const annotations = pod.metadata?.annotations ?? {};
  if (!prometheusScrape(annotations) || !prometheusMergeEnabled(mesh, annotations)) return;
  const target = String(statusPort);
  const portKey = prometheusAnnotation(annotations, "prometheus_io_port");
  if (portKey !== undefined && annotations[portKey] === target) return;
  const scrape: Record<string, string> = {};
  for (const [key, field] of [
    ["prometheus_io_scrape", "scrape"],
    ["prometheus_io_path", "path"],
    ["prometheus_io_port", "port"],
  ] as const) {
    const found = prometheusAnnotation(annotations, key);
    if (found !== undefined) scrape[field] = annotations[found] ?? "";
  }
  const proxy = findContainer(pod, PROXY);
  if (proxy && Object.values(scrape).some((v) => v !== "")) {
    // All three fields, empty or not, in this order: the agent reads upstream's exact shape.
    const value = JSON.stringify({ scrape: scrape.scrape ?? "", path: scrape.path ?? "", port: scrape.port ?? "" });
    proxy.env = [...(proxy.env ?? []), { name: "ISTIO_PROMETHEUS_ANNOTATIONS", value }];
  }
  clearPrometheusAnnotations(annotations);
  annotations["prometheus.io/port"] = target;
  annotations["prometheus.io/path"] = "/stats/prometheus";
  annotations["prometheus.io/scrape"] = "true";
}

function prometheusScrape(annotations: Record<string, string>): boolean {
  for (const [key, value] of Object.entries(annotations)) {
    if (sanitizeLabelName(key) !== "prometheus_io_scrape") continue;
    const parsed = parseGoBool(value);
    if (parsed !== undefined) return parsed;
  }
  return true;
}

function prometheusMergeEnabled(mesh: MeshConfig, annotations: Record<string, string>): boolean {
  const value = annotations["prometheus.istio.io/merge-metrics"];
  const parsed = value === undefined ? undefined : parseGoBool(value);
  if (parsed !== undefined) return parsed;
  return mesh.enablePrometheusMerge ?? true;
}

/** The annotation key whose Prometheus-sanitized form is `sanitized` (prometheus.io/port, prometheus_io_port, …). */
function prometheusAnnotation(annotations: Record<string, string>, sanitized: string): string | undefined {
  return Object.keys(annotations).find((k) => sanitizeLabelName(k) === sanitized);
}

function clearPrometheusAnnotations(annotations: Record<string, string>): void {
  for (const key of Object.keys(annotations)) {
    if (["prometheus_io_port", "prometheus_io_path", "prometheus_io_scrape"].includes(sanitizeLabelName(key)))
      delete annotations[key];
  }
}

function sanitizeLabelName(name: string): string {
  return name.replace(/[^a-zA-Z0-9_]/g, "_");
}

function parseGoBool(value: string): boolean | undefined {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(value)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(value)) return false;
  return undefined;
}

function findContainer(pod: V1Pod, name: string): V1Container | undefined {
  return pod.spec?.containers?.find((c) => c.name === name) ?? pod.spec?.initContainers?.find((c) => c.name === name);
}

/**
 * The pod without metadata.managedFields (large, and irrelevant to injection), copying only
 * the top level, so a full clone does not pay for them.
 */
export function withoutManagedFields(pod: V1Pod): V1Pod {
  if (!pod.metadata?.managedFields) return pod;
  const { managedFields: _managed, ...metadata } = pod.metadata;
  return { ...pod, metadata };
}

function hasContainer(list: V1Container[] | undefined, name: string): boolean {
  return (list ?? []).some((c) => c.name === name);
}

function trimSuffix(text: string, suffix: string): string {
  return text.endsWith(suffix) ? text.slice(0, -suffix.length) : text;
}

/** The JSON object in `text`, or {} when it is not one (a hand-edited earlier injection). */
function jsonObject(text: string | undefined): Record<string, unknown> {
  try {
    const parsed = JSON.parse(text ?? "{}");
    return isPlainObject(parsed) ? parsed : {};
  } catch {
    return {};
  }
}
