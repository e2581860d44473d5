import { describe, expect, test } from "vitest";
import { buildRegistry, changedEndpoints, changedWorkloadPorts, type KubeEndpointSlice, type KubePod } from "./registry.ts";

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

describe("workloadPorts", () => {
  const notReady = (ip: string): KubeEndpointSlice => {
    const s = slice("web", [ip]);
    for (const ep of s.endpoints ?? []) ep.conditions = { ready: false };
    return s;
  };
  const build = (slices: KubeEndpointSlice[]) =>
    buildRegistry({ services: [service("web")], endpointSlices: slices, pods: [pod("web-0", { app: "web" })] });

  test("a pod not ready yet already serves its Service's ports (its proxy's inbound config), without being an endpoint", () => {
    const registry = build([notReady("10.0.0.1")]);
    expect(registry.endpoints.get("web.shop.svc.cluster.local")).toEqual([]);
    expect(registry.workloadPorts.get("10.0.0.1")).toEqual([
      { hostname: "web.shop.svc.cluster.local", servicePortName: "http", port: 8080 },
    ]);
  });

  test("names the addresses whose served ports differ; readiness alone changes none", () => {
    const empty = build([]);
    const starting = build([notReady("10.0.0.1")]);
    const ready = build([slice("web", ["10.0.0.1"])]);
    expect(changedWorkloadPorts(empty, starting)).toEqual(new Set(["10.0.0.1"]));
    expect(changedWorkloadPorts(starting, ready)).toEqual(new Set());
    expect(changedWorkloadPorts(ready, build([slice("web", ["10.0.0.2"])]))).toEqual(new Set(["10.0.0.1", "10.0.0.2"]));
  });
});
