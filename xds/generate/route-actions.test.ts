import { describe, expect, test } from "vitest";
import { CorsPolicy } from "../envoy/third_party/envoy/extensions/filters/http/cors/v3/cors.ts";
import { HTTPFault } from "../envoy/third_party/envoy/extensions/filters/http/fault/v3/fault.ts";
import type { Any } from "../envoy/third_party/google/protobuf/any.ts";
import {
  corsConfig,
  directResponseAction,
  faultConfig,
  mirrorPolicy,
  redirectAction,
  translateHeaders,
} from "./route-actions.ts";

const unpack = <T>(codec: { decode(b: Uint8Array): T }, any: Any | undefined) => codec.decode(any?.value ?? new Uint8Array());

describe("route actions", () => {
  test("redirects: codes Envoy can send, ports derived or given, no :80 for http or :443 for https", () => {
    expect(redirectAction({ uri: "/new", authority: "a.test", redirectCode: 302 }, 9080)).toMatchObject({
      pathRedirect: "/new",
      hostRedirect: "a.test",
      responseCode: 1,
    });
    expect(redirectAction({ derivePort: "FROM_REQUEST_PORT" }, 9080)?.portRedirect).toBe(9080);
    expect(redirectAction({ port: 80 }, 9080)?.portRedirect).toBeUndefined();
    expect(redirectAction({ scheme: "https", port: 443 }, 9080)?.portRedirect).toBeUndefined();
    expect(redirectAction({ scheme: "https", port: 8443 }, 9080)?.portRedirect).toBe(8443);
    expect(redirectAction({ redirectCode: 305 }, 9080)).toBeUndefined();
  });

  test("direct responses carry their status and body", () => {
    expect(directResponseAction({ status: 418, body: { string: "tea" } })).toEqual({
      status: 418,
      body: { inlineString: "tea" },
    });
  });

  test("headers: set overwrites, add appends, sorted by name; :authority and host become the authority, never headers", () => {
    const out = translateHeaders({
      request: { set: { b: "1", ":authority": "x.test" }, add: { a: "2", host: "ignored" }, remove: ["c", ":path"] },
      response: { set: { z: "9" } },
    });
    expect(out.requestHeadersToAdd.map((h) => [h.header?.key, h.appendAction])).toEqual([
      ["b", 2],
      ["a", 0],
    ]);
    expect(out.requestHeadersToRemove).toEqual(["c"]);
    expect(out.responseHeadersToAdd.map((h) => h.header?.key)).toEqual(["z"]);
    expect(out.authority).toBe("x.test");
  });

  test("faults: percentages in millionths (integers in hundredths); nothing usable, nothing sent", () => {
    const fault = unpack(
      HTTPFault,
      faultConfig({ delay: { fixedDelay: "2s", percentage: { value: 12.5 } }, abort: { grpcStatus: "UNAVAILABLE" } }),
    );
    expect(fault.delay).toMatchObject({ fixedDelay: { seconds: 2 }, percentage: { numerator: 125000, denominator: 2 } });
    expect(fault.abort).toMatchObject({ grpcStatus: 14 });
    expect(unpack(HTTPFault, faultConfig({ delay: { fixedDelay: "1s", percent: 30 } })).delay?.percentage).toMatchObject({
      numerator: 30,
    });
    expect(faultConfig({ delay: { exponentialDelay: "1s" } })).toBeUndefined();
  });

  test("CORS and mirrors as upstream translates them", () => {
    const cors = unpack(CorsPolicy, corsConfig({ allowOrigins: [{ regex: ".*" }], allowMethods: ["GET", "PUT"], maxAge: "1h" }));
    expect(cors).toMatchObject({
      allowOriginStringMatch: [{ safeRegex: { regex: ".*" } }],
      allowMethods: "GET,PUT",
      maxAge: "3600",
    });
    expect(cors.forwardNotMatchingPreflights).toBe(true);
    expect(mirrorPolicy("c", 0)).toBeUndefined();
    expect(mirrorPolicy("c", undefined)?.runtimeFraction?.defaultValue).toMatchObject({ numerator: 100 });
    expect(mirrorPolicy("c", 25.5)?.runtimeFraction?.defaultValue).toMatchObject({ numerator: 255000, denominator: 2 });
  });
});
