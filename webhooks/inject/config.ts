// The inputs injection reads, in the shapes upstream Istio stores them:
// - InjectorConfig: the `config` key of ConfigMap istio-sidecar-injector (policy,
//   selectors, templates' names, aliases, injectedAnnotations);
// - Values: the `values` key of that ConfigMap (the Helm values the template reads);
// - MeshConfig: the `mesh` key of ConfigMap istio.
// Rigger renders the `sidecar` template in code (sidecar-template.ts), so template
// bodies are not kept, only their names.
import { parse as parseYaml } from "yaml";
import { versions } from "../../versions.ts";

const ISTIO_VERSION = versions.istio;

export interface LabelSelectorRequirement {
  key: string;
  operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface InjectorConfig {
  policy: string;
  alwaysInjectSelector: LabelSelector[];
  neverInjectSelector: LabelSelector[];
  injectedAnnotations: Record<string, string>;
  defaultTemplates: string[];
  aliases: Record<string, string[]>;
  templates: string[];
}

/** The Helm values the sidecar template reads. Unknown keys are kept but unused. */
export interface Values {
  revision: string;
  global: {
    hub: string;
    tag: string | number;
    variant: string;
    imagePullPolicy: string;
    imagePullSecrets: string[];
    istioNamespace: string;
    logAsJson: boolean;
    logging: { level: string };
    caAddress: string;
    caName: string;
    pilotCertProvider: string;
    trustDomain: string;
    meshID: string;
    network: string;
    multiCluster: { clusterName: string };
    mountMtlsCerts: boolean;
    nativeNftables: boolean;
    trustBundleName: string;
    sds: { token: { aud: string } };
    sts: { servicePort: number };
    proxy: {
      image: string;
      clusterDomain: string;
      logLevel: string;
      componentLogLevel: string;
      statusPort: number;
      privileged: boolean;
      capNetBindService: boolean;
      holdApplicationUntilProxyStarts: boolean;
      lifecycle: Record<string, unknown>;
      outlierLogPath: string;
      includeIPRanges: string;
      excludeIPRanges: string;
      includeInboundPorts: string;
      excludeInboundPorts: string;
      includeOutboundPorts: string;
      excludeOutboundPorts: string;
      readinessInitialDelaySeconds: number;
      readinessPeriodSeconds: number;
      readinessFailureThreshold: number;
      startupProbe: { enabled: boolean; failureThreshold: number };
      resources: { requests?: Record<string, string>; limits?: Record<string, string> } | null;
      tracer: string;
    };
    proxy_init: { image: string; forceApplyIptables: boolean };
  };
  pilot: { cni: { enabled: boolean; provider: string } };
  /** The gateway template's pod securityContext, replacing its low-ports sysctl. */
  gateways?: { securityContext?: Record<string, unknown> };
  sidecarInjectorWebhook: { rewriteAppHTTPProbe: boolean };
}

/** The ProxyConfig fields injection reads (mesh defaultConfig, overlaid by proxy.istio.io/config). */
export interface ProxyConfig {
  [field: string]: unknown;
  statusPort?: number;
  interceptionMode?: string;
  holdApplicationUntilProxyStarts?: boolean;
  proxyMetadata?: Record<string, string>;
  image?: { imageType?: string };
}

export interface MeshConfig {
  proxyListenPort: number;
  proxyInboundListenPort: number;
  trustDomain: string;
  enablePrometheusMerge: boolean;
  inboundTrafficPolicy: { mode: string };
  defaultConfig: ProxyConfig;
}

/** Istio's defaults for the values the sidecar template reads (istio-discovery chart, pinned release). */
export function defaultValues(): Values {
  return {
    revision: "",
    global: {
      hub: "docker.io/istio",
      tag: ISTIO_VERSION,
      variant: "",
      imagePullPolicy: "",
      imagePullSecrets: [],
      istioNamespace: "istio-system",
      logAsJson: false,
      logging: { level: "default:info" },
      caAddress: "",
      caName: "",
      pilotCertProvider: "istiod",
      trustDomain: "",
      meshID: "",
      network: "",
      multiCluster: { clusterName: "" },
      mountMtlsCerts: false,
      nativeNftables: false,
      trustBundleName: "",
      sds: { token: { aud: "istio-ca" } },
      sts: { servicePort: 0 },
      proxy: {
        image: "proxyv2",
        clusterDomain: "cluster.local",
        logLevel: "warning",
        componentLogLevel: "misc:error",
        statusPort: 15020,
        privileged: false,
        capNetBindService: false,
        holdApplicationUntilProxyStarts: false,
        lifecycle: {},
        outlierLogPath: "",
        includeIPRanges: "*",
        excludeIPRanges: "",
        includeInboundPorts: "*",
        excludeInboundPorts: "",
        includeOutboundPorts: "",
        excludeOutboundPorts: "",
        readinessInitialDelaySeconds: 0,
        readinessPeriodSeconds: 15,
        readinessFailureThreshold: 4,
        startupProbe: { enabled: true, failureThreshold: 600 },
        resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { cpu: "2000m", memory: "1024Mi" } },
        tracer: "none",
      },
      proxy_init: { image: "proxyv2", forceApplyIptables: false },
    },
    pilot: { cni: { enabled: false, provider: "default" } },
    sidecarInjectorWebhook: { rewriteAppHTTPProbe: true },
  };
}

/** The injection templates Rigger renders (in code), by the names pods ask for them. */
export const RENDERED_TEMPLATES = ["sidecar", "gateway", "grpc-agent", "grpc-simple"];

export function defaultInjectorConfig(): InjectorConfig {
  return {
    policy: "enabled",
    alwaysInjectSelector: [],
    neverInjectSelector: [],
    injectedAnnotations: {},
    defaultTemplates: ["sidecar"],
    aliases: {},
    templates: [...RENDERED_TEMPLATES],
  };
}

export function defaultMeshConfig(): MeshConfig {
  return {
    proxyListenPort: 15001,
    proxyInboundListenPort: 15006,
    trustDomain: "cluster.local",
    enablePrometheusMerge: true,
    inboundTrafficPolicy: { mode: "PASSTHROUGH" },
    defaultConfig: { statusPort: 15020, interceptionMode: "REDIRECT" },
  };
}

/** Parses the ConfigMap's `config` key. Template bodies are dropped; their names are kept. */
export function parseInjectorConfig(text: string): InjectorConfig {
  const raw = (parseYaml(text) ?? {}) as Record<string, unknown>;
  const defaults = defaultInjectorConfig();
  return {
    policy: typeof raw.policy === "string" ? raw.policy : defaults.policy,
    alwaysInjectSelector: (raw.alwaysInjectSelector as LabelSelector[] | null) ?? [],
    neverInjectSelector: (raw.neverInjectSelector as LabelSelector[] | null) ?? [],
    injectedAnnotations: (raw.injectedAnnotations as Record<string, string> | null) ?? {},
    defaultTemplates: (raw.defaultTemplates as string[] | null) ?? defaults.defaultTemplates,
    aliases: (raw.aliases as Record<string, string[]> | null) ?? {},
    templates: raw.templates ? Object.keys(raw.templates as object) : defaults.templates,
  };
}

/** Parses the ConfigMap's `values` key (JSON) over Istio's defaults. */
export function parseValues(text: string): Values {
  return deepMerge(defaultValues(), JSON.parse(text)) as Values;
}

/** Parses ConfigMap istio's `mesh` key (YAML) over Istio's defaults. */
export function parseMeshConfig(text: string): MeshConfig {
  return deepMerge(defaultMeshConfig(), parseYaml(text) ?? {}) as MeshConfig;
}

/** Objects merge key by key; anything else in `overlay` replaces `base`. null leaves the base value. */
export function deepMerge(base: unknown, overlay: unknown): unknown {
  if (overlay === null || overlay === undefined) return base;
  if (isPlainObject(base) && isPlainObject(overlay)) {
    const out: Record<string, unknown> = { ...base };
    for (const [key, value] of Object.entries(overlay)) out[key] = deepMerge(base[key], value);
    return out;
  }
  return overlay;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
