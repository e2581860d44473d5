// Sidecar checks (upstream's sidecar.SelectorAnalyzer): a workloadSelector no pod of its
// namespace matches (IST0101), several Sidecars selecting one pod (IST0110), and several
// Sidecars of one namespace without a selector (IST0111). Each is a case where the xDS server
// must pick one Sidecar and the user cannot tell which.
import type { Sidecar } from "../../xds/generate/sidecar-scope.ts";
import { type AnalysisContext, type AnalysisResource, nameOf, namespaceOf } from "../analyze.ts";
import { compare, selectorString, selects } from "../hosts.ts";
import { messages } from "../messages.ts";

const names = (list: AnalysisResource[]) => list.map(nameOf).sort(compare);

export function sidecarChecks(context: AnalysisContext): void {
  if (!context.has("Pod.core")) return;
  const byPod = new Map<string, AnalysisResource[]>();
  const withoutSelector = new Map<string, AnalysisResource[]>();
  for (const r of context.of("Sidecar.networking.istio.io")) {
    const selector = (r.object as Sidecar).spec?.workloadSelector?.labels ?? {};
    const namespace = namespaceOf(r);
    if (Object.keys(selector).length === 0) {
      withoutSelector.set(namespace, [...(withoutSelector.get(namespace) ?? []), r]);
      continue;
    }
    const pods = context
      .of("Pod.core")
      .filter((p) => namespaceOf(p) === namespace && selects(selector, p.object.metadata?.labels));
    if (pods.length === 0) {
      const first = Object.keys(selector).sort(compare)[0] ?? "";
      context.report(r, messages.referencedResourceNotFound("selector", selectorString(selector)), [
        "spec",
        "workloadSelector",
        "labels",
        first,
      ]);
    }
    for (const pod of pods) byPod.set(`${namespace}/${nameOf(pod)}`, [...(byPod.get(`${namespace}/${nameOf(pod)}`) ?? []), r]);
  }
  for (const [pod, list] of byPod) {
    if (list.length < 2) continue;
    const [namespace, name] = pod.split("/") as [string, string];
    for (const r of list)
      context.report(r, messages.conflictingSidecarWorkloadSelectors(names(list), namespace, name), ["metadata", "name"]);
  }
  for (const [namespace, list] of withoutSelector) {
    if (list.length < 2) continue;
    for (const r of list) context.report(r, messages.multipleSidecarsWithoutWorkloadSelectors(names(list), namespace));
  }
}
