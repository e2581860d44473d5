import { describe, expect, test } from "vitest";
import { buildRegistry, changedEndpoints, type KubeEndpointSlice, type KubePod } from "./registry.ts";

const service = (name: string) => ({
  metadata: { name, namespace: "shop" },
  spec: { clusterIP: "10.96.0.1", selector: { app: name }, ports: [{ name: "http", port: 80 }] },
});
const slice = (name: string, ips: string[]): KubeEndpointSlice => ({
  metadata: { name: `${name}-x`, namespace: "shop", labels: { "kubernetes.io/service-name": name } },
  ports: [{ name: "http", port: 8080 }],
  endpoints: ips.map((ip, i) => ({
    addresses: [ip],
    conditions: { ready: true },
    targetRef: { kind: "Pod", name: `${name}-${i}`, namespace: "shop" },
  })),
});
const pod = (name: string, labels: Record<string, string>): KubePod => ({ metadata: { name, namespace: "shop", labels } });

describe("changedEndpoints", () => {
  const build = (webIps: string[], podLabels: Record<string, string>) =>
    buildRegistry({
      services: [service("web"), service("api")],
      endpointSlices: [slice("web", webIps), slice("api", ["10.0.1.1"])],
      pods: [pod("web-0", { app: "web" }), pod("api-0", podLabels)],
    });

  test("names the services whose endpoints differ, and no other", () => {
    const before = build(["10.0.0.1"], { app: "api" });
    expect(changedEndpoints(before, build(["10.0.0.1"], { app: "api" }))).toEqual(new Set());
    expect(changedEndpoints(before, build(["10.0.0.1", "10.0.0.2"], { app: "api" }))).toEqual(
      new Set(["web.shop.svc.cluster.local"]),
    );
    // A pod's labels travel with its endpoints (subsets and telemetry read them).
    expect(changedEndpoints(before, build(["10.0.0.1"], { app: "api", version: "v2" }))).toEqual(
      new Set(["api.shop.svc.cluster.local"]),
    );
  });
});
