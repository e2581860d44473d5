import { describe, expect, test } from "vitest";
import { type Gateway, gatewayResourceName, renderKubeGateway } from "./kube-gateway.ts";

const gateway = (extra: Partial<Gateway["metadata"]> = {}): Gateway => ({
  apiVersion: "gateway.networking.k8s.io/v1",
  kind: "Gateway",
  metadata: { name: "edge", namespace: "shop", uid: "u-1", ...extra },
  spec: {
    gatewayClassName: "istio",
    listeners: [
      { name: "http", port: 80, protocol: "HTTP" },
      { name: "https", port: 443, protocol: "HTTPS" },
    ],
  },
});
const settings = {
  proxyImage: "docker.io/istio/proxyv2:1.27.9",
  istioNamespace: "istio-system",
  istiodService: "istiod",
  revision: "default",
  trustDomain: "cluster.local",
};

describe("a Gateway API Gateway's objects", () => {
  test("<gateway>-istio, owned by the Gateway, labelled with its name, as upstream names them", () => {
    const [sa, deployment, service] = renderKubeGateway(gateway(), settings);
    for (const obj of [sa, deployment, service]) {
      expect(obj.metadata?.name).toBe("edge-istio");
      expect(obj.metadata?.ownerReferences).toEqual([
        { apiVersion: "gateway.networking.k8s.io/v1beta1", kind: "Gateway", name: "edge", uid: "u-1" },
      ]);
      expect(obj.metadata?.labels?.["gateway.networking.k8s.io/gateway-name"]).toBe("edge");
    }
    expect(deployment.metadata?.labels?.["gateway.istio.io/managed"]).toBe("istio.io-gateway-controller");
    expect(deployment.spec?.template.metadata?.labels?.["sidecar.istio.io/inject"]).toBe("false");
    expect(deployment.spec?.template.spec?.containers[0]?.args?.slice(0, 2)).toEqual(["proxy", "router"]);
  });

  test("the mesh's proxyMetadata is the proxy agent's environment, as upstream's kube-gateway template puts it", () => {
    const [, deployment] = renderKubeGateway(gateway(), { ...settings, proxyMetadata: { CLOUD_PLATFORM: "none", FOO: "1" } });
    const env = deployment.spec?.template.spec?.containers[0]?.env ?? [];
    expect(env.slice(-2)).toEqual([
      { name: "CLOUD_PLATFORM", value: "none" },
      { name: "FOO", value: "1" },
    ]);
  });

  test("the Service: status port and one port per listener (named like it), LoadBalancer unless the annotation says otherwise", () => {
    const [, , service] = renderKubeGateway(gateway(), settings);
    expect(service.spec?.type).toBe("LoadBalancer");
    expect(service.spec?.ports?.map((p) => [p.name, p.port, p.appProtocol])).toEqual([
      ["status-port", 15021, "tcp"],
      ["http", 80, "http"],
      ["https", 443, "https"],
    ]);
    const [, , clusterIp] = renderKubeGateway(
      gateway({ annotations: { "networking.istio.io/service-type": "ClusterIP" } }),
      settings,
    );
    expect(clusterIp.spec?.type).toBe("ClusterIP");
  });

  test("name override, and the revision the Gateway's reference resolved to", () => {
    const named = gateway({ annotations: { "gateway.istio.io/name-override": "front" }, labels: { "istio.io/rev": "prod" } });
    expect(gatewayResourceName(named)).toBe("front");
    const [, deployment] = renderKubeGateway(named, { ...settings, revision: "canary", istiodService: "istiod-canary" });
    expect(deployment.spec?.template.metadata?.annotations?.["istio.io/rev"]).toBe("canary");
    expect(deployment.spec?.template.spec?.containers[0]?.env?.find((e) => e.name === "CA_ADDR")?.value).toBe(
      "istiod-canary.istio-system.svc:15012",
    );
    // Rolls gradually: never fewer ready pods than asked for (istio#59959).
    expect(deployment.spec?.strategy?.rollingUpdate).toEqual({ maxUnavailable: 0, maxSurge: 1 });
  });
});
