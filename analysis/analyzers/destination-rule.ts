// DestinationRule checks (upstream's destinationrule.* analyzers): a host no Service or
// ServiceEntry has (IST0174), a subset whose labels select no pod of the host (IST0173), and
// TLS origination (SIMPLE or MUTUAL) that does not verify the server (IST0128, IST0129).
import type { ClientTlsSettings, DestinationRule } from "../../xds/generate/destination-rule.ts";
import type { AnalysisContext, AnalysisResource } from "../analyze.ts";
import { fullName, namespaceOf } from "../analyze.ts";
import { selects } from "../hosts.ts";
import { serviceFor } from "../lookup.ts";
import { messages } from "../messages.ts";

const specOf = (r: AnalysisResource) => (r.object as DestinationRule).spec ?? {};

/** SIMPLE or MUTUAL without caCertificates (unless a workload-selecting rule's credentialName brings them). */
function unverified(tls: ClientTlsSettings | undefined, selectsWorkloads: boolean): string | undefined {
  const mode = tls?.mode;
  if (mode !== "SIMPLE" && mode !== "MUTUAL") return undefined;
  if (tls?.caCertificates || (tls?.credentialName && selectsWorkloads)) return undefined;
  return mode;
}

function checkTls(context: AnalysisContext, r: AnalysisResource): void {
  const spec = specOf(r);
  const selectsWorkloads = spec.workloadSelector !== undefined;
  const host = spec.host ?? "";
  const mode = unverified(spec.trafficPolicy?.tls, selectsWorkloads);
  if (mode)
    context.report(r, messages.noServerCertificateVerificationDestinationLevel(fullName(r), namespaceOf(r), mode, host), [
      "spec",
      "trafficPolicy",
      "tls",
      "caCertificates",
    ]);
  (spec.trafficPolicy?.portLevelSettings ?? []).forEach((p, i) => {
    const portMode = unverified(p.tls, selectsWorkloads);
    if (portMode)
      context.report(
        r,
        messages.noServerCertificateVerificationPortLevel(
          fullName(r),
          namespaceOf(r),
          portMode,
          host,
          `number:${p.port?.number ?? 0}`,
        ),
        ["spec", "trafficPolicy", "portLevelSettings", i, "tls", "caCertificates"],
      );
  });
}

function checkHostAndSubsets(context: AnalysisContext, r: AnalysisResource): void {
  const spec = specOf(r);
  const service = serviceFor(context, spec.host ?? "", namespaceOf(r), spec.exportTo);
  if (!service) {
    context.report(r, messages.unknownDestinationRuleHost(spec.host ?? ""), ["spec", "host"]);
    return;
  }
  // The pods behind the host: a Service's, in its namespace; a ServiceEntry's by its workloadSelector.
  const pods = context.of("Pod.core").filter((p) => service.origin !== "Kubernetes" || namespaceOf(p) === service.namespace);
  (spec.subsets ?? []).forEach((subset, i) => {
    const selector = { ...service.selector, ...subset.labels };
    if (!pods.some((p) => selects(selector, p.object.metadata?.labels)))
      context.report(r, messages.destinationRuleSubsetNotSelectPods(subset.name ?? ""), ["spec", "subsets", i, "name"]);
  });
}

export function destinationRuleChecks(context: AnalysisContext): void {
  for (const r of context.of("DestinationRule.networking.istio.io")) {
    checkTls(context, r);
    if (context.has("Service.core", "Pod.core")) checkHostAndSubsets(context, r);
  }
}
