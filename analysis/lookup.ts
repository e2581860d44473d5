// Which Service or ServiceEntry host an object names, from the registry the xDS server builds
// (so a host the analysis finds is a host proxies get a cluster for).
import { resolveHost } from "../xds/generate/virtual-service.ts";
import { isVisible, type MeshService } from "../xds/registry/registry.ts";
import type { AnalysisContext } from "./analyze.ts";

/**
 * The service `host` names for an object of `namespace` whose exportTo is `exportTo`: one of that
 * name visible there (or in a namespace it exports to), else a wildcard ServiceEntry host
 * (`*.example.com`) covering it. A short name is of the object's namespace.
 */
export function serviceFor(
  context: AnalysisContext,
  host: string,
  namespace: string,
  exportTo: readonly string[] = [],
): MeshService | undefined {
  const fqdn = resolveHost(host, namespace, context.push.registry.domainSuffix);
  const viewers = [namespace, ...exportTo.map((e) => (e === "." ? namespace : e))];
  const visible = (s: MeshService) => viewers.some((v) => v === "*" || isVisible(s, v));
  const services = context.push.registry.services;
  return (
    services.find((s) => s.hostname === fqdn && visible(s)) ??
    services.find((s) => s.hostname.startsWith("*") && fqdn.replace(/^\*/, "").endsWith(s.hostname.slice(1)) && visible(s))
  );
}
