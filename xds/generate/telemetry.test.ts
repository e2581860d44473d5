import { describe, expect, test } from "vitest";
import { mergeLogs, mergeProviders } from "./telemetry.ts";

describe("Telemetry access logging", () => {
  test("the last level that names providers decides which are in scope; filters and modes apply per provider", () => {
    const merged = mergeLogs(
      [
        [{ providers: [{ name: "envoy" }], filter: { expression: "response.code >= 400" } }],
        [{ providers: [{ name: "file" }], match: { mode: "SERVER" } }],
      ],
      [],
      "SERVER",
    );
    expect([...merged]).toEqual([["file", { filter: undefined }]]);
    // On the client side the second level names nothing: the root's provider and filter stay.
    expect([
      ...mergeLogs(
        [
          [{ providers: [{ name: "envoy" }], filter: { expression: "x" } }],
          [{ providers: [{ name: "file" }], match: { mode: "SERVER" } }],
        ],
        [],
        "CLIENT",
      ),
    ]).toEqual([["envoy", { filter: "x" }]]);
  });

  test("disabled without providers switches off the inherited ones; no levels means the mesh's defaults", () => {
    expect([...mergeLogs([[{ providers: [{ name: "envoy" }] }], [{ disabled: true }]], [], "CLIENT")]).toEqual([
      ["envoy", { disabled: true }],
    ]);
    expect([...mergeLogs([], ["envoy"], "SERVER")]).toEqual([["envoy", {}]]);
  });

  test("the mesh's providers replace upstream's defaults of the same name", () => {
    const providers = mergeProviders([{ name: "envoy", envoyFileAccessLog: { path: "/tmp/log" } }, { name: "mine" }]);
    expect(providers.map((p) => p.name)).toEqual(["prometheus", "stackdriver", "envoy", "mine"]);
    expect(providers[2]?.envoyFileAccessLog?.path).toBe("/tmp/log");
  });
});
