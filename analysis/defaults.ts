// What a files-only analysis assumes exists, as istioctl analyze --use-kube=false does: the
// default ingress gateway (a pod labelled istio=ingressgateway and its Service, ports 80, 443,
// 31400, 15443) in the control plane's namespace, so Gateways selecting it are not reported.
import type { AnalysisResource } from "./analyze.ts";

export function defaultIngressResources(namespace: string, service = "istio-ingressgateway"): AnalysisResource[] {
  const ports = [
    ["http2", 80],
    ["https", 443],
    ["tcp", 31400],
    ["tls", 15443],
  ] as const;
  return [
    {
      object: {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: `${service}-dummypod`, namespace, labels: { istio: "ingressgateway" } },
        spec: { containers: [{ name: "istio-proxy" }] },
      },
    },
    {
      object: {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: service, namespace },
        spec: {
          selector: { istio: "ingressgateway" },
          ports: ports.map(([name, port]) => ({ name, port, protocol: "TCP", targetPort: port })),
        },
      },
    },
  ];
}
