import { describe, expect, test } from "vitest";
import { isNewer } from "./cache.ts";

const at = (resourceVersion: string) => ({ metadata: { name: "x", resourceVersion } });

describe("the cache's newest copy", () => {
  test("resourceVersions compare as numbers (another informer's copy may be behind)", () => {
    expect(isNewer(at("1000"), at("999"))).toBe(true);
    expect(isNewer(at("999"), at("1000"))).toBe(false);
    expect(isNewer(at("18446744073709551617"), at("18446744073709551616"))).toBe(true);
  });

  test("versions that are not numbers are never called newer (the first copy found stands)", () => {
    expect(isNewer(at("b"), at("a"))).toBe(false);
    expect(isNewer(at("2"), at(""))).toBe(false);
  });
});
