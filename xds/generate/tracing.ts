// The tracing block of a sidecar's HTTP connection managers, as upstream's configureTracing:
// - no Telemetry says anything about tracing: the mesh config's (enableTracing, on by default)
//   1 % random sampling, tagged with the workload's identity, and no provider of Istio's (the
//   proxy's bootstrap may have one);
// - a Telemetry does: the side's (client: outbound, server: inbound) spec; switched off, or
//   with a provider Rigger cannot serve or whose collector is not a known service, no tracing;
//   a Zipkin provider reports to its collector's outbound cluster (HTTP JSON, 128-bit trace
//   ids); sampling is the Telemetry's percentage, else 1 %; the Telemetry's custom tags
//   (literal, environment, request header) join the identity tags, sorted by name.

import { ZipkinConfig, ZipkinConfig_CollectorEndpointVersion } from "../envoy/third_party/envoy/config/trace/v3/zipkin.ts";
import type { HttpConnectionManager_Tracing } from "../envoy/third_party/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.ts";
import { pack } from "../envoy/types.ts";
import type { MeshProxy } from "../proxy.ts";
import { outboundClusterName, type PushContext } from "./context.ts";
import { type CustomTag, type TracingSpec, tracingFor } from "./telemetry.ts";

/** Upstream's PILOT_TRACE_SAMPLING default. */
const DEFAULT_SAMPLING = 1;

type Tag = NonNullable<HttpConnectionManager_Tracing["customTags"]>[number];

/** The workload's identity tags and the authorization dry-run ones (upstream's buildServiceTags + optionalPolicyTags). */
function istioTags(proxy: MeshProxy): Tag[] {
  const dryRun = (tag: string, key: string): Tag => ({
    tag,
    metadata: { kind: { request: {} }, metadataKey: { key: "envoy.filters.http.rbac", path: [{ key }] } },
  });
  const literal = (tag: string, value: string): Tag => ({ tag, literal: { value } });
  return [
    literal("istio.canonical_revision", proxy.labels["service.istio.io/canonical-revision"] ?? "latest"),
    literal("istio.canonical_service", proxy.labels["service.istio.io/canonical-name"] ?? "unknown"),
    literal("istio.cluster_id", proxy.clusterId),
    literal("istio.mesh_id", typeof proxy.metadata.MESH_ID === "string" ? proxy.metadata.MESH_ID : "unknown"),
    literal("istio.namespace", proxy.namespace),
    dryRun("istio.authorization.dry_run.allow_policy.name", "istio_dry_run_allow_shadow_effective_policy_id"),
    dryRun("istio.authorization.dry_run.allow_policy.result", "istio_dry_run_allow_shadow_engine_result"),
    dryRun("istio.authorization.dry_run.deny_policy.name", "istio_dry_run_deny_shadow_effective_policy_id"),
    dryRun("istio.authorization.dry_run.deny_policy.result", "istio_dry_run_deny_shadow_engine_result"),
  ];
}

function telemetryTags(tags: Record<string, CustomTag>): Tag[] {
  return Object.entries(tags).flatMap(([tag, t]): Tag[] => {
    if (t.literal) return [{ tag, literal: { value: t.literal.value ?? "" } }];
    if (t.environment)
      return [{ tag, environment: { name: t.environment.name ?? "", defaultValue: t.environment.defaultValue ?? "" } }];
    if (t.header) return [{ tag, requestHeader: { name: t.header.name ?? "", defaultValue: t.header.defaultValue ?? "" } }];
    return [];
  });
}

const byTag = (a: Tag, b: Tag) => ((a.tag ?? "") < (b.tag ?? "") ? -1 : (a.tag ?? "") > (b.tag ?? "") ? 1 : 0);

/** The provider part of a Telemetry's tracing: Zipkin to its collector's cluster; undefined when it cannot be served. */
function providerTracing(push: PushContext, spec: TracingSpec): HttpConnectionManager_Tracing | undefined {
  const zipkin = spec.provider?.zipkin as
    | { service?: string; port?: number; path?: string; maxTagLength?: number; enable64bitTraceId?: boolean }
    | undefined;
  if (!zipkin?.service) return undefined;
  // Upstream's LookupCluster: the collector must be a service with that port.
  const service = push.registry.byHostname.get(zipkin.service);
  const port = zipkin.port ?? 0;
  if (!service?.ports.some((p) => p.port === port)) return undefined;
  return {
    provider: {
      name: "envoy.tracers.zipkin",
      typedConfig: pack(ZipkinConfig, {
        collectorCluster: outboundClusterName(port, service.hostname),
        collectorEndpoint: zipkin.path || "/api/v2/spans",
        traceId128bit: !zipkin.enable64bitTraceId,
        sharedSpanContext: false,
        collectorEndpointVersion: ZipkinConfig_CollectorEndpointVersion.HTTP_JSON,
        collectorHostname: service.hostname,
      }),
    },
    ...(zipkin.maxTagLength ? { maxPathTagLength: zipkin.maxTagLength } : {}),
  };
}

/** The connection manager's tracing and whether the request id decides sampling; undefined: no tracing. */
export function hcmTracing(
  push: PushContext,
  proxy: MeshProxy,
  inbound: boolean,
): { tracing: HttpConnectionManager_Tracing; useRequestIdForTraceSampling: boolean } | undefined {
  const sampling = (random: number) => ({
    clientSampling: { value: 100 },
    randomSampling: { value: random },
    overallSampling: { value: 100 },
  });
  const config = tracingFor(push, proxy);
  if (!config) {
    if (push.mesh.enableTracing === false) return undefined;
    return {
      tracing: { ...sampling(DEFAULT_SAMPLING), customTags: istioTags(proxy).sort(byTag) },
      useRequestIdForTraceSampling: true,
    };
  }
  const spec = inbound ? config.server : config.client;
  if (spec.disabled) return undefined;
  const provider = providerTracing(push, spec);
  if (!provider) return undefined;
  const tags = [...(spec.enableIstioTags ? istioTags(proxy) : []), ...telemetryTags(spec.customTags ?? {})].sort(byTag);
  return {
    tracing: { ...provider, ...sampling(spec.randomSamplingPercentage ?? DEFAULT_SAMPLING), customTags: tags },
    useRequestIdForTraceSampling: spec.useRequestIdForTraceSampling,
  };
}
