import { describe, expect, test } from "vitest";
import { buildRegistry, type MeshService } from "../registry/registry.ts";
import { DEFAULT_MESH, type PushContext } from "./context.ts";
import {
  type DestinationRule,
  destinationRuleFor,
  hashPolicy,
  portPolicy,
  subsetNamesOf,
  subsetPolicy,
  type TrafficPolicy,
  unresolvedDestinations,
} from "./destination-rule.ts";

const rule = (
  namespace: string,
  name: string,
  host: string,
  spec: Partial<NonNullable<DestinationRule["spec"]>> = {},
  created = "2026-01-01T00:00:00Z",
): DestinationRule => ({ metadata: { name, namespace, creationTimestamp: created }, spec: { host, ...spec } });

const push = (rules: DestinationRule[]): PushContext => ({
  version: 1,
  mesh: DEFAULT_MESH,
  peerAuthentications: [],
  destinationRules: rules,
  registry: buildRegistry({
    services: [{ metadata: { name: "reviews", namespace: "shop" }, spec: { clusterIP: "10.96.0.1", ports: [{ port: 80 }] } }],
    endpointSlices: [],
    pods: [],
  }),
});

const reviews = (p: PushContext) => p.registry.byHostname.get("reviews.shop.svc.cluster.local") as MeshService;

describe("destinationRuleFor", () => {
  test("the proxy's namespace first, then the Service's, then the root namespace", () => {
    const all = [
      rule("istio-system", "root", "*.svc.cluster.local"),
      rule("shop", "service-ns", "reviews"),
      rule("web", "client-ns", "reviews.shop.svc.cluster.local"),
    ];
    const p = push(all);
    expect(destinationRuleFor(p, { namespace: "web" }, reviews(p))?.rule.metadata?.name).toBe("client-ns");
    expect(destinationRuleFor(p, { namespace: "other" }, reviews(p))?.rule.metadata?.name).toBe("service-ns");
    const rootOnly = push([all[0] as DestinationRule]);
    expect(destinationRuleFor(rootOnly, { namespace: "other" }, reviews(rootOnly))?.rule.metadata?.name).toBe("root");
  });

  test("an exact host beats a wildcard; the longest wildcard beats a shorter one", () => {
    const p = push([
      rule("shop", "any", "*"),
      rule("shop", "local", "*.shop.svc.cluster.local"),
      rule("shop", "exact", "reviews"),
    ]);
    expect(destinationRuleFor(p, { namespace: "shop" }, reviews(p))?.rule.metadata?.name).toBe("exact");
    const q = push([rule("shop", "any", "*"), rule("shop", "local", "*.shop.svc.cluster.local")]);
    expect(destinationRuleFor(q, { namespace: "shop" }, reviews(q))?.rule.metadata?.name).toBe("local");
  });

  test("a workloadSelector: the selected proxies of its namespace only, ahead of the rule without one", () => {
    const p = push([
      rule("shop", "all", "reviews"),
      rule(
        "shop",
        "for-productpage",
        "reviews",
        { workloadSelector: { matchLabels: { app: "productpage" } } },
        "2026-02-01T00:00:00Z",
      ),
    ]);
    const name = (namespace: string, labels: Record<string, string>) =>
      destinationRuleFor(p, { namespace, labels }, reviews(p))?.rule.metadata?.name;
    expect(name("shop", { app: "productpage", version: "v1" })).toBe("for-productpage");
    expect(name("shop", { app: "details" })).toBe("all");
    // Never exported: another namespace's productpage gets the plain rule.
    expect(name("web", { app: "productpage" })).toBe("all");
  });

  test("exportTo '.' keeps a rule to its own namespace", () => {
    const p = push([rule("shop", "private", "reviews", { exportTo: ["."] })]);
    expect(destinationRuleFor(p, { namespace: "shop" }, reviews(p))).toBeDefined();
    expect(destinationRuleFor(p, { namespace: "web" }, reviews(p))).toBeUndefined();
    const q = push([rule("shop", "to-web", "reviews", { exportTo: ["web"] })]);
    expect(destinationRuleFor(q, { namespace: "web" }, reviews(q))).toBeDefined();
    expect(destinationRuleFor(q, { namespace: "other" }, reviews(q))).toBeUndefined();
  });

  test("two rules for one host merge: subsets appended (the older wins a name), the older policy kept", () => {
    const older = rule(
      "shop",
      "a",
      "reviews",
      { subsets: [{ name: "v1", labels: { version: "v1" } }], trafficPolicy: { loadBalancer: { simple: "RANDOM" } } },
      "2026-01-01T00:00:00Z",
    );
    const newer = rule(
      "shop",
      "b",
      "reviews",
      {
        subsets: [
          { name: "v1", labels: { version: "other" } },
          { name: "v2", labels: { version: "v2" } },
        ],
        trafficPolicy: { loadBalancer: { simple: "ROUND_ROBIN" } },
      },
      "2026-01-02T00:00:00Z",
    );
    const p = push([newer, older]);
    const applied = destinationRuleFor(p, { namespace: "shop" }, reviews(p));
    expect(applied?.rule.metadata?.name).toBe("a");
    expect(applied?.from).toEqual(["shop/a", "shop/b"]);
    expect(applied?.subsets.map((s) => [s.name, s.labels?.version])).toEqual([
      ["v1", "v1"],
      ["v2", "v2"],
    ]);
    expect(applied?.trafficPolicy?.loadBalancer?.simple).toBe("RANDOM");
    expect(subsetNamesOf(p, "reviews.shop.svc.cluster.local")).toEqual(["v1", "v2"]);
  });
});

describe("policies", () => {
  const policy: TrafficPolicy = {
    loadBalancer: { simple: "RANDOM" },
    outlierDetection: { consecutive5xxErrors: 2 },
    portLevelSettings: [{ port: { number: 9080 }, connectionPool: { tcp: { maxConnections: 1 } } }],
  };

  test("port-level settings replace the rule's policy whole", () => {
    expect(portPolicy(policy, 9080)).toEqual({ policy: { connectionPool: { tcp: { maxConnections: 1 } } }, portLevel: true });
    expect(portPolicy(policy, 80)).toEqual({ policy, portLevel: false });
  });

  test("a subset's policy overrides the rule's component by component", () => {
    const merged = subsetPolicy(policy, { loadBalancer: { simple: "ROUND_ROBIN" } }, 80);
    expect(merged?.loadBalancer?.simple).toBe("ROUND_ROBIN");
    expect(merged?.outlierDetection?.consecutive5xxErrors).toBe(2);
  });

  test("consistent hashes become route hash policies", () => {
    expect(hashPolicy({ httpHeaderName: "x-user" })).toEqual({ header: { headerName: "x-user" } });
    expect(hashPolicy({ useSourceIp: true })).toEqual({ connectionProperties: { sourceIp: true } });
    expect(hashPolicy({ httpCookie: { name: "s", ttl: "60s", path: "/" } })).toEqual({
      cookie: { name: "s", ttl: { seconds: 60 }, path: "/" },
    });
    expect(hashPolicy(undefined)).toBeUndefined();
  });
});

test("a VirtualService's destinations that go nowhere are named: an unknown host, a subset no rule defines", () => {
  const p = push([rule("shop", "reviews", "reviews", { subsets: [{ name: "v1", labels: { version: "v1" } }] })]);
  const vs = {
    metadata: { name: "r", namespace: "shop" },
    spec: {
      hosts: ["reviews"],
      http: [
        {
          route: [
            { destination: { host: "reviews", subset: "v1" }, weight: 50 },
            { destination: { host: "reviews", subset: "v3" }, weight: 25 },
            { destination: { host: "nowhere" }, weight: 25 },
          ],
        },
      ],
    },
  };
  expect(unresolvedDestinations(p, vs)).toEqual([
    "subset v3 of reviews.shop.svc.cluster.local: no DestinationRule defines it",
    "host nowhere.shop.svc.cluster.local: no such service",
  ]);
});
