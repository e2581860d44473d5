import { describe, expect, test } from "vitest";
import { buildRegistry } from "../registry/registry.ts";
import { DEFAULT_MESH, type PushContext } from "./context.ts";
import type { HttpRoute, VirtualService } from "./virtual-service.ts";
import { mergeDelegates, shadowedHosts, virtualServiceFor } from "./virtual-service-scope.ts";

const virtualService = (
  namespace: string,
  name: string,
  spec: NonNullable<VirtualService["spec"]>,
  created = "2026-01-01T00:00:00Z",
): VirtualService => ({ metadata: { name, namespace, creationTimestamp: created }, spec });

const push = (virtualServices: VirtualService[]): PushContext => ({
  version: 1,
  mesh: DEFAULT_MESH,
  peerAuthentications: [],
  virtualServices,
  registry: buildRegistry({ services: [], endpointSlices: [], pods: [] }),
});

const REVIEWS = "reviews.shop.svc.cluster.local";
const to = (host: string): HttpRoute["route"] => [{ destination: { host } }];

describe("which VirtualService routes a host", () => {
  test("the oldest of two wins; gateway-only ones are not the mesh's", () => {
    const p = push([
      virtualService("shop", "new", { hosts: ["reviews"] }, "2026-02-01T00:00:00Z"),
      virtualService("shop", "gw", { hosts: ["reviews"], gateways: ["edge"] }, "2025-01-01T00:00:00Z"),
      virtualService("shop", "old", { hosts: ["reviews"] }),
    ]);
    expect(virtualServiceFor(p, REVIEWS, "web")?.metadata?.name).toBe("old");
  });

  test("a host two public VirtualServices name: the newer one is told which older one routes it", () => {
    const p = push([
      virtualService("shop", "new", { hosts: ["reviews", "ratings"] }, "2026-02-01T00:00:00Z"),
      virtualService("shop", "old", { hosts: ["reviews"] }),
      virtualService("shop", "mine", { hosts: ["reviews"], exportTo: ["."] }, "2026-03-01T00:00:00Z"),
    ]);
    expect(shadowedHosts(p)).toEqual(new Map([["shop/new", new Map([[REVIEWS, "shop/old"]])]]));
  });

  test("exportTo: private to its namespace, named namespaces, none; a namespace's own beats an older public one", () => {
    const p = push([
      virtualService("shop", "public", { hosts: ["reviews"] }, "2025-01-01T00:00:00Z"),
      virtualService("shop", "mine", { hosts: ["reviews"], exportTo: ["."] }),
      virtualService("web", "theirs", { hosts: [REVIEWS], exportTo: ["web", "api"] }),
      virtualService("shop", "hidden", { hosts: ["ratings"], exportTo: ["~"] }),
    ]);
    expect(virtualServiceFor(p, REVIEWS, "shop")?.metadata?.name).toBe("mine");
    expect(virtualServiceFor(p, REVIEWS, "api")?.metadata?.name).toBe("theirs");
    expect(virtualServiceFor(p, REVIEWS, "other")?.metadata?.name).toBe("public");
    expect(virtualServiceFor(p, "ratings.shop.svc.cluster.local", "shop")).toBeUndefined();
  });

  test("an exact host beats a wildcard one; the longest wildcard wins", () => {
    const p = push([
      virtualService("shop", "all", { hosts: ["*"] }, "2025-01-01T00:00:00Z"),
      virtualService("shop", "namespace", { hosts: ["*.shop.svc.cluster.local"] }),
      virtualService("shop", "exact", { hosts: ["reviews"] }, "2026-03-01T00:00:00Z"),
    ]);
    expect(virtualServiceFor(p, REVIEWS, "shop")?.metadata?.name).toBe("exact");
    expect(virtualServiceFor(p, "ratings.shop.svc.cluster.local", "shop")?.metadata?.name).toBe("namespace");
    expect(virtualServiceFor(p, "ratings.web.svc.cluster.local", "shop")?.metadata?.name).toBe("all");
  });
});

describe("delegation", () => {
  test("a delegate's rules replace the delegating rule, narrowed by its match, with its settings as defaults", () => {
    const root = virtualService("shop", "root", {
      hosts: ["reviews"],
      http: [
        {
          name: "api",
          match: [{ uri: { prefix: "/api" }, headers: { team: { exact: "a" } } }],
          delegate: { name: "api-routes", namespace: "team-a" },
          timeout: "3s",
          retries: { attempts: 1 },
        },
        { name: "rest", route: to("reviews") },
      ],
    });
    const delegate = virtualService("team-a", "api-routes", {
      http: [
        { name: "v2", match: [{ uri: { prefix: "/api/v2" } }], route: to("reviews-v2"), timeout: "1s" },
        { name: "bad", match: [{ uri: { prefix: "/other" } }], route: to("nowhere") },
        { route: to("reviews-v1.shop") },
      ],
    });
    const { virtualServices, problems } = mergeDelegates([root, delegate], "cluster.local");
    expect(virtualServices.map((v) => v.metadata?.name)).toEqual(["root"]);
    expect(virtualServices[0]?.spec?.http).toEqual([
      {
        name: "api-v2",
        match: [{ uri: { prefix: "/api/v2" }, headers: { team: { exact: "a" } } }],
        // Short hosts in the delegate resolve in the delegate's namespace.
        route: [{ destination: { host: "reviews-v2.team-a.svc.cluster.local" } }],
        timeout: "1s",
        retries: { attempts: 1 },
      },
      {
        name: "api",
        match: [{ uri: { prefix: "/api" }, headers: { team: { exact: "a" } } }],
        route: [{ destination: { host: "reviews-v1.shop" } }],
        timeout: "3s",
        retries: { attempts: 1 },
      },
      { name: "rest", route: to("reviews") },
    ]);
    expect(problems.map((p) => p.message)).toEqual([
      "a rule of delegate team-a/api-routes (bad) matches outside its root rule's match and is left out",
    ]);
  });

  test("a missing delegate or one not exported to the root's namespace leaves only that rule out", () => {
    const root = virtualService("shop", "root", {
      hosts: ["reviews"],
      http: [
        { match: [{ uri: { prefix: "/a" } }], delegate: { name: "missing" } },
        { match: [{ uri: { prefix: "/b" } }], delegate: { name: "private", namespace: "team-b" } },
        { route: to("reviews") },
      ],
    });
    const hidden = virtualService("team-b", "private", { exportTo: ["."], http: [{ route: to("b") }] });
    const { virtualServices, problems } = mergeDelegates([root, hidden], "cluster.local");
    expect(virtualServices[0]?.spec?.http).toEqual([{ route: to("reviews") }]);
    expect(problems.map((p) => p.message)).toEqual([
      "delegate VirtualService shop/missing not found",
      "delegate VirtualService team-b/private is not exported to shop",
    ]);
  });

  test("match conflicts as upstream judges them: exact under prefix, regex against anything, other headers", () => {
    const merge = (rootMatch: object, leafMatch: object) =>
      mergeDelegates(
        [
          virtualService("shop", "root", { hosts: ["r"], http: [{ match: [rootMatch], delegate: { name: "d" } }] }),
          virtualService("shop", "d", { http: [{ match: [leafMatch], route: to("x") }] }),
        ],
        "cluster.local",
      ).virtualServices[0]?.spec?.http?.length;
    expect(merge({ uri: { prefix: "/a" } }, { uri: { exact: "/a/b" } })).toBe(1);
    expect(merge({ uri: { exact: "/a" } }, { uri: { prefix: "/a" } })).toBe(0);
    expect(merge({ uri: { regex: "/a.*" } }, { uri: { prefix: "/a" } })).toBe(0);
    expect(merge({ headers: { x: { exact: "1" } } }, { headers: { x: { exact: "2" } } })).toBe(0);
    expect(merge({ headers: { x: { exact: "1" } } }, { headers: { y: { exact: "2" } } })).toBe(1);
    expect(merge({ port: 80 }, { port: 81 })).toBe(0);
    expect(merge({ sourceLabels: { app: "a" } }, { sourceLabels: { app: "b" } })).toBe(0);
  });
});
