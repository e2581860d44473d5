// Envoy access logs from the mesh config (meshConfig.accessLogFile, accessLogEncoding,
// accessLogFormat), as upstream's legacy path sets them (no Telemetry resources): a file access
// log in every HTTP connection manager and TCP proxy (but the chains dropping traffic sent to
// 15001/15006 themselves), and on the 15001/15006 listeners one for
// connections no filter chain took (response flag NR). Istio's default text format, or its
// JSON fields; a user's format gets a trailing newline.
import type { AccessLog } from "../envoy/third_party/envoy/config/accesslog/v3/accesslog.ts";
import type { Listener } from "../envoy/third_party/envoy/config/listener/v3/listener.ts";
import type { Filter } from "../envoy/third_party/envoy/config/listener/v3/listener_components.ts";
import { FileAccessLog } from "../envoy/third_party/envoy/extensions/access_loggers/file/v3/file.ts";
import { HttpConnectionManager } from "../envoy/third_party/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.ts";
import { TcpProxy } from "../envoy/third_party/envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.ts";
import { pack } from "../envoy/types.ts";
import type { MeshSettings } from "./context.ts";

/** Upstream's EnvoyTextLogFormat (Istio 1.9 onwards). */
export const ISTIO_TEXT_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% ' +
  '%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% ' +
  '%BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" ' +
  '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% ' +
  "%DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n";

/** Upstream's EnvoyJSONLogFormatIstio. */
export const ISTIO_JSON_FORMAT: Record<string, string> = {
  start_time: "%START_TIME%",
  route_name: "%ROUTE_NAME%",
  method: "%REQ(:METHOD)%",
  path: "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
  protocol: "%PROTOCOL%",
  response_code: "%RESPONSE_CODE%",
  response_flags: "%RESPONSE_FLAGS%",
  response_code_details: "%RESPONSE_CODE_DETAILS%",
  connection_termination_details: "%CONNECTION_TERMINATION_DETAILS%",
  bytes_received: "%BYTES_RECEIVED%",
  bytes_sent: "%BYTES_SENT%",
  duration: "%DURATION%",
  upstream_service_time: "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
  x_forwarded_for: "%REQ(X-FORWARDED-FOR)%",
  user_agent: "%REQ(USER-AGENT)%",
  request_id: "%REQ(X-REQUEST-ID)%",
  authority: "%REQ(:AUTHORITY)%",
  upstream_host: "%UPSTREAM_HOST%",
  upstream_cluster: "%UPSTREAM_CLUSTER_RAW%",
  upstream_local_address: "%UPSTREAM_LOCAL_ADDRESS%",
  downstream_local_address: "%DOWNSTREAM_LOCAL_ADDRESS%",
  downstream_remote_address: "%DOWNSTREAM_REMOTE_ADDRESS%",
  requested_server_name: "%REQUESTED_SERVER_NAME%",
  upstream_transport_failure_reason: "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
};

const REQ_WITHOUT_QUERY = {
  name: "envoy.formatter.req_without_query",
  typedConfig: {
    typeUrl: "type.googleapis.com/envoy.extensions.formatter.req_without_query.v3.ReqWithoutQuery",
    value: new Uint8Array(),
  },
};

/**
 * The mesh config's file access log, or undefined when `accessLogFile` is empty; `listener`:
 * the listener-level one, for connections no filter chain matched (NR) only.
 */
export function fileAccessLog(mesh: MeshSettings, listener = false): AccessLog | undefined {
  if (!mesh.accessLogFile) return undefined;
  const config: FileAccessLog = { path: mesh.accessLogFile };
  if ((mesh.accessLogEncoding ?? "TEXT") === "JSON") {
    let fields: Record<string, unknown> = ISTIO_JSON_FORMAT;
    if (mesh.accessLogFormat) {
      try {
        const parsed = JSON.parse(mesh.accessLogFormat) as unknown;
        // Upstream falls back to its own fields when the format is not a JSON object.
        if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) fields = parsed as Record<string, unknown>;
      } catch {}
    }
    const text = JSON.stringify(fields);
    config.logFormat = {
      jsonFormat: fields,
      jsonFormatOptions: { sortProperties: false },
      ...(text.includes("%REQ_WITHOUT_QUERY") ? { formatters: [REQ_WITHOUT_QUERY] } : {}),
    };
  } else {
    const format = mesh.accessLogFormat
      ? mesh.accessLogFormat.endsWith("\n")
        ? mesh.accessLogFormat
        : `${mesh.accessLogFormat}\n`
      : ISTIO_TEXT_FORMAT;
    config.logFormat = {
      textFormatSource: { inlineString: format },
      ...(format.includes("%REQ_WITHOUT_QUERY") ? { formatters: [REQ_WITHOUT_QUERY] } : {}),
    };
  }
  return {
    name: "envoy.access_loggers.file",
    ...(listener ? { filter: { responseFlagFilter: { flags: ["NR"] } } } : {}),
    typedConfig: pack(FileAccessLog, config),
  };
}

const HCM = "envoy.filters.network.http_connection_manager";
const TCP_PROXY = "envoy.filters.network.tcp_proxy";

/** A connection manager or TCP proxy filter with the access log added (others as they are). */
function logged(filter: Filter, log: AccessLog): Filter {
  const value = filter.typedConfig?.value ?? new Uint8Array();
  if (filter.name === HCM) {
    const hcm = HttpConnectionManager.decode(value);
    return { ...filter, typedConfig: pack(HttpConnectionManager, { ...hcm, accessLog: [...(hcm.accessLog ?? []), log] }) };
  }
  if (filter.name === TCP_PROXY) {
    const tcp = TcpProxy.decode(value);
    return { ...filter, typedConfig: pack(TcpProxy, { ...tcp, accessLog: [...(tcp.accessLog ?? []), log] }) };
  }
  return filter;
}

/**
 * The listeners with the mesh's access log in every connection manager and TCP proxy, and the
 * no-chain-matched one on the catch-all listeners (15001, 15006); unchanged when it is off.
 */
export function withAccessLogs(mesh: MeshSettings, listeners: Listener[]): Listener[] {
  const log = fileAccessLog(mesh);
  const noChain = fileAccessLog(mesh, true);
  if (!log || !noChain) return listeners;
  return listeners.map((l) => ({
    ...l,
    // Not the chains that drop traffic sent to 15001/15006 themselves (upstream logs none there).
    filterChains: l.filterChains?.map((c) =>
      c.name?.endsWith("-blackhole") ? c : { ...c, filters: c.filters?.map((f) => logged(f, log)) },
    ),
    ...(l.defaultFilterChain
      ? { defaultFilterChain: { ...l.defaultFilterChain, filters: l.defaultFilterChain.filters?.map((f) => logged(f, log)) } }
      : {}),
    ...(l.name === "virtualOutbound" || l.name === "virtualInbound" ? { accessLog: [...(l.accessLog ?? []), noChain] } : {}),
  }));
}
