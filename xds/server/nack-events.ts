// Beyond upstream, which only logs them: a configuration a proxy rejects (NACK) becomes a
// Warning Event on the proxy's pod, so `kubectl describe pod` shows which configuration its
// Envoy refused and why. One Event per pod, type and message (a proxy that keeps rejecting the
// same thing does not flood the namespace); Envoy's message is cut to what an Event holds.
import type { EventRecorder } from "../../kube/events.ts";
import { type NackReport, typeLabel } from "./ads.ts";

export const NACK_REASON = "XdsConfigRejected";

export function nackEvents(
  events: EventRecorder,
  /** The pod's UID (kubectl describe finds Events by it), when known. */
  uidOf: (namespace: string, name: string) => string | undefined,
  maxRemembered = 10_000,
): (report: NackReport) => void {
  const told = new Set<string>();
  return (report) => {
    const { proxy } = report.connection;
    const key = `${proxy.namespace}/${proxy.podName}\n${report.typeUrl}\n${report.message}`;
    if (told.has(key)) return;
    if (told.size >= maxRemembered) told.clear();
    told.add(key);
    const uid = uidOf(proxy.namespace, proxy.podName);
    void events.record(
      { apiVersion: "v1", kind: "Pod", metadata: { name: proxy.podName, namespace: proxy.namespace, uid } },
      "Warning",
      NACK_REASON,
      `Envoy rejected the ${typeLabel(report.typeUrl).toUpperCase()} configuration istiod sent: ${report.message}`,
    );
  };
}
