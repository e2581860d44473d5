import { describe, expect, test } from "vitest";
import { describeProblem } from "./report.ts";
import { loadCorpus } from "./testdata/corpus.ts";
import { validate } from "./validate.ts";

const corpus = loadCorpus();

describe("corpus", () => {
  test.each(corpus.map((c) => [c.name, c] as const))("%s", (_, c) => {
    const result = validate(c.object);
    const errors = result.errors.map(describeProblem);
    const warnings = result.warnings.map(describeProblem);
    if (c.expect === "invalid") {
      expect(errors.length, `expected errors, got none (warnings: ${warnings.join("; ")})`).toBeGreaterThan(0);
      if (c.message) expect(errors.join("\n")).toContain(c.message);
    } else {
      expect(errors).toEqual([]);
      if (c.expect === "warning") {
        expect(warnings.length).toBeGreaterThan(0);
        if (c.message) expect(warnings.join("\n")).toContain(c.message);
      } else {
        expect(warnings).toEqual([]);
      }
    }
  });

  test("covers every kind with valid and invalid cases", () => {
    const kinds = new Map<string, Set<string>>();
    for (const c of corpus) {
      const k = String(c.object.kind);
      if (!kinds.has(k)) kinds.set(k, new Set());
      kinds.get(k)?.add(c.expect);
    }
    for (const kind of [
      "VirtualService",
      "DestinationRule",
      "Gateway",
      "ServiceEntry",
      "Sidecar",
      "AuthorizationPolicy",
      "PeerAuthentication",
      "RequestAuthentication",
      "WasmPlugin",
      "Telemetry",
      "WorkloadEntry",
      "WorkloadGroup",
    ]) {
      // (expect.objectContaining(new Set(...)) matched anything: a Set has no own properties.)
      expect([...(kinds.get(kind) ?? [])], kind).toEqual(expect.arrayContaining(["valid", "invalid"]));
    }
  });
});

test("every error names the field it is about", () => {
  const result = validate({
    apiVersion: "networking.istio.io/v1",
    kind: "VirtualService",
    metadata: { name: "x", namespace: "y" },
    spec: { hosts: ["a"], http: [{ route: [{ destination: { host: "a" }, weight: -1 }, { destination: { host: "b" } }] }] },
  });
  expect(result.errors).toEqual([{ path: "spec.http[0].route[0].weight", message: "weight -1 < 0" }]);
});

test("the version does not matter, the group and kind do", () => {
  const object = (apiVersion: string) => ({ apiVersion, kind: "Gateway", metadata: { name: "g" }, spec: {} });
  expect(validate(object("networking.istio.io/v1")).errors.map((e) => e.message)).toEqual([
    "gateway must have at least one server",
  ]);
  expect(validate(object("networking.istio.io/v9")).errors.map((e) => e.message)).toEqual([
    "gateway must have at least one server",
  ]);
  expect(validate(object("example.com/v1")).errors.map((e) => e.message)).toEqual(["unrecognized type Gateway.example.com"]);
});
