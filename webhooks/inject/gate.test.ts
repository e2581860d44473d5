import { describe, expect, test } from "vitest";
import { defaultInjectorConfig, type InjectorConfig } from "./config.ts";
import { injectionRequired, selectorMatches } from "./gate.ts";

const config = (over: Partial<InjectorConfig> = {}): InjectorConfig => ({ ...defaultInjectorConfig(), ...over });
const spec = { containers: [{ name: "app" }] };

describe("injectionRequired", () => {
  test.each([
    ["host networking", config(), { ...spec, hostNetwork: true }, {}, false, "pod uses host networking"],
    ["ignored namespace", config(), spec, { namespace: "kube-public" }, false, "namespace kube-public is never injected"],
    [
      "label true beats policy disabled",
      config({ policy: "disabled" }),
      spec,
      { labels: { "sidecar.istio.io/inject": "true" } },
      true,
      "sidecar.istio.io/inject=true",
    ],
    ["label false", config(), spec, { labels: { "sidecar.istio.io/inject": "false" } }, false, "sidecar.istio.io/inject=false"],
    [
      "label wins over annotation",
      config(),
      spec,
      { labels: { "sidecar.istio.io/inject": "true" }, annotations: { "sidecar.istio.io/inject": "false" } },
      true,
      "sidecar.istio.io/inject=true",
    ],
    [
      "annotation when no label",
      config(),
      spec,
      { annotations: { "sidecar.istio.io/inject": "false" } },
      false,
      "sidecar.istio.io/inject=false",
    ],
    [
      "odd value falls to policy",
      config({ policy: "disabled" }),
      spec,
      { labels: { "sidecar.istio.io/inject": "False" } },
      false,
      "injection policy is disabled",
    ],
    [
      "neverInjectSelector",
      config({
        neverInjectSelector: [{ matchLabels: { batch: "yes" } }],
        alwaysInjectSelector: [{ matchLabels: { batch: "yes" } }],
      }),
      spec,
      { labels: { batch: "yes" } },
      false,
      "pod labels match neverInjectSelector",
    ],
    [
      "alwaysInjectSelector beats policy disabled",
      config({
        policy: "disabled",
        alwaysInjectSelector: [{ matchExpressions: [{ key: "tier", operator: "In", values: ["web"] }] }],
      }),
      spec,
      { labels: { tier: "web" } },
      true,
      "pod labels match alwaysInjectSelector",
    ],
    [
      "explicit label skips selectors",
      config({ neverInjectSelector: [{ matchLabels: { a: "b" } }] }),
      spec,
      { labels: { a: "b", "sidecar.istio.io/inject": "true" } },
      true,
      "sidecar.istio.io/inject=true",
    ],
    ["policy enabled", config(), spec, {}, true, "injection policy is enabled"],
    ["policy disabled", config({ policy: "disabled" }), spec, {}, false, "injection policy is disabled"],
    [
      "unknown policy never injects",
      config({ policy: "sometimes" }),
      spec,
      {},
      false,
      'injection policy "sometimes" is neither enabled nor disabled',
    ],
  ])("%s", (_, cfg, podSpec, metadata, inject, reason) => {
    expect(injectionRequired(cfg, podSpec, metadata)).toEqual({ inject, reason });
  });
});

describe("selectorMatches", () => {
  const labels = { app: "web", tier: "front" };
  test.each([
    [{}, false],
    [{ matchLabels: { app: "web" } }, true],
    [{ matchLabels: { app: "db" } }, false],
    [{ matchExpressions: [{ key: "tier", operator: "NotIn" as const, values: ["back"] }] }, true],
    [{ matchExpressions: [{ key: "zone", operator: "NotIn" as const, values: ["a"] }] }, true],
    [{ matchExpressions: [{ key: "app", operator: "Exists" as const }] }, true],
    [{ matchExpressions: [{ key: "app", operator: "DoesNotExist" as const }] }, false],
    [{ matchLabels: { app: "web" }, matchExpressions: [{ key: "tier", operator: "In" as const, values: ["back"] }] }, false],
  ])("%j → %s", (selector, expected) => {
    expect(selectorMatches(selector, labels)).toBe(expected);
  });
});
