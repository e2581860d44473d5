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
import { authorizationView, configDump, type SyncStatus } from "../xds/server/debug.ts";
import { DeltaStream } from "../xds/server/stream.ts";
import { authorizationText, configRows, statusRows } from "./proxy.ts";
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

describe("rigger proxy-config authz, from istiod's /debug/authorizationz", () => {
  const proxy = parseNode({
    id: "sidecar~10.10.0.11~reviews-v1-7f9.default~default.svc.cluster.local",
    metadata: { NAMESPACE: "default", SERVICE_ACCOUNT: "reviews", LABELS: { app: "reviews" } },
  });
  const policy = (name: string, namespace: string, spec: object, annotations?: Record<string, string>) => ({
    metadata: { name, namespace, creationTimestamp: `2026-01-01T00:00:0${name.length % 10}Z`, annotations },
    spec,
  });
  const push = {
    version: 1,
    mesh: DEFAULT_MESH,
    peerAuthentications: [],
    registry: buildRegistry({ services: [], endpointSlices: [], pods: [] }),
    authorizationPolicies: [
      policy("allow-web", "default", {
        rules: [{ from: [{ source: { ipBlocks: ["10.0.0.0/33"] } }] }, { from: [{ source: { namespaces: ["web"] } }] }],
      }),
      policy("ext", "default", { action: "CUSTOM", provider: { name: "opa" }, rules: [{}] }),
      policy("trial", "istio-system", { action: "DENY", rules: [{}] }, { "istio.io/dry-run": "true" }),
      policy("ratings-only", "default", { selector: { matchLabels: { app: "ratings" } }, rules: [] }),
    ],
  };
  const view = authorizationView(push, { proxy } as unknown as Connection);

  test("the policies that apply, in Envoy's order (CUSTOM, AUDIT, DENY, ALLOW), and the rules left out with why", () => {
    expect(view.policies.map((p) => `${p.action} ${p.name}.${p.namespace}`)).toEqual([
      "CUSTOM ext.default",
      "DENY trial.istio-system",
      "ALLOW allow-web.default",
    ]);
    expect(view.problems).toEqual([
      `failed to process CUSTOM action, will generate deny configs for the specified rules: extension provider is either invalid or undefined`,
      `skipped invalid rule ns[default]-policy[allow-web]-rule[0]: invalid CIDR "10.0.0.0/33"`,
    ]);
  });

  test("printed as a table, then what fails closed", () => {
    expect(authorizationText(view)).toBe(
      [
        "ACTION         AUTHORIZATION POLICY   RULES   DRY RUN",
        "CUSTOM (opa)   ext.default            1       no",
        "DENY           trial.istio-system     1       yes",
        "ALLOW          allow-web.default      2       no",
        "",
        "left out, failing closed (an ALLOW allows less, a DENY denies more):",
        "  failed to process CUSTOM action, will generate deny configs for the specified rules: extension provider is either invalid or undefined",
        `  skipped invalid rule ns[default]-policy[allow-web]-rule[0]: invalid CIDR "10.0.0.0/33"`,
        "",
      ].join("\n"),
    );
    expect(authorizationText({ proxy: "x.y", policies: [], problems: [] })).toBe(
      "no AuthorizationPolicy applies: every request is allowed\n",
    );
  });
});
