// Envoy access logs from the mesh config (meshConfig.accessLogFile, accessLogEncoding,
// accessLogFormat), as upstream's legacy path sets them (no Telemetry resources): a file access
// log in every HTTP connection manager and TCP proxy (but the chains dropping traffic sent to
// 15001/15006 themselves), and on the 15001/15006 listeners one for
// connections no filter chain took (response flag NR). Istio's default text format, or its
// JSON fields; a user's format gets a trailing newline.
import type { AccessLog, AccessLogFilter } from "../envoy/third_party/envoy/config/accesslog/v3/accesslog.ts";
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

/** A file access log to `path` in Istio's text format, a given text format, or JSON fields. */
export function fileLog(
  path: string,
  format: { text?: string } | { json: Record<string, unknown> },
  omitEmptyValues = false,
): AccessLog {
  const config: FileAccessLog = { path };
  const omit = omitEmptyValues ? { omitEmptyValues: true } : {};
  if ("json" in format) {
    const text = JSON.stringify(format.json);
    config.logFormat = {
      jsonFormat: format.json,
      jsonFormatOptions: { sortProperties: false },
      ...omit,
      ...(text.includes("%REQ_WITHOUT_QUERY") ? { formatters: [REQ_WITHOUT_QUERY] } : {}),
    };
  } else {
    // Upstream adds the newline a user's format lacks.
    const line = format.text ? (format.text.endsWith("\n") ? format.text : `${format.text}\n`) : ISTIO_TEXT_FORMAT;
    config.logFormat = {
      textFormatSource: { inlineString: line },
      ...omit,
      ...(line.includes("%REQ_WITHOUT_QUERY") ? { formatters: [REQ_WITHOUT_QUERY] } : {}),
    };
  }
  return { name: "envoy.access_loggers.file", typedConfig: pack(FileAccessLog, config) };
}

/** The mesh config's format (accessLogEncoding, accessLogFormat) to `path` (upstream's FileAccessLogFromMeshConfig). */
export function meshFormatLog(mesh: MeshSettings, path: string): AccessLog {
  if ((mesh.accessLogEncoding ?? "TEXT") !== "JSON") return fileLog(path, { text: mesh.accessLogFormat });
  let fields: Record<string, unknown> = ISTIO_JSON_FORMAT;
  if (mesh.accessLogFormat) {
    try {
      const parsed = JSON.parse(mesh.accessLogFormat) as unknown;
      // Upstream falls back to its own fields when the format is not a JSON object.
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) fields = parsed as Record<string, unknown>;
    } catch {}
  }
  return fileLog(path, { json: fields });
}

/** Only connections no filter chain took (the 15001/15006 listeners' own log). */
export const NO_CHAIN_FILTER: AccessLogFilter = { responseFlagFilter: { flags: ["NR"] } };

/**
 * The mesh config's file access log, or undefined when `accessLogFile` is empty; `listener`:
 * the listener-level one, for connections no filter chain matched (NR) only.
 */
export function fileAccessLog(mesh: MeshSettings, listener = false): AccessLog | undefined {
  if (!mesh.accessLogFile) return undefined;
  const log = meshFormatLog(mesh, mesh.accessLogFile);
  return listener ? { ...log, filter: NO_CHAIN_FILTER } : log;
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

/** Access logs for a listener class: those of filters, and the listener's own (no chain matched). */
export interface ClassLogs {
  filters: AccessLog[];
  listener: AccessLog[];
}

/**
 * The listeners with their class's access logs (inbound: `server`, the rest: `client`) in every
 * connection manager and TCP proxy, and the no-chain-matched ones on the catch-all listeners
 * (15001, 15006).
 */
export function withAccessLogs(listeners: Listener[], client: ClassLogs, server: ClassLogs): Listener[] {
  if (client.filters.length + client.listener.length + server.filters.length + server.listener.length === 0) return listeners;
  const add = (filter: Filter, logs: AccessLog[]) => logs.reduce((f, log) => logged(f, log), filter);
  return listeners.map((l) => {
    const logs = l.name === "virtualInbound" ? server : client;
    return {
      ...l,
      // Not the chains that drop traffic sent to 15001/15006 themselves (upstream logs none there).
      filterChains: l.filterChains?.map((c) =>
        c.name?.endsWith("-blackhole") ? c : { ...c, filters: c.filters?.map((f) => add(f, logs.filters)) },
      ),
      ...(l.defaultFilterChain
        ? {
            defaultFilterChain: {
              ...l.defaultFilterChain,
              filters: l.defaultFilterChain.filters?.map((f) => add(f, logs.filters)),
            },
          }
        : {}),
      ...((l.name === "virtualOutbound" || l.name === "virtualInbound") && logs.listener.length > 0
        ? { accessLog: [...(l.accessLog ?? []), ...logs.listener] }
        : {}),
    };
  });
}
