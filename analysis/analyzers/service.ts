// Service checks (upstream's service.PortNameAnalyzer): a port whose protocol Istio cannot tell
// from its name or appProtocol, so it sniffs the traffic (IST0118), and an ExternalName
// Service's port that will not forward as expected (IST0150). The protocol is the one the xDS
// server infers (xds/registry/protocol.ts). The control plane's own Services and the gateways
// the Gateway API deployment makes are left out, as upstream leaves them.

import { servicePortProtocol } from "../../xds/registry/protocol.ts";
import type { KubeService } from "../../xds/registry/registry.ts";
import type { AnalysisContext } from "../analyze.ts";
import { messages } from "../messages.ts";

type Port = NonNullable<NonNullable<KubeService["spec"]>["ports"]>[number] & { targetPort?: number | string };
export interface ServiceObject extends KubeService {
  spec?: Omit<NonNullable<KubeService["spec"]>, "ports"> & { ports?: Port[] };
}

const MANAGED_GATEWAY_CONTROLLERS = ["istio.io-gateway-controller", "istio.io-mesh-controller", "istio.io-eastwest-controller"];

export function serviceChecks(context: AnalysisContext): void {
  if (!context.has("Service.core")) return;
  for (const r of context.of("Service.core")) {
    const labels = r.object.metadata?.labels ?? {};
    if ("istio" in labels || labels.release === "istio") continue;
    if (MANAGED_GATEWAY_CONTROLLERS.includes(labels["gateway.istio.io/managed"] ?? "")) continue;
    const spec = (r.object as ServiceObject).spec ?? {};
    const externalName = spec.type === "ExternalName";
    (spec.ports ?? []).forEach((port, i) => {
      const sniffed = servicePortProtocol({ ...port, port: port.port ?? 0 }) === "UnsupportedProtocol";
      if (!sniffed && !(port.name === "tcp" && externalName)) return;
      const finding = externalName
        ? messages.externalNameServiceTypeInvalidPortName()
        : messages.portNameIsNotUnderNamingConvention(port.name ?? "", port.port ?? 0, String(port.targetPort ?? 0));
      context.report(r, finding, ["spec", "ports", i]);
    });
  }
}
