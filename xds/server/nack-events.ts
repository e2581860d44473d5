// Beyond upstream, which only logs them: a configuration a proxy rejects (NACK) becomes a
// Warning Event on the proxy's pod, so `kubectl describe pod` shows which configuration its
// Envoy refused and why; and on each user object the rejected resources came from (a
// ServiceEntry, today), found by the resource names in Envoy's message, so `kubectl describe
// serviceentry` shows which proxies refused it. One Event per object, type and message (a proxy
// that keeps rejecting the same thing does not flood the namespace).
import type { EventRecorder } from "../../kube/events.ts";
import type { ConfigRef, Registry } from "../registry/registry.ts";
import { type NackReport, typeLabel } from "./ads.ts";

export const NACK_REASON = "XdsConfigRejected";

/**
 * The user objects behind the resources Envoy's message names: clusters and load assignments
 * (`outbound|<port>|<subset>|<host>`) and sniffed-port routes (`<host>:<port>`) of their hosts.
 */
export function configSources(registry: Registry, message: string): ConfigRef[] {
  const hosts = new Set<string>();
  for (const m of message.matchAll(/outbound\|\d+\|[^|\s]*\|([^\s:,;'"]+)/g)) if (m[1]) hosts.add(m[1]);
  for (const m of message.matchAll(/(?:^|[\s'"])([A-Za-z0-9*][A-Za-z0-9.*-]*\.[A-Za-z0-9-]+):\d+\b/g)) if (m[1]) hosts.add(m[1]);
  const found = new Map<string, ConfigRef>();
  for (const host of hosts) {
    const config = registry.byHostname.get(host)?.config;
    if (config) found.set(`${config.kind}/${config.namespace}/${config.name}`, config);
  }
  return [...found.values()];
}

export function nackEvents(
  events: EventRecorder,
  /** The pod's UID (kubectl describe finds Events by it), when known. */
  uidOf: (namespace: string, name: string) => string | undefined,
  /** The user objects the rejected configuration came from (none when unknown). */
  sourcesOf: (message: string) => ConfigRef[] = () => [],
  maxRemembered = 10_000,
): (report: NackReport) => void {
  const told = new Set<string>();
  const once = (key: string) => {
    if (told.has(key)) return false;
    if (told.size >= maxRemembered) told.clear();
    told.add(key);
    return true;
  };
  return (report) => {
    const { proxy } = report.connection;
    const type = typeLabel(report.typeUrl).toUpperCase();
    if (once(`Pod/${proxy.namespace}/${proxy.podName}\n${report.typeUrl}\n${report.message}`)) {
      const uid = uidOf(proxy.namespace, proxy.podName);
      void events.record(
        { apiVersion: "v1", kind: "Pod", metadata: { name: proxy.podName, namespace: proxy.namespace, uid } },
        "Warning",
        NACK_REASON,
        `Envoy rejected the ${type} configuration istiod sent: ${report.message}`,
      );
    }
    for (const source of sourcesOf(report.message)) {
      if (!once(`${source.kind}/${source.namespace}/${source.name}\n${report.typeUrl}\n${report.message}`)) continue;
      void events.record(
        {
          apiVersion: source.apiVersion,
          kind: source.kind,
          metadata: { name: source.name, namespace: source.namespace, uid: source.uid },
        },
        "Warning",
        NACK_REASON,
        `The Envoy of pod ${proxy.namespace}/${proxy.podName} rejected the ${type} configuration made from this ${source.kind}: ${report.message}`,
      );
    }
  };
}
