import { describe, expect, test } from "vitest";
import { podReference } from "./usage.ts";

describe("the revision or tag a pod refers to", () => {
  test.each([
    [{ annotations: { "istio.io/rev": "mesh-v1-27-8" }, labels: { "istio.io/rev": "prod-stable" } }, "mesh-v1-27-8"],
    [{ labels: { "istio.io/rev": "prod-canary" } }, "prod-canary"],
    [{ labels: { "sidecar.istio.io/inject": "true" } }, "default"],
    [{ labels: { app: "web" } }, undefined],
    // istiod's own pods carry istio.io/rev but are never injected: they do not pin their revision.
    [{ labels: { app: "istiod", "istio.io/rev": "mesh-v1-27-8", "sidecar.istio.io/inject": "false" } }, undefined],
    [undefined, undefined],
  ])("%j → %s", (metadata, expected) => {
    expect(podReference(metadata)).toBe(expected);
  });
});
