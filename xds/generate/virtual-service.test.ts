import { describe, expect, test } from "vitest";
import type { MeshService } from "../registry/registry.ts";
import { duration, resolveHost, routeMatch, type VirtualService, virtualServiceRoutes } from "./virtual-service.ts";

const service = (hostname: string, ports: number[]): MeshService => ({
  hostname,
  name: hostname.split(".")[0] ?? "",
  namespace: "shop",
  ports: ports.map((port) => ({ name: `http-${port}`, port, protocol: "HTTP" })),
  selector: {},
  labels: {},
  origin: "Kubernetes",
  resolution: "STATIC",
  meshExternal: false,
});
const services = new Map([
  ["reviews.shop.svc.cluster.local", service("reviews.shop.svc.cluster.local", [9080])],
  ["ratings.shop.svc.cluster.local", service("ratings.shop.svc.cluster.local", [9080, 9081])],
]);
const ctx = {
  namespace: "shop",
  domainSuffix: "cluster.local",
  listenPort: 9081,
  lookup: (h: string) => services.get(h),
  defaultRetry: () => ({ retryOn: "connect-failure", numRetries: 2 }),
};
const vs = (http: object[], extra: object = {}): VirtualService => ({
  metadata: { name: "r", namespace: "shop" },
  spec: { hosts: ["reviews"], http: http as never, ...extra },
});

describe("VirtualService routes", () => {
  test("hosts resolve in the VirtualService's namespace", () => {
    expect(resolveHost("reviews", "shop", "cluster.local")).toBe("reviews.shop.svc.cluster.local");
    expect(resolveHost("reviews.other", "shop", "cluster.local")).toBe("reviews.other");
  });

  test("matches: uri forms, sorted headers, presence, method, query, case", () => {
    expect(routeMatch(undefined)).toEqual({ prefix: "/" });
    expect(
      routeMatch({ uri: { exact: "/a" }, headers: { b: { regex: "x+" }, a: {} }, method: { exact: "GET" }, ignoreUriCase: true }),
    ).toEqual({
      path: "/a",
      caseSensitive: false,
      headers: [
        { name: "a", presentMatch: true },
        { name: "b", stringMatch: { safeRegex: { regex: "x+" } } },
        { name: ":method", stringMatch: { exact: "GET" } },
      ],
    });
    expect(routeMatch({ queryParams: { id: { prefix: "7" } } })).toEqual({
      prefix: "/",
      caseSensitive: true,
      queryParameters: [{ name: "id", stringMatch: { prefix: "7" } }],
    });
  });

  test("destinations: the port given, else the listener's (an HTTP route sees services through its port); zero weights dropped", () => {
    const routes = virtualServiceRoutes(
      vs([
        { name: "one", match: [{ uri: { prefix: "/one" } }], route: [{ destination: { host: "reviews" } }] },
        {
          name: "many",
          route: [
            { destination: { host: "ratings" }, weight: 70 },
            { destination: { host: "reviews", port: { number: 9080 } }, weight: 30 },
            { destination: { host: "x" }, weight: 0 },
          ],
        },
      ]),
      ctx,
    );
    // reviews has only 9080, yet on the 9081 listener upstream names 9081 (parity scenario virtual-service-scope).
    expect(routes[0]?.route?.cluster).toBe("outbound|9081||reviews.shop.svc.cluster.local");
    expect(routes[0]?.decorator?.operation).toBe("reviews.shop.svc.cluster.local:9081/one*");
    expect(routes[1]?.route?.weightedClusters?.clusters).toEqual([
      { name: "outbound|9081||ratings.shop.svc.cluster.local", weight: 70 },
      { name: "outbound|9080||reviews.shop.svc.cluster.local", weight: 30 },
    ]);
    expect(routes[1]?.decorator?.operation).toBe("r:9081/*");
    expect(routes[1]?.metadata?.filterMetadata?.istio).toEqual({
      config: "/apis/networking.istio.io/v1/namespaces/shop/virtual-service/r",
    });
  });

  test("timeouts and retries as upstream converts them", () => {
    const routes = virtualServiceRoutes(
      vs([
        {
          name: "t",
          match: [{ uri: { prefix: "/t" } }],
          route: [{ destination: { host: "reviews" } }],
          timeout: "1.5s",
          retries: { attempts: 4, perTryTimeout: "250ms", retryOn: "5xx,503" },
        },
        {
          name: "off",
          match: [{ uri: { prefix: "/off" } }],
          route: [{ destination: { host: "reviews" } }],
          retries: { attempts: 0 },
        },
      ]),
      ctx,
    );
    expect(routes[0]?.route).toMatchObject({
      timeout: { seconds: 1, nanos: 500_000_000 },
      maxGrpcTimeout: { seconds: 1, nanos: 500_000_000 },
      retryPolicy: {
        numRetries: 4,
        retryOn: "5xx,retriable-status-codes",
        retriableStatusCodes: [503],
        perTryTimeout: { seconds: 0, nanos: 250_000_000 },
      },
    });
    expect(routes[1]?.route?.retryPolicy).toBeUndefined();
    expect(duration("2m")).toEqual({ seconds: 120 });
    expect(duration("soon")).toBeUndefined();
  });

  test("nothing after a route that matches everything: routes match in order, so upstream leaves the rest out", () => {
    const routes = virtualServiceRoutes(
      vs([
        { name: "api", match: [{ uri: { prefix: "/api" } }, { port: 9081 }], route: [{ destination: { host: "reviews" } }] },
        { name: "never", route: [{ destination: { host: "ratings" } }] },
      ]),
      ctx,
    );
    expect(routes.map((r) => r.name)).toEqual(["api", "api"]);
    expect(routes[1]?.match).toEqual({ prefix: "/", caseSensitive: true });
  });
});
