// The encoded-resource cache across pushes: a full push rebuilds everything; an endpoint-only
// push keeps what was built but for the changed services' clusters and load assignments.
import { describe, expect, test } from "vitest";
import { DEFAULT_MESH, type PushContext } from "./context.ts";
import { ResourceCache } from "./index.ts";

const push = (version: number, incremental?: PushContext["incremental"]): PushContext => ({
  version,
  incremental,
  mesh: DEFAULT_MESH,
  peerAuthentications: [],
  registry: {
    services: [],
    byHostname: new Map(),
    endpoints: new Map(),
    podsByIp: new Map(),
    workloadPorts: new Map(),
    domainSuffix: "cluster.local",
  },
});

describe("ResourceCache", () => {
  const keys = ["eds/outbound|80||a.shop.svc.cluster.local", "cds/true/outbound|80||b.shop.svc.cluster.local", "rds/shop/80"];
  const fill = (cache: ResourceCache, p: PushContext) => {
    const built: string[] = [];
    for (const key of keys)
      cache.get(p, key, () => {
        built.push(key);
        return { name: key, version: "1", resource: { typeUrl: "t", value: new Uint8Array() } };
      });
    return built;
  };

  test("an endpoint-only push rebuilds only the changed service's entries", () => {
    const cache = new ResourceCache();
    expect(fill(cache, push(1))).toEqual(keys);
    expect(fill(cache, push(2, { from: 1, hosts: new Set(["a.shop.svc.cluster.local"]) }))).toEqual([keys[0]]);
  });

  test("a full push, or an incremental one from another version than the cache holds, rebuilds everything", () => {
    const cache = new ResourceCache();
    fill(cache, push(1));
    expect(fill(cache, push(2))).toEqual(keys);
    expect(fill(cache, push(4, { from: 3, hosts: new Set() }))).toEqual(keys);
  });

  test("after a VirtualService change, only route configurations are rebuilt", () => {
    const cache = new ResourceCache();
    fill(cache, push(1));
    expect(fill(cache, push(2, { from: 1, hosts: new Set(), routes: true }))).toEqual([keys[2]]);
  });
});
