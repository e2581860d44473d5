// Beyond upstream, which only logs them: a configuration a proxy rejects (NACK) becomes a
// Warning Event on the proxy's pod, so `kubectl describe pod` shows which configuration its
// Envoy refused and why; and on each user object the rejected resources came from (a
// ServiceEntry, a VirtualService, a DestinationRule), found by the names of the rejected
// resources, so `kubectl describe serviceentry`, `virtualservice` or `destinationrule` shows
// which proxies refused it. One Event per object, type and message (a proxy
// that keeps rejecting the same thing does not flood the namespace).
import type { EventRecorder } from "../../kube/events.ts";
import type { PushContext } from "../generate/context.ts";
import { destinationRuleFor } from "../generate/destination-rule.ts";
import { parseClusterName } from "../generate/endpoints.ts";
import { virtualServiceFor } from "../generate/virtual-service-scope.ts";
import { isHttp } from "../registry/protocol.ts";
import type { ConfigRef } from "../registry/registry.ts";
import { type NackReport, typeLabel } from "./ads.ts";

export const NACK_REASON = "XdsConfigRejected";

/**
 * The user objects behind rejected resources: the ServiceEntry of a cluster's or load
 * assignment's host (`outbound|<port>|<subset>|<host>`), and the VirtualServices routing the
 * services of a route configuration (`<port>`, or `<host>:<port>` for a sniffed port) and the
 * ServiceEntry of its host. Names come from the rejected response, and from Envoy's message.
 */
export function configSources(
  push: PushContext,
  resources: string[],
  message: string,
  /** The rejecting proxy's namespace: which DestinationRules it sees (none looked for without it). */
  proxyNamespace?: string,
): ConfigRef[] {
  const registry = push.registry;
  const hosts = new Set<string>();
  const clusterHosts = new Set<string>();
  const routePorts = new Set<number>();
  const named = [...resources, ...[...message.matchAll(/outbound\|\d+\|[^|\s]*\|[^\s:,;'"]+/g)].map((m) => m[0])];
  for (const m of message.matchAll(/(?:^|[\s'"])([A-Za-z0-9*][A-Za-z0-9.*-]*\.[A-Za-z0-9-]+:\d+)\b/g)) if (m[1]) named.push(m[1]);
  for (const name of named) {
    const cluster = parseClusterName(name);
    if (cluster) {
      hosts.add(cluster.hostname);
      clusterHosts.add(cluster.hostname);
    } else if (/^\d+$/.test(name)) routePorts.add(Number(name));
    else if (/^[^:]+:\d+$/.test(name)) hosts.add(name.slice(0, name.lastIndexOf(":")));
  }
  for (const port of routePorts)
    for (const service of registry.services)
      if (service.ports.some((p) => p.port === port && isHttp(p.protocol))) hosts.add(service.hostname);
  const found = new Map<string, ConfigRef>();
  const add = (config: ConfigRef | undefined) => {
    if (config) found.set(`${config.kind}/${config.namespace}/${config.name}`, config);
  };
  for (const host of hosts) {
    add(registry.byHostname.get(host)?.config);
    const vs = virtualServiceFor(push, host, proxyNamespace ?? "default");
    const meta = vs?.metadata;
    if (meta?.name && meta.namespace)
      add({
        apiVersion: "networking.istio.io/v1",
        kind: "VirtualService",
        name: meta.name,
        namespace: meta.namespace,
        uid: meta.uid,
      });
  }
  // A cluster's traffic policy and subsets come from the DestinationRule the proxy sees.
  for (const host of proxyNamespace === undefined ? [] : clusterHosts) {
    const service = registry.byHostname.get(host);
    for (const dr of service ? (destinationRuleFor(push, { namespace: proxyNamespace as string }, service)?.from ?? []) : []) {
      const [namespace = "", name = ""] = dr.split("/");
      const uid = push.destinationRules?.find((d) => d.metadata?.namespace === namespace && d.metadata?.name === name)?.metadata
        ?.uid;
      add({ apiVersion: "networking.istio.io/v1", kind: "DestinationRule", name, namespace, uid });
    }
  }
  return [...found.values()];
}

export function nackEvents(
  events: EventRecorder,
  /** The pod's UID (kubectl describe finds Events by it), when known. */
  uidOf: (namespace: string, name: string) => string | undefined,
  /** The user objects the rejected configuration came from (none when unknown). */
  sourcesOf: (report: NackReport) => ConfigRef[] = () => [],
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
    for (const source of sourcesOf(report)) {
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
