import { describe, expect, test } from "vitest";
import { identityMismatch, NodeError, parseNode } from "./proxy.ts";

const sidecar = {
  id: "sidecar~10.244.200.7~web-5d8f7.shop~shop.svc.cluster.local",
  metadata: {
    NAME: "web-5d8f7",
    NAMESPACE: "shop",
    SERVICE_ACCOUNT: "web",
    INSTANCE_IPS: "10.244.200.7,fd00::7",
    ISTIO_VERSION: "1.27.9",
    CLUSTER_ID: "Kubernetes",
    LABELS: { app: "web", version: "v1", "security.istio.io/tlsMode": "istio" },
  },
  extensions: [{ name: "envoy.filters.http.router" }, { name: "istio.stats" }],
};

describe("parseNode", () => {
  test("a sidecar as pilot-agent describes it", () => {
    const proxy = parseNode(sidecar);
    expect(proxy).toMatchObject({
      type: "sidecar",
      id: "web-5d8f7.shop",
      ipAddresses: ["10.244.200.7", "fd00::7"],
      namespace: "shop",
      dnsDomain: "shop.svc.cluster.local",
      serviceAccount: "web",
      labels: { app: "web", version: "v1" },
      istioVersion: "1.27.9",
      podName: "web-5d8f7",
    });
    expect(proxy.extensions.has("istio.stats")).toBe(true);
  });

  test("without metadata: the IP from the id, the namespace from the DNS domain", () => {
    const proxy = parseNode({ id: "router~10.0.0.1~gw-1.edge~edge.svc.cluster.local" });
    expect(proxy).toMatchObject({ type: "router", ipAddresses: ["10.0.0.1"], namespace: "edge", podName: "gw-1" });
  });

  test.each([
    [undefined, "no node id"],
    [{ id: "" }, "no node id"],
    [{ id: "sidecar~10.0.0.1~a.b" }, "is not <type>~<ip>~<pod>.<namespace>~<domain>"],
    [{ id: "waypoint~10.0.0.1~a.b~b.svc.cluster.local" }, 'type "waypoint" is neither sidecar nor router'],
    [{ id: "sidecar~not-an-ip~a.b~b.svc.cluster.local" }, "no valid IP address"],
    [{ id: `sidecar~10.0.0.1~${"a".repeat(2000)}~b` }, "longer than 1024"],
  ])("refuses %j: %s", (node, message) => {
    expect(() => parseNode(node)).toThrow(NodeError);
    expect(() => parseNode(node)).toThrow(message);
  });
});

describe("identityMismatch", () => {
  const proxy = parseNode(sidecar);
  test("the caller's namespace and ServiceAccount match the node's", () => {
    expect(identityMismatch(proxy, { namespace: "shop", serviceAccount: "web" })).toBeUndefined();
  });
  test("another namespace or ServiceAccount is named", () => {
    expect(identityMismatch(proxy, { namespace: "other", serviceAccount: "web" })).toMatch("namespace shop");
    expect(identityMismatch(proxy, { namespace: "shop", serviceAccount: "db" })).toMatch("ServiceAccount web");
  });
});
