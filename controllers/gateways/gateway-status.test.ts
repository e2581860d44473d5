import { describe, expect, test } from "vitest";
import {
  type Listener,
  listenerStatuses,
  programmedStatus,
  type Route,
  withoutControlPlaneConditions,
} from "./gateway-status.ts";

const service = (type: string, ingress?: { ip?: string; hostname?: string }[]) => ({
  metadata: { name: "edge-istio", namespace: "shop" },
  spec: { type, ports: [{ port: 15021 }, { port: 80 }] },
  status: { loadBalancer: { ingress } },
});
const http: Listener = { name: "http", port: 80, protocol: "HTTP" };
const grpc: Listener = { name: "grpc", port: 9000, protocol: "HTTP" };
const tcp: Listener = { name: "tcp", port: 9100, protocol: "TCP" };
const host = "edge-istio.shop.svc.cluster.local";

describe("Programmed, worded as upstream", () => {
  test("AddressNotAssigned while a load balancer is pending, with the Service's hostname meanwhile", () => {
    const pending = programmedStatus(service("LoadBalancer"), [http, grpc, tcp]);
    expect(pending.condition).toEqual({
      type: "Programmed",
      status: "False",
      reason: "AddressNotAssigned",
      message: `Assigned to service(s) ${host}:80, ${host}:9000, and ${host}:9100, but failed to assign to all requested addresses: address pending for hostname "${host}"`,
    });
    expect(pending.addresses).toEqual([{ type: "Hostname", value: host }]);
  });

  test("True once there is an address, or for a ClusterIP Service", () => {
    const assigned = programmedStatus(service("LoadBalancer", [{ ip: "192.0.2.10" }]), [http, grpc]);
    expect(assigned.condition).toMatchObject({
      status: "True",
      reason: "Programmed",
      message: `Resource programmed, assigned to service(s) ${host}:80 and ${host}:9000`,
    });
    expect(assigned.addresses).toEqual([{ type: "IPAddress", value: "192.0.2.10" }]);
    expect(programmedStatus(service("ClusterIP"), [http]).condition.message).toBe(
      `Resource programmed, assigned to service(s) ${host}:80`,
    );
    expect(programmedStatus(undefined).condition).toMatchObject({ status: "False", reason: "Pending" });
  });
});

describe("listener status", () => {
  const gw = { name: "edge", namespace: "shop" };
  const route = (namespace: string, parentRef: Record<string, unknown>, kind: Route["kind"] = "HTTPRoute"): Route => ({
    kind,
    metadata: { name: "r", namespace },
    spec: { parentRefs: [{ name: "edge", ...parentRef }] },
  });

  test("kinds and conditions as upstream reports them; TCP needs upstream's alpha flag", () => {
    const [h, t] = listenerStatuses(gw, [http, tcp], []);
    expect(h?.supportedKinds).toEqual([
      { group: "gateway.networking.k8s.io", kind: "HTTPRoute" },
      { group: "gateway.networking.k8s.io", kind: "GRPCRoute" },
    ]);
    expect(h?.conditions.map((c) => `${c.type}=${c.status}/${c.reason}`)).toEqual([
      "Accepted=True/Accepted",
      "Conflicted=False/NoConflicts",
      "Programmed=True/Programmed",
      "ResolvedRefs=True/ResolvedRefs",
    ]);
    expect(t?.supportedKinds).toEqual([{ group: "gateway.networking.k8s.io", kind: "TCPRoute" }]);
    expect(t?.conditions[0]).toMatchObject({ status: "False", reason: "UnsupportedProtocol" });
  });

  test("attached routes: parentRef name, namespace, sectionName and port; the listener's allowed namespaces", () => {
    const routes = [
      route("shop", {}),
      route("shop", { sectionName: "grpc" }),
      route("shop", { port: 80 }),
      route("other", { namespace: "shop" }),
      route("shop", { name: "elsewhere" }),
      route("shop", {}, "GRPCRoute"),
    ];
    const [h, g] = listenerStatuses(gw, [http, grpc], routes);
    // http: the plain one, the port-80 one and the GRPCRoute; the other namespace is not allowed (Same).
    expect(h?.attachedRoutes).toBe(3);
    // grpc: the plain one, the sectionName one and the GRPCRoute.
    expect(g?.attachedRoutes).toBe(3);
    const all: Listener = { ...http, allowedRoutes: { namespaces: { from: "All" } } };
    expect(listenerStatuses(gw, [all], routes)[0]?.attachedRoutes).toBe(4);
    const selected: Listener = {
      ...http,
      allowedRoutes: { namespaces: { from: "Selector", selector: { matchLabels: { team: "shop" } } } },
    };
    const labels = (ns: string): Record<string, string> => (ns === "other" ? { team: "shop" } : {});
    expect(listenerStatuses(gw, [selected], routes, labels)[0]?.attachedRoutes).toBe(1);
  });

  test("a TLS-terminating listener's ResolvedRefs and Programmed are left to istiod (it reads Secrets; the operator may not)", () => {
    const https: Listener = { name: "https", port: 443, protocol: "HTTPS", tls: { certificateRefs: [{ name: "cert" }] } };
    const passthrough: Listener = { name: "tls", port: 8443, protocol: "TLS", tls: { mode: "Passthrough" } };
    const [terminating, other] = listenerStatuses(gw, [https, passthrough], []);
    expect(terminating?.conditions.map((c) => c.type)).toEqual(["Accepted", "Conflicted"]);
    expect(other?.conditions.map((c) => c.type)).toEqual(["Accepted", "Conflicted", "Programmed", "ResolvedRefs"]);
    // Compared without istiod's conditions, so a status istiod completed is not rewritten.
    const live = {
      listeners: [
        { name: "https", conditions: [{ type: "Accepted" }, { type: "ResolvedRefs" }, { type: "Programmed" }] },
        { name: "tls", conditions: [{ type: "Accepted" }, { type: "ResolvedRefs" }] },
      ],
    } as unknown as Parameters<typeof withoutControlPlaneConditions>[0];
    expect(
      withoutControlPlaneConditions(live, [https, passthrough])?.listeners?.map((l) => l.conditions?.map((c) => c.type)),
    ).toEqual([["Accepted"], ["Accepted", "ResolvedRefs"]]);
  });
});
