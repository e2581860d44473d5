import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { parseAllDocuments } from "yaml";
import { TypeUrl } from "../xds/envoy/types.ts";
import { DEFAULT_MESH } from "../xds/generate/context.ts";
import { ResourceCache, sidecarGenerator } from "../xds/generate/index.ts";
import { readScenario } from "../xds/parity/scenario.ts";
import { parseNode } from "../xds/proxy.ts";
import { buildRegistry, type KubeEndpointSlice, type KubePod, type KubeService } from "../xds/registry/registry.ts";
import type { Connection } from "../xds/server/ads.ts";
import { configDump, type SyncStatus } from "../xds/server/debug.ts";
import { DeltaStream } from "../xds/server/stream.ts";
import { configRows, statusRows } from "./proxy.ts";
import { table } from "./table.ts";

describe("rigger proxy-status", () => {
  test("SYNCED, STALE, REJECTED and NOT SENT per type, as istioctl shows them", () => {
    const status: SyncStatus = {
      proxy: "web-1.shop",
      connection: "web-1.shop-1",
      istioVersion: "1.27.9",
      clusterId: "Kubernetes",
      flavour: "delta",
      connectedAt: "2026-12-02T00:00:00.000Z",
      types: {
        cds: { sent: "n1", acked: "n1", resources: 3, synced: true },
        lds: { sent: "n2", resources: 2, synced: false },
        eds: { sent: "n3", acked: "n0", nacked: "bad endpoint", resources: 1, synced: false },
      },
    };
    expect(statusRows([status], "istiod")).toEqual([
      ["web-1.shop", "Kubernetes", "SYNCED", "STALE", "REJECTED", "NOT SENT", "istiod", "1.27.9"],
    ]);
    expect(table(["NAME", "CDS"], [["web-1.shop", "SYNCED"]], 5)).toBe("NAME           CDS\nweb-1.shop     SYNCED\n");
  });
});

describe("rigger proxy-config, from istiod's config dump", () => {
  const scenario = readScenario(join(import.meta.dirname, "../xds/parity/scenarios/basic.yaml"));
  const objects = parseAllDocuments(scenario.kubernetes).map((d) => d.toJSON() as { kind?: string });
  const push = {
    version: 1,
    mesh: DEFAULT_MESH,
    peerAuthentications: [],
    registry: buildRegistry({
      services: objects.filter((o) => o.kind === "Service") as KubeService[],
      endpointSlices: objects.filter((o) => o.kind === "EndpointSlice") as KubeEndpointSlice[],
      pods: objects.filter((o) => o.kind === "Pod") as KubePod[],
    }),
  };
  const proxy = parseNode({
    id: "sidecar~10.10.0.11~reviews-v1-7f9.default~default.svc.cluster.local",
    metadata: { NAMESPACE: "default", SERVICE_ACCOUNT: "reviews", LABELS: { app: "reviews" } },
  });
  const generate = sidecarGenerator(proxy, () => push, new ResourceCache());
  const stream = new DeltaStream(generate, () => undefined);
  stream.handle({ typeUrl: TypeUrl.route, resourceNamesSubscribe: ["9080"] });
  stream.handle({ typeUrl: TypeUrl.endpoint, resourceNamesSubscribe: ["outbound|9080||ratings.default.svc.cluster.local"] });
  const dump = configDump({ proxy, stream, generate } as unknown as Connection) as Parameters<typeof configRows>[0];

  test("clusters: service, port, subset, direction, type", () => {
    const { rows } = configRows(dump, "cluster");
    expect(rows).toContainEqual(["ratings.default.svc.cluster.local", "9080", "-", "outbound", "EDS"]);
    expect(rows).toContainEqual(["", "9080", "-", "inbound", "ORIGINAL_DST"]);
    expect(rows).toContainEqual(["BlackHoleCluster", "-", "-", "-", "STATIC"]);
  });
  test("listeners, routes and endpoints", () => {
    expect(configRows(dump, "listener").rows).toContainEqual(["virtualInbound", "0.0.0.0", "15006", "8"]);
    expect(configRows(dump, "route").rows).toContainEqual([
      "9080",
      "ratings.default.svc.cluster.local:9080",
      "ratings.default.svc.cluster.local,ratings.default.svc.cluster.local.,ratings,ratings.default.svc,ratings.default,10.96.0.12",
    ]);
    expect(configRows(dump, "endpoint").rows).toEqual([
      ["10.10.0.12:8080", "HEALTHY", "outbound|9080||ratings.default.svc.cluster.local"],
    ]);
    expect(() => configRows(dump, "secret")).toThrow("unknown kind secret");
  });
});
