// AuthorizationPolicy checks (upstream's authz.AuthorizationPoliciesAnalyzer): a policy no
// workload of the mesh is subject to (IST0127: its selector, or for a policy without one its
// namespace, matches no pod in the mesh; a root-namespace policy looks at every namespace), and
// a source namespace no Namespace matches (IST0101).
import type { AuthorizationPolicy } from "../../xds/generate/authorization.ts";
import { type AnalysisContext, type AnalysisResource, nameOf, namespaceOf } from "../analyze.ts";
import { selectorString, selects } from "../hosts.ts";
import { messages } from "../messages.ts";

interface PodLike {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: { containers?: { name?: string }[]; initContainers?: { name?: string }[] };
}

const truth = (value: string | undefined) =>
  value === undefined
    ? undefined
    : ["1", "t", "true"].includes(value.toLowerCase())
      ? true
      : ["0", "f", "false"].includes(value.toLowerCase())
        ? false
        : undefined;

/** Whether a pod is in the mesh: it runs istio-proxy, else its inject label or annotation says so, else its namespace's istio-injection label. */
function inMesh(context: AnalysisContext, pod: AnalysisResource): boolean {
  const p = pod.object as PodLike;
  if ([...(p.spec?.containers ?? []), ...(p.spec?.initContainers ?? [])].some((c) => c.name === "istio-proxy")) return true;
  const own =
    truth(p.metadata?.labels?.["sidecar.istio.io/inject"]) ?? truth(p.metadata?.annotations?.["sidecar.istio.io/inject"]);
  if (own !== undefined) return own;
  const namespace = context.find("Namespace.core", "", namespaceOf(pod));
  return namespace?.object.metadata?.labels?.["istio-injection"] === "enabled";
}

/** upstream's namespace match: `*`, a `*suffix`, a `prefix*`, or the name (any case). */
function namespaceMatches(namespace: string, pattern: string): boolean {
  if (pattern === "*") return true;
  if (pattern.startsWith("*")) return namespace.endsWith(pattern.slice(1));
  if (pattern.endsWith("*")) return namespace.startsWith(pattern.slice(0, -1));
  return namespace.toLowerCase() === pattern.toLowerCase();
}

export function authorizationChecks(context: AnalysisContext): void {
  if (!context.has("Pod.core", "Namespace.core")) return;
  const meshed = context.of("Pod.core").filter((p) => inMesh(context, p));
  const namespaces = context.of("Namespace.core").map(nameOf);
  for (const r of context.of("AuthorizationPolicy.security.istio.io")) {
    const spec = (r.object as AuthorizationPolicy).spec ?? {};
    const namespace = namespaceOf(r);
    const selector = spec.selector?.matchLabels;
    const rootWide = namespace === context.push.mesh.rootNamespace;
    if (rootWide || selector) {
      // A root-namespace policy without a selector applies everywhere: nothing to check.
      const candidates = rootWide ? meshed : meshed.filter((p) => namespaceOf(p) === namespace);
      if (selector && !candidates.some((p) => selects(selector, p.object.metadata?.labels)))
        context.report(r, messages.noMatchingWorkloadsFound(selectorString(selector)));
    } else if (!meshed.some((p) => namespaceOf(p) === namespace)) context.report(r, messages.noMatchingWorkloadsFound(""));

    (spec.rules ?? []).forEach((rule, i) => {
      (rule?.from ?? []).forEach((from, j) => {
        const source = from.source ?? {};
        const listed: [string, string, number][] = [
          ...(source.namespaces ?? []).map((ns, k) => [ns, "namespaces", k] as [string, string, number]),
          ...(source.notNamespaces ?? []).map((ns, k) => [ns, "notNamespaces", k] as [string, string, number]),
        ];
        for (const [pattern, field, k] of listed)
          if (!namespaces.some((ns) => namespaceMatches(ns, pattern)))
            context.report(r, messages.referencedResourceNotFound("namespace", pattern), [
              "spec",
              "rules",
              i,
              "from",
              j,
              "source",
              field,
              k,
            ]);
      });
    });
  }
}
