import { describe, expect, test } from "vitest";
import { EventRecorder } from "../../kube/events.ts";
import { RecordingClient } from "../../kube/recording-client.ts";
import { TypeUrl } from "../envoy/types.ts";
import { parseNode } from "../proxy.ts";
import type { Connection } from "./ads.ts";
import { NACK_REASON, nackEvents } from "./nack-events.ts";

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
});
