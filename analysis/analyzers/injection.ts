// Injection checks (upstream's injection.Analyzer): a namespace with no injection label
// (IST0102, or IST0148 when the injector enables every namespace by default), a namespace with
// more than one kind of injection label (IST0123), and a pod of an injected namespace that runs
// without the istio-proxy container (IST0103). The control plane's namespace is left out.
import type { AnalysisContext } from "../analyze.ts";
import { fullName, nameOf, namespaceOf } from "../analyze.ts";
import { messages } from "../messages.ts";

const INJECTION = "istio-injection";
const REVISION = "istio.io/rev";
const DATAPLANE_MODE = "istio.io/dataplane-mode";

interface PodObject {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: { hostNetwork?: boolean; containers?: { name?: string }[]; initContainers?: { name?: string }[] };
}

/** Whether the revision's injector ConfigMap says every namespace is injected unless labelled otherwise. */
function enabledByDefault(context: AnalysisContext, revision: string | undefined): boolean {
  const name = !revision || revision === "default" ? "istio-sidecar-injector" : `istio-sidecar-injector-${revision}`;
  const map = context.of("ConfigMap.core").find((c) => nameOf(c) === name);
  try {
    const values = JSON.parse(String((map?.object as { data?: Record<string, string> } | undefined)?.data?.values ?? "{}"));
    return values?.sidecarInjectorWebhook?.enableNamespacesByDefault === true;
  } catch {
    return false;
  }
}

export function injectionChecks(context: AnalysisContext): void {
  if (!context.has("Namespace.core", "Pod.core")) return;
  const controlPlane = context.options.controlPlaneNamespace ?? "istio-system";
  const injected = new Set<string>();
  for (const r of context.of("Namespace.core")) {
    const name = nameOf(r);
    if (name === controlPlane) continue;
    const labels = r.object.metadata?.labels ?? {};
    const injection = labels[INJECTION];
    const found = injection !== undefined ? [`${INJECTION}=${injection}`] : [];
    for (const key of [REVISION, DATAPLANE_MODE])
      if (key in labels && (injection === undefined || injection === "enabled")) found.push(`${key}=${labels[key]}`);
    if (found.length > 1) context.report(r, messages.namespaceMultipleInjectionLabels(found));
    if (labels[DATAPLANE_MODE] === "ambient") continue;
    if (!injection && !(REVISION in labels)) {
      if (enabledByDefault(context, labels[REVISION])) context.report(r, messages.namespaceInjectionEnabledByDefault());
      else context.report(r, messages.namespaceNotInjected(name), ["metadata", "name"]);
      continue;
    }
    if (injection === "enabled") injected.add(name);
  }
  for (const r of context.of("Pod.core")) {
    if (!injected.has(namespaceOf(r))) continue;
    const pod = r.object as PodObject;
    const inject =
      pod.metadata?.labels?.["sidecar.istio.io/inject"] ?? pod.metadata?.annotations?.["sidecar.istio.io/inject"] ?? "";
    if (inject.toLowerCase() === "false" || pod.spec?.hostNetwork) continue;
    const containers = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];
    if (!containers.some((c) => c.name === "istio-proxy")) context.report(r, messages.podMissingProxy(fullName(r)));
  }
}
