import { describe, expect, it } from "vitest";
import { settingsConfigMapNames, settingsFromConfigMaps } from "./settings.ts";

describe("settings from a revision's ConfigMaps", () => {
  it("names the ConfigMaps as upstream does (no suffix for the default revision)", () => {
    expect(settingsConfigMapNames(undefined)).toEqual({ injector: "istio-sidecar-injector", mesh: "istio" });
    expect(settingsConfigMapNames("default")).toEqual({ injector: "istio-sidecar-injector", mesh: "istio" });
    expect(settingsConfigMapNames("canary")).toEqual({ injector: "istio-sidecar-injector-canary", mesh: "istio-canary" });
  });

  it("says which ConfigMap is missing when the injector's is absent", () => {
    expect(() => settingsFromConfigMaps("istio-system", undefined, undefined, { revision: "canary" })).toThrow(
      "ConfigMap istio-system/istio-sidecar-injector-canary not found",
    );
  });

  it("takes values and mesh config from the ConfigMaps' data", () => {
    const settings = settingsFromConfigMaps(
      "istio-system",
      { data: { values: JSON.stringify({ global: { hub: "example.test/istio", tag: "9.9.9" } }) } },
      { data: { mesh: "trustDomain: example.test\n" } },
      { revision: "canary" },
    );
    expect(settings.values.global?.hub).toBe("example.test/istio");
    expect(settings.mesh.trustDomain).toBe("example.test");
    expect(settings.revision).toBe("canary");
  });
});
