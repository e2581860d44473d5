// Whether a pod that reached the webhook gets a sidecar (upstream's second gate,
// after the webhook configuration's selectors). Returns why when it does not.
import type { V1ObjectMeta, V1PodSpec } from "@kubernetes/client-node";
import type { InjectorConfig, LabelSelector } from "./config.ts";

/** Namespaces never injected, whatever their labels say. */
export const IGNORED_NAMESPACES = ["kube-system", "kube-public", "kube-node-lease", "local-path-storage"];

export type GateDecision = { inject: true; reason: string } | { inject: false; reason: string };

export function injectionRequired(config: InjectorConfig, spec: V1PodSpec, metadata: V1ObjectMeta): GateDecision {
  if (spec.hostNetwork) return { inject: false, reason: "pod uses host networking" };
  const namespace = metadata.namespace ?? "";
  if (IGNORED_NAMESPACES.includes(namespace)) return { inject: false, reason: `namespace ${namespace} is never injected` };

  const labels = metadata.labels ?? {};
  // The label is the current API; the annotation is honoured when there is no label.
  const choice = labels["sidecar.istio.io/inject"] ?? metadata.annotations?.["sidecar.istio.io/inject"] ?? "";
  if (choice === "true") return { inject: true, reason: "sidecar.istio.io/inject=true" };
  if (choice === "false") return { inject: false, reason: "sidecar.istio.io/inject=false" };
  // Any other value falls through to the defaults, as upstream does.

  if (config.neverInjectSelector.some((s) => selectorMatches(s, labels))) {
    return { inject: false, reason: "pod labels match neverInjectSelector" };
  }
  if (config.alwaysInjectSelector.some((s) => selectorMatches(s, labels))) {
    return { inject: true, reason: "pod labels match alwaysInjectSelector" };
  }
  switch (config.policy) {
    case "enabled":
      return { inject: true, reason: "injection policy is enabled" };
    case "disabled":
      return { inject: false, reason: "injection policy is disabled" };
    default:
      return { inject: false, reason: `injection policy "${config.policy}" is neither enabled nor disabled` };
  }
}

/** Kubernetes label-selector semantics; an empty selector matches nothing here, as upstream treats it. */
export function selectorMatches(selector: LabelSelector, labels: Record<string, string>): boolean {
  const matchLabels = Object.entries(selector.matchLabels ?? {});
  const expressions = selector.matchExpressions ?? [];
  if (matchLabels.length === 0 && expressions.length === 0) return false;
  if (!matchLabels.every(([key, value]) => labels[key] === value)) return false;
  return expressions.every((e) => {
    const has = Object.hasOwn(labels, e.key);
    const value = labels[e.key] ?? "";
    switch (e.operator) {
      case "In":
        return has && (e.values ?? []).includes(value);
      case "NotIn":
        return !has || !(e.values ?? []).includes(value);
      case "Exists":
        return has;
      case "DoesNotExist":
        return !has;
      default:
        return false;
    }
  });
}
