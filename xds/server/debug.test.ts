import { describe, expect, test } from "vitest";
import { TypeUrl } from "../envoy/types.ts";
import { parseNode } from "../proxy.ts";
import type { Connection } from "./ads.ts";
import { debugView, syncz } from "./debug.ts";
import { DeltaStream, type Generate } from "./stream.ts";

const generate: Generate = (typeUrl) =>
  typeUrl === TypeUrl.cluster ? [{ name: "a", version: "1", resource: { typeUrl, value: new Uint8Array() } }] : [];

function connection(): Connection {
  const sent: { nonce?: string }[] = [];
  const stream = new DeltaStream(generate, (r) => sent.push(r));
  stream.handle({ typeUrl: TypeUrl.cluster });
  stream.handle({ typeUrl: TypeUrl.cluster, responseNonce: sent[0]?.nonce });
  stream.handle({ typeUrl: TypeUrl.listener });
  const proxy = parseNode({ id: "sidecar~10.0.0.1~web-1.shop~shop.svc.cluster.local", metadata: { ISTIO_VERSION: "1.27.9" } });
  return {
    id: "web-1.shop-1",
    proxy,
    caller: { namespace: "shop", serviceAccount: "web" },
    delta: true,
    connectedAt: new Date(0),
    stream,
    generate,
    peer: "ipv4:10.0.0.1:5000",
  };
}

describe("debug views", () => {
  test("syncz: per type, synced only when the last response sent was acknowledged", () => {
    const [status] = syncz([connection()]);
    expect(status).toMatchObject({ proxy: "web-1.shop", istioVersion: "1.27.9", flavour: "delta" });
    expect(status?.types.cds).toMatchObject({ synced: true, resources: 1 });
    expect(status?.types.lds).toMatchObject({ synced: false, resources: 0 });
  });

  test("config_dump: 400 without a proxy, 404 naming an unknown one, a ConfigDump for a connected one", () => {
    const live = [connection()];
    expect(debugView(live, "/debug/config_dump", new URLSearchParams())?.status).toBe(400);
    expect(debugView(live, "/debug/config_dump", new URLSearchParams("proxyID=nobody.x"))).toEqual({
      status: 404,
      body: { error: "no proxy nobody.x is connected to this istiod" },
    });
    const dump = debugView(live, "/debug/config_dump", new URLSearchParams("proxyID=web-1.shop"));
    expect(dump?.status).toBe(200);
    expect(JSON.stringify(dump?.body)).toContain("type.googleapis.com/envoy.admin.v3.ClustersConfigDump");
    expect(debugView(live, "/debug/unknown", new URLSearchParams())).toBeUndefined();
  });
});
