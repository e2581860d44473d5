import { describe, expect, test } from "vitest";
import { namespacesUsing, podReference } from "./usage.ts";

describe("the revision or tag a pod refers to", () => {
  test.each([
    [{ annotations: { "istio.io/rev": "mesh-v1-27-8" }, labels: { "istio.io/rev": "prod-stable" } }, "mesh-v1-27-8"],
    [{ labels: { "istio.io/rev": "prod-canary" } }, "prod-canary"],
    [{ labels: { "sidecar.istio.io/inject": "true" } }, "default"],
    [{ labels: { app: "web" } }, undefined],
    // istiod's own pods carry istio.io/rev but are never injected: they do not pin their revision.
    [{ labels: { app: "istiod", "istio.io/rev": "mesh-v1-27-8", "sidecar.istio.io/inject": "false" } }, undefined],
    // Gateway API gateways are rendered with their proxy (never injected), for the revision in the annotation.
    [
      {
        annotations: { "istio.io/rev": "mesh-v1-27-8" },
        labels: { "sidecar.istio.io/inject": "false", "gateway.istio.io/managed": "istio.io-gateway-controller" },
      },
      "mesh-v1-27-8",
    ],
    [undefined, undefined],
  ])("%j → %s", (metadata, expected) => {
    expect(podReference(metadata)).toBe(expected);
  });
});

describe("namespaces using a revision", () => {
  const namespaces: { name: string; labels: Record<string, string> }[] = [
    { name: "a", labels: { "istio-injection": "enabled" } },
    { name: "b", labels: { "istio.io/rev": "canary" } },
    { name: "c", labels: { "istio-injection": "enabled", "istio.io/rev": "canary" } },
    { name: "d", labels: { "istio.io/rev": "default" } },
    { name: "e", labels: {} },
  ];

  test("istio-injection=enabled means the default revision and wins over istio.io/rev", () => {
    expect(namespacesUsing("default", namespaces)).toEqual(["a", "c", "d"]);
    expect(namespacesUsing("canary", namespaces)).toEqual(["b"]);
  });
});
