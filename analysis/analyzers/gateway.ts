// Istio Gateway checks (upstream's gateway.IngressGatewayPortAnalyzer and gateway.SecretAnalyzer):
// a selector no pod matches (IST0101), a server port the gateway pods' Services do not expose
// (IST0162), a credentialName Secret that is missing (IST0101) or holds no usable certificate
// (IST0161). The Secret is looked up in the namespace of the first pod the selector matches, as
// upstream does, and judged by the same rule istiod serves certificates by.

import type { IstioGateway } from "../../xds/generate/gateway.ts";
import { certificateProblem } from "../../xds/generate/gateway-api-certificates.ts";
import { type AnalysisContext, type AnalysisResource, nameOf, namespaceOf } from "../analyze.ts";
import { selectorString, selects } from "../hosts.ts";
import { messages } from "../messages.ts";
import type { ServiceObject } from "./service.ts";

const labelsOf = (r: AnalysisResource) => r.object.metadata?.labels ?? {};

/** Target ports (and, for named target ports, service ports) the Services in front of `pod` expose over TCP. */
function exposedPorts(context: AnalysisContext, pod: AnalysisResource, into: Set<number>): void {
  for (const service of context.of("Service.core")) {
    if (namespaceOf(service) !== namespaceOf(pod)) continue;
    const spec = (service.object as ServiceObject).spec;
    if (!spec?.selector || !selects(spec.selector, labelsOf(pod))) continue;
    for (const port of spec.ports ?? []) {
      if ((port.protocol ?? "TCP") !== "TCP") continue;
      const target = typeof port.targetPort === "number" ? port.targetPort : Number(port.targetPort ?? 0) || 0;
      if (port.port !== undefined) into.add(port.port);
      if (target !== 0) into.add(target);
    }
  }
}

function checkGateway(context: AnalysisContext, r: AnalysisResource): void {
  const spec = (r.object as IstioGateway).spec ?? {};
  const selector = spec.selector ?? {};
  const selectorPath = ["spec", "selector", Object.keys(selector).sort()[0] ?? ""];
  const pods = context.of("Pod.core").filter((p) => selects(selector, labelsOf(p)));
  const first = pods[0];
  if (!first) {
    context.report(r, messages.referencedResourceNotFound("selector", selectorString(selector)), selectorPath);
    return;
  }
  const ports = new Set<number>();
  for (const pod of pods) exposedPorts(context, pod, ports);
  for (const server of spec.servers ?? []) {
    const number = server.port?.number;
    if (number !== undefined && !ports.has(number))
      context.report(r, messages.gatewayPortNotDefinedOnService(number, selectorString(selector)), selectorPath);
  }
  // credentialName Secrets, in the namespace of the gateway pods.
  const namespace = namespaceOf(first);
  (spec.servers ?? []).forEach((server, i) => {
    const credential = server.tls?.credentialName;
    if (!credential || !context.has("Secret.core")) return;
    const [secretNamespace, secretName] = credential.includes("/")
      ? (credential.split("/", 2) as [string, string])
      : [namespace, credential];
    const path = ["spec", "servers", i, "tls", "credentialName"];
    const secret = context.push.credentials?.get(`${secretNamespace}/${secretName}`);
    if (!secret) context.report(r, messages.referencedResourceNotFound("credentialName", credential), path);
    else if (certificateProblem(secret)) context.report(r, messages.invalidGatewayCredential(nameOf(r), namespace), path);
  });
}

export function gatewayChecks(context: AnalysisContext): void {
  if (!context.has("Pod.core", "Service.core")) return;
  for (const r of context.of("Gateway.networking.istio.io")) checkGateway(context, r);
}
