import { describe, expect, test } from "vitest";
import { EventRecorder } from "../../kube/events.ts";
import { RecordingClient } from "../../kube/recording-client.ts";
import { TypeUrl } from "../envoy/types.ts";
import { DEFAULT_MESH, type PushContext } from "../generate/context.ts";
import { parseNode } from "../proxy.ts";
import { buildRegistry } from "../registry/registry.ts";
import type { Connection } from "./ads.ts";
import { configSources, NACK_REASON, nackEvents } from "./nack-events.ts";

const connection = {
  proxy: parseNode({ id: "sidecar~10.0.0.1~web-1.shop~shop.svc.cluster.local", metadata: { NAME: "web-1", NAMESPACE: "shop" } }),
} as Connection;

describe("a NACK becomes a Warning Event on the proxy's pod", () => {
  test("once per pod, type and message, naming the type and Envoy's message, with the pod's UID", async () => {
    const client = new RecordingClient();
    const onNack = nackEvents(new EventRecorder(client, "istiod"), (ns, name) =>
      ns === "shop" && name === "web-1" ? "uid-web-1" : undefined,
    );
    const message = "Error adding/updating listener(s) virtualInbound: duplicate matcher";
    onNack({ connection, typeUrl: TypeUrl.listener, message, resources: [] });
    onNack({ connection, typeUrl: TypeUrl.listener, message, resources: [] });
    onNack({ connection, typeUrl: TypeUrl.cluster, message: "cluster outbound|80||x: bad", resources: [] });
    await new Promise((r) => setTimeout(r, 10));
    const events = client.writes.filter((w) => w.verb === "create").map((w) => w.body as Record<string, unknown>);
    expect(events).toHaveLength(2);
    expect(events[0]).toMatchObject({
      type: "Warning",
      reason: NACK_REASON,
      involvedObject: { kind: "Pod", name: "web-1", namespace: "shop", uid: "uid-web-1" },
      message: `Envoy rejected the LDS configuration istiod sent: ${message}`,
    });
    expect(client.writes.map((w) => w.path)).toEqual(["/api/v1/namespaces/shop/events", "/api/v1/namespaces/shop/events"]);
  });

  test("and on the ServiceEntries and VirtualServices the rejected resources came from, once per object, type and message", async () => {
    const push: PushContext = {
      version: 1,
      mesh: DEFAULT_MESH,
      peerAuthentications: [],
      virtualServices: [
        {
          metadata: { name: "reviews", namespace: "shop", uid: "uid-vs" },
          spec: { hosts: ["reviews"], http: [{ route: [{ destination: { host: "reviews" } }] }] },
        },
      ],
      destinationRules: [
        { metadata: { name: "payments-tls", namespace: "shop", uid: "uid-dr" }, spec: { host: "payments.example.test" } },
      ],
      registry: buildRegistry({
        services: [
          {
            metadata: { name: "reviews", namespace: "shop" },
            spec: { clusterIP: "10.96.0.9", ports: [{ name: "http", port: 9080 }] },
          },
        ],
        endpointSlices: [],
        pods: [],
        serviceEntries: [
          {
            metadata: { name: "payments", namespace: "shop", uid: "uid-se" },
            spec: { hosts: ["payments.example.test"], ports: [{ number: 443, name: "tls", protocol: "TLS" }], resolution: "DNS" },
          },
        ],
      }),
    };
    const se = { apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", name: "payments", namespace: "shop", uid: "uid-se" };
    const vs = {
      apiVersion: "networking.istio.io/v1",
      kind: "VirtualService",
      name: "reviews",
      namespace: "shop",
      uid: "uid-vs",
    };
    // By the rejected resources' names: a cluster of the entry's host; route configuration 9080, which the VirtualService routes.
    expect(
      configSources(push, ["outbound|443||payments.example.test", "outbound|9080||other.shop.svc.cluster.local"], "bad"),
    ).toEqual([se]);
    expect(configSources(push, ["9080"], "duplicate domain")).toEqual([vs]);
    // By Envoy's message when the names say nothing.
    expect(configSources(push, [], "cluster outbound|443||payments.example.test: bad dns settings")).toEqual([se]);
    expect(configSources(push, ["virtualInbound"], "listener: duplicate")).toEqual([]);
    // A cluster also names the DestinationRule the rejecting proxy's namespace sees for its host.
    const dr = {
      apiVersion: "networking.istio.io/v1",
      kind: "DestinationRule",
      name: "payments-tls",
      namespace: "shop",
      uid: "uid-dr",
    };
    expect(configSources(push, ["outbound|443||payments.example.test"], "bad", "shop")).toEqual([se, dr]);
    expect(configSources(push, ["9080"], "duplicate domain", "shop")).toEqual([vs]);

    const client = new RecordingClient();
    const onNack = nackEvents(
      new EventRecorder(client, "istiod"),
      () => "uid-web-1",
      (r) => configSources(push, r.resources, r.message),
    );
    const message = "Error adding/updating cluster(s) outbound|443||payments.example.test: bad dns settings";
    const report = { connection, typeUrl: TypeUrl.cluster, message, resources: ["outbound|443||payments.example.test"] };
    onNack(report);
    onNack(report);
    await new Promise((r) => setTimeout(r, 10));
    const events = client.writes.filter((w) => w.verb === "create").map((w) => w.body as Record<string, unknown>);
    expect(events.map((e) => (e.involvedObject as { kind: string }).kind)).toEqual(["Pod", "ServiceEntry"]);
    expect(events[1]).toMatchObject({
      type: "Warning",
      reason: NACK_REASON,
      involvedObject: { apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", name: "payments", uid: "uid-se" },
      message: `The Envoy of pod shop/web-1 rejected the CDS configuration made from this ServiceEntry: ${message}`,
    });
  });
});
