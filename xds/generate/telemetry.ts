// The Telemetry API (telemetry.istio.io) for access logs, as upstream's Telemetries decides it:
// - which Telemetries apply to a proxy: the root namespace's (the oldest without a selector),
//   then its own namespace's (likewise), then those of its namespace whose selector matches its
//   labels (oldest first); later ones override earlier ones;
// - `accessLogging` entries name providers (else the mesh's defaultProviders.accessLogging),
//   apply to CLIENT (outbound), SERVER (inbound) or both (`match.mode`), may carry a CEL
//   `filter`, or switch a provider off (`disabled`); the providers the last level names stay in
//   scope (upstream's mergeLogs);
// - providers are meshConfig.extensionProviders (with upstream's built-in `envoy`: a file log to
//   /dev/stdout in the mesh config's format); file providers (envoyFileAccessLog) are served,
//   others (gRPC and OpenTelemetry log services) are not yet;
// - when no Telemetry configures access logs and the mesh names no default provider, the mesh
//   config's accessLogFile decides (access-log.ts).
import type { AccessLog, AccessLogFilter } from "../envoy/third_party/envoy/config/accesslog/v3/accesslog.ts";
import { ExpressionFilter } from "../envoy/third_party/envoy/extensions/access_loggers/filters/cel/v3/cel.ts";
import { pack } from "../envoy/types.ts";
import type { MeshProxy } from "../proxy.ts";
import { type ClassLogs, fileAccessLog, fileLog, ISTIO_JSON_FORMAT, meshFormatLog, NO_CHAIN_FILTER } from "./access-log.ts";
import { type MeshSettings, oldestFirst, type PushContext } from "./context.ts";

export type WorkloadMode = "CLIENT" | "SERVER" | "CLIENT_AND_SERVER";

export interface AccessLogging {
  providers?: { name?: string }[];
  disabled?: boolean;
  filter?: { expression?: string };
  match?: { mode?: WorkloadMode };
}

export interface Telemetry {
  metadata?: { name?: string; namespace?: string; creationTimestamp?: string; resourceVersion?: string };
  spec?: {
    selector?: { matchLabels?: Record<string, string> };
    targetRefs?: object[];
    targetRef?: object;
    accessLogging?: AccessLogging[];
    tracing?: object[];
  };
}

/** A meshConfig.extensionProviders entry (the kinds Rigger reads). */
export interface ExtensionProvider {
  name: string;
  envoyFileAccessLog?: {
    path?: string;
    logFormat?: { text?: string; labels?: Record<string, unknown> };
    omitEmptyValues?: boolean;
  };
  [kind: string]: unknown;
}

/** Upstream's default extension providers; the mesh config's replace those of the same name. */
export const DEFAULT_PROVIDERS: ExtensionProvider[] = [
  { name: "prometheus", prometheus: {} },
  { name: "stackdriver", stackdriver: {} },
  { name: "envoy", envoyFileAccessLog: { path: "/dev/stdout" } },
];

export function mergeProviders(user: ExtensionProvider[] | undefined): ExtensionProvider[] {
  const out = DEFAULT_PROVIDERS.map((p) => ({ ...p }));
  for (const p of user ?? []) {
    if (!p?.name) continue;
    const i = out.findIndex((e) => e.name === p.name);
    if (i >= 0) out[i] = p;
    else out.push(p);
  }
  return out;
}

const selects = (t: Telemetry) =>
  Object.keys(t.spec?.selector?.matchLabels ?? {}).length > 0 || (t.spec?.targetRefs?.length ?? 0) > 0 || !!t.spec?.targetRef;

const sorted = new WeakMap<PushContext, Telemetry[]>();

/** The Telemetries that apply to a proxy, the broadest first. */
export function applicableTelemetries(push: PushContext, proxy: MeshProxy): Telemetry[] {
  let all = sorted.get(push);
  if (!all) {
    all = [...(push.telemetries ?? [])].sort(oldestFirst);
    sorted.set(push, all);
  }
  const root = push.mesh.rootNamespace;
  const namespaceWide = (ns: string) => all.find((t) => t.metadata?.namespace === ns && !selects(t));
  const out: Telemetry[] = [];
  const mesh = namespaceWide(root);
  if (mesh) out.push(mesh);
  if (proxy.namespace !== root) {
    const own = namespaceWide(proxy.namespace);
    if (own) out.push(own);
  }
  for (const t of all) {
    if (t.metadata?.namespace !== proxy.namespace || !selects(t)) continue;
    // Policies attached by targetRefs (Services, Gateways) are not matched to sidecars yet.
    const labels = t.spec?.selector?.matchLabels ?? {};
    if (Object.keys(labels).length > 0 && Object.entries(labels).every(([k, v]) => proxy.labels[k] === v)) out.push(t);
  }
  return out;
}

const matchesMode = (entry: AccessLogging, mode: "CLIENT" | "SERVER") =>
  !entry.match?.mode || entry.match.mode === "CLIENT_AND_SERVER" || entry.match.mode === mode;

const names = (entry: AccessLogging) => (entry.providers ?? []).map((p) => p.name ?? "").filter(Boolean);

/** Upstream's mergeLogs: each provider in scope with its filter, or disabled. */
export function mergeLogs(
  levels: AccessLogging[][],
  defaults: string[],
  mode: "CLIENT" | "SERVER",
): Map<string, { filter?: string; disabled?: boolean }> {
  const providers = new Map<string, { filter?: string; disabled?: boolean }>();
  if (levels.length === 0) {
    for (const d of defaults) providers.set(d, {});
    return providers;
  }
  let inScope = defaults;
  const filters = new Map<string, { filter?: string }>();
  for (const level of levels) {
    const named = new Set<string>();
    for (const entry of level) {
      if (!matchesMode(entry, mode)) continue;
      for (const name of names(entry)) {
        named.add(name);
        filters.set(name, { filter: entry.filter?.expression });
      }
    }
    if (named.size > 0) inScope = [...named];
  }
  const scope = new Set(inScope);
  let parents = defaults;
  for (const level of levels)
    for (const entry of level) {
      const own = names(entry);
      const list = own.length > 0 ? own : parents;
      parents = list;
      for (const name of list) {
        if (!scope.has(name) || !matchesMode(entry, mode)) continue;
        providers.set(name, entry.disabled ? { disabled: true } : (filters.get(name) ?? {}));
      }
    }
  return providers;
}

/** A provider's access log (file providers only); undefined for kinds not served. */
function providerLog(mesh: MeshSettings, provider: ExtensionProvider): AccessLog | undefined {
  const file = provider.envoyFileAccessLog;
  if (!file) return undefined;
  const path = file.path || "/dev/stdout";
  // The built-in provider without its own format takes the mesh config's.
  if (provider.name === "envoy" && !file.logFormat && !file.omitEmptyValues) return meshFormatLog(mesh, path);
  const labels = file.logFormat?.labels;
  // Labels: JSON with those fields (none given: Istio's).
  if (labels !== undefined)
    return fileLog(path, { json: Object.keys(labels).length > 0 ? labels : ISTIO_JSON_FORMAT }, file.omitEmptyValues);
  return fileLog(path, { text: file.logFormat?.text }, file.omitEmptyValues);
}

/** `filters` as one: none, the one, or all of them. */
function allOf(filters: AccessLogFilter[]): AccessLogFilter | undefined {
  if (filters.length <= 1) return filters[0];
  return { andFilter: { filters } };
}

function celFilter(expression: string): AccessLogFilter {
  return {
    extensionFilter: { name: "envoy.access_loggers.extension_filters.cel", typedConfig: pack(ExpressionFilter, { expression }) },
  };
}

/**
 * The access logs of one class of a proxy's listeners (CLIENT: outbound, SERVER: inbound),
 * from the Telemetry API, else the mesh config.
 */
export function accessLogsFor(push: PushContext, proxy: MeshProxy, mode: "CLIENT" | "SERVER"): ClassLogs {
  const levels = applicableTelemetries(push, proxy)
    .map((t) => t.spec?.accessLogging ?? [])
    .filter((l) => l.length > 0);
  const defaults = push.mesh.defaultAccessLogProviders ?? [];
  const legacy = (): ClassLogs => {
    const log = fileAccessLog(push.mesh);
    const noChain = fileAccessLog(push.mesh, true);
    return { filters: log ? [log] : [], listener: noChain ? [noChain] : [] };
  };
  if (levels.length === 0 && defaults.length === 0) return legacy();
  const providers = mergeProviders(push.mesh.extensionProviders);
  const configs = [...mergeLogs(levels, defaults, mode)]
    .flatMap(([name, spec]) => {
      const provider = providers.find((p) => p.name.toLowerCase() === name.toLowerCase());
      const log = provider && providerLog(push.mesh, provider);
      return provider && log ? [{ name: provider.name, log, ...spec }] : [];
    })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  // Nothing the Telemetry names can be served: as if there were none.
  if (configs.length === 0) return legacy();
  const build = (base?: AccessLogFilter) =>
    configs
      .filter((c) => !c.disabled)
      .map((c) => {
        const filter = allOf([...(base ? [base] : []), ...(c.filter ? [celFilter(c.filter)] : [])]);
        return filter ? { ...c.log, filter } : c.log;
      });
  return { filters: build(), listener: build(NO_CHAIN_FILTER) };
}

// ---- Tracing -------------------------------------------------------------------------------

export interface TracingEntry {
  providers?: { name?: string }[];
  match?: { mode?: WorkloadMode };
  disableSpanReporting?: boolean;
  customTags?: Record<string, CustomTag>;
  randomSamplingPercentage?: number;
  useRequestIdForTraceSampling?: boolean;
  enableIstioTags?: boolean;
}

export interface CustomTag {
  literal?: { value?: string };
  environment?: { name?: string; defaultValue?: string };
  header?: { name?: string; defaultValue?: string };
}

/** What one side (client or server) of a proxy traces with (upstream's TracingSpec). */
export interface TracingSpec {
  provider?: ExtensionProvider;
  disabled: boolean;
  customTags?: Record<string, CustomTag>;
  randomSamplingPercentage?: number;
  useRequestIdForTraceSampling: boolean;
  enableIstioTags: boolean;
}

/**
 * Upstream's Telemetries.Tracing: each applicable Telemetry's `tracing` entries override the
 * provider (the first named), reporting, tags and sampling of the sides they match; undefined
 * when neither a Telemetry nor the mesh's defaultProviders.tracing says anything (the mesh
 * config's legacy tracing then applies). A side without a provider is disabled.
 */
export function tracingFor(push: PushContext, proxy: MeshProxy): { client: TracingSpec; server: TracingSpec } | undefined {
  const entries = applicableTelemetries(push, proxy).flatMap((t) => (t.spec?.tracing ?? []) as TracingEntry[]);
  const defaults = push.mesh.defaultTracingProviders ?? [];
  if (entries.length === 0 && defaults.length === 0) return undefined;
  const providers = mergeProviders(push.mesh.extensionProviders);
  const fetch = (name: string) => providers.find((p) => p.name.toLowerCase() === name.toLowerCase());
  const fresh = (): TracingSpec => ({
    useRequestIdForTraceSampling: true,
    enableIstioTags: true,
    disabled: false,
    provider: defaults[0] ? fetch(defaults[0]) : undefined,
  });
  const client = fresh();
  const server = fresh();
  for (const entry of entries) {
    const mode = entry.match?.mode;
    const sides = mode === "CLIENT" ? [client] : mode === "SERVER" ? [server] : [client, server];
    const [first] = (entry.providers ?? []).map((p) => p.name ?? "").filter(Boolean);
    for (const side of sides) {
      if (first) side.provider = fetch(first);
      if (entry.disableSpanReporting !== undefined) side.disabled = entry.disableSpanReporting;
      if (entry.customTags !== undefined) side.customTags = entry.customTags;
      if (entry.randomSamplingPercentage !== undefined) side.randomSamplingPercentage = entry.randomSamplingPercentage;
      if (entry.useRequestIdForTraceSampling !== undefined)
        side.useRequestIdForTraceSampling = entry.useRequestIdForTraceSampling;
      if (entry.enableIstioTags !== undefined) side.enableIstioTags = entry.enableIstioTags;
    }
  }
  if (!client.provider) client.disabled = true;
  if (!server.provider) server.disabled = true;
  return { client, server };
}
