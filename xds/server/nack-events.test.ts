import { describe, expect, test } from "vitest";
import { EventRecorder } from "../../kube/events.ts";
import { RecordingClient } from "../../kube/recording-client.ts";
import { TypeUrl } from "../envoy/types.ts";
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
    onNack({ connection, typeUrl: TypeUrl.listener, message });
    onNack({ connection, typeUrl: TypeUrl.listener, message });
    onNack({ connection, typeUrl: TypeUrl.cluster, message: "cluster outbound|80||x: bad" });
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

  test("and on the ServiceEntry the rejected clusters came from, once per object, type and message", async () => {
    const registry = buildRegistry({
      services: [],
      endpointSlices: [],
      pods: [],
      serviceEntries: [
        {
          metadata: { name: "payments", namespace: "shop", uid: "uid-se" },
          spec: { hosts: ["payments.example.test"], ports: [{ number: 443, name: "tls", protocol: "TLS" }], resolution: "DNS" },
        },
      ],
    });
    const message =
      "Error adding/updating cluster(s) outbound|443||payments.example.test: bad dns settings, outbound|80||web.shop.svc.cluster.local: ok";
    expect(configSources(registry, message)).toEqual([
      { apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", name: "payments", namespace: "shop", uid: "uid-se" },
    ]);
    expect(configSources(registry, "route payments.example.test:443 rejected")).toHaveLength(1);
    expect(configSources(registry, "listener 0.0.0.0_15001: duplicate")).toEqual([]);

    const client = new RecordingClient();
    const onNack = nackEvents(
      new EventRecorder(client, "istiod"),
      () => "uid-web-1",
      (m) => configSources(registry, m),
    );
    onNack({ connection, typeUrl: TypeUrl.cluster, message });
    onNack({ connection, typeUrl: TypeUrl.cluster, message });
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
