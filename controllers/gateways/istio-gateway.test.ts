import { readFileSync } from "node:fs";
import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, test } from "vitest";
import type { IstioGateway } from "../../api/operator.ts";
import { parseInjectorConfig, parseMeshConfig, parseValues } from "../../webhooks/inject/config.ts";
import { inject } from "../../webhooks/inject/inject.ts";
import { serviceAddresses } from "./gateway-status.ts";
import { deploymentReadiness, renderIstioGateway } from "./istio-gateway.ts";

const gateway = (spec: IstioGateway["spec"] = {}, name = "istio-ingressgateway"): IstioGateway => ({
  apiVersion: "operator.rigger.dev/v1alpha1",
  kind: "IstioGateway",
  metadata: { name, namespace: "istio-ingress", uid: "u-1", generation: 1 },
  spec,
});

// biome-ignore lint/suspicious/noExplicitAny: the rendered objects are plain JSON
const byKind = (objects: any[], kind: string) => objects.find((o) => o.kind === kind);

describe("an IstioGateway's objects", () => {
  test("ingress defaults: as the gateway Helm chart, injected with the gateway template, autoscaled, with a PDB", () => {
    const objects = renderIstioGateway(gateway(), "default");
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      "ServiceAccount/istio-ingressgateway",
      "RoleBinding/istio-ingressgateway",
      "Deployment/istio-ingressgateway",
      "Service/istio-ingressgateway",
      "HorizontalPodAutoscaler/istio-ingressgateway",
      "PodDisruptionBudget/istio-ingressgateway",
    ]);
    const deployment = byKind(objects, "Deployment");
    expect(deployment.spec.replicas).toBeUndefined(); // the HPA owns it
    expect(deployment.spec.selector.matchLabels).toEqual({ app: "istio-ingressgateway", istio: "ingressgateway" });
    expect(deployment.spec.strategy.rollingUpdate).toEqual({ maxUnavailable: 0, maxSurge: 1 });
    const template = deployment.spec.template;
    expect(template.metadata.labels).toEqual({
      app: "istio-ingressgateway",
      istio: "ingressgateway",
      "app.kubernetes.io/name": "istio-ingressgateway",
      "istio.io/dataplane-mode": "none",
      "sidecar.istio.io/inject": "true",
    });
    expect(template.metadata.annotations).toEqual({
      "prometheus.io/port": "15020",
      "prometheus.io/scrape": "true",
      "prometheus.io/path": "/stats/prometheus",
      "inject.istio.io/templates": "gateway",
      "operator.rigger.dev/revision": "default",
    });
    expect(template.spec.containers.map((c: { name: string; image: string }) => [c.name, c.image])).toEqual([
      ["istio-proxy", "auto"],
    ]);
    const service = byKind(objects, "Service");
    expect(service.spec.type).toBe("LoadBalancer");
    expect(service.spec.ports.map((p: { name: string; port: number }) => `${p.name}:${p.port}`)).toEqual([
      "status-port:15021",
      "http2:80",
      "https:443",
    ]);
    expect(byKind(objects, "RoleBinding").roleRef).toEqual({
      apiGroup: "rbac.authorization.k8s.io",
      kind: "ClusterRole",
      name: "rigger-gateway-secrets",
    });
    expect(byKind(objects, "HorizontalPodAutoscaler").spec).toMatchObject({ minReplicas: 1, maxReplicas: 5 });
    expect(byKind(objects, "PodDisruptionBudget").spec.minAvailable).toBe(1);
  });

  test("egress on a tag: ClusterIP, istio.io/rev on the pods, fixed replicas, a pull policy, no HPA or PDB when turned off", () => {
    const objects = renderIstioGateway(
      gateway(
        {
          type: "egress",
          revision: "prod-stable",
          replicas: 3,
          imagePullPolicy: "IfNotPresent",
          autoscaling: { enabled: false },
          podDisruptionBudget: { enabled: false },
          labels: { team: "net" },
          service: { ports: [{ name: "tls", port: 443, targetPort: 8443 }] },
        },
        "istio-egressgateway",
      ),
      "mesh-v1-27-9",
    );
    expect(objects.map((o) => o.kind)).toEqual(["ServiceAccount", "RoleBinding", "Deployment", "Service"]);
    const deployment = byKind(objects, "Deployment");
    expect(deployment.spec.replicas).toBe(3);
    expect(deployment.spec.template.spec.containers[0].imagePullPolicy).toBe("IfNotPresent");
    expect(deployment.spec.template.metadata.labels).toMatchObject({
      istio: "egressgateway",
      team: "net",
      "istio.io/rev": "prod-stable",
    });
    expect(deployment.spec.template.metadata.annotations["operator.rigger.dev/revision"]).toBe("mesh-v1-27-9");
    const service = byKind(objects, "Service");
    expect(service.spec.type).toBe("ClusterIP");
    expect(service.spec.ports).toEqual([{ name: "tls", port: 443, targetPort: 8443, protocol: "TCP" }]);
  });

  test("a tag move changes the pod template's revision annotation and nothing else (so the Deployment rolls)", () => {
    const spec = { revision: "prod-stable" };
    const before = byKind(renderIstioGateway(gateway(spec), "rev-a"), "Deployment");
    const after = byKind(renderIstioGateway(gateway(spec), "rev-b"), "Deployment");
    after.spec.template.metadata.annotations["operator.rigger.dev/revision"] = "rev-a";
    expect(after).toEqual(before);
  });

  test("the injector turns its pod template into a router-mode gateway: istio-proxy main container, no istio-init", () => {
    const testdata = new URL("../../webhooks/inject/testdata/settings/", import.meta.url);
    const settings = {
      injector: parseInjectorConfig(readFileSync(new URL("inject-config.yaml", testdata), "utf8")),
      values: parseValues(readFileSync(new URL("values.json", testdata), "utf8")),
      mesh: parseMeshConfig(readFileSync(new URL("mesh.yaml", testdata), "utf8")),
      revision: "",
      nativeSidecars: true,
    };
    const template = byKind(renderIstioGateway(gateway(), "default"), "Deployment").spec.template;
    const result = inject(
      { pod: { ...template, metadata: { ...template.metadata, namespace: "istio-ingress" } } as V1Pod },
      settings,
    );
    expect(result.kind).toBe("injected");
    const pod = (result as { pod: V1Pod }).pod;
    expect(pod.spec?.initContainers ?? []).toEqual([]);
    const proxy = pod.spec?.containers.find((c) => c.name === "istio-proxy");
    expect(proxy?.args?.slice(0, 2)).toEqual(["proxy", "router"]);
    expect(proxy?.image).toBe("docker.io/istio/proxyv2:1.27.9");
    expect(proxy?.resources).toEqual({ requests: { cpu: "100m", memory: "128Mi" }, limits: { cpu: "2", memory: "1Gi" } });
    expect(pod.spec?.securityContext?.sysctls).toEqual([{ name: "net.ipv4.ip_unprivileged_port_start", value: "0" }]);
  });
});

describe("gateway status", () => {
  const service = (type: string, ingress?: { ip?: string; hostname?: string }[]) => ({
    metadata: { name: "edge-istio", namespace: "shop" },
    spec: { type, ports: [{ port: 15021 }, { port: 80 }] },
    status: { loadBalancer: { ingress } },
  });

  test("addresses: the load balancer's, else the Service's cluster hostname", () => {
    expect(serviceAddresses(service("LoadBalancer", [{ ip: "192.0.2.10" }, { hostname: "lb.example" }]))).toEqual([
      { type: "IPAddress", value: "192.0.2.10" },
      { type: "Hostname", value: "lb.example" },
    ]);
    expect(serviceAddresses(service("ClusterIP"))).toEqual([{ type: "Hostname", value: "edge-istio.shop.svc.cluster.local" }]);
  });

  test("Ready while every wanted pod is available, also during a rollout (which it reports)", () => {
    const d = (status: object, replicas = 2) => ({ metadata: { generation: 2 }, spec: { replicas }, status });
    expect(deploymentReadiness(undefined).ready).toBe(false);
    expect(deploymentReadiness(d({ observedGeneration: 1, availableReplicas: 2 }))).toEqual({
      ready: true,
      rolling: true,
      message: "2 of 2 pods available; the Deployment controller has not seen the latest spec yet",
    });
    expect(deploymentReadiness(d({ observedGeneration: 2, replicas: 3, updatedReplicas: 1, availableReplicas: 2 }))).toEqual({
      ready: true,
      rolling: true,
      message: "2 of 2 pods available; rolling out: 1 of 2 pods updated",
    });
    expect(deploymentReadiness(d({ observedGeneration: 2, replicas: 3, updatedReplicas: 2, availableReplicas: 3 })).rolling).toBe(
      true,
    );
    expect(deploymentReadiness(d({ observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 1 }))).toEqual({
      ready: false,
      rolling: false,
      message: "1 of 2 pods available",
    });
    expect(deploymentReadiness(d({ observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 2 }))).toEqual({
      ready: true,
      rolling: false,
      message: "2 of 2 pods available",
    });
  });
});
