import { expect, test } from "vitest";
import { validationWebhookConfigurations } from "./webhook-configuration.ts";

const clientConfig = { url: "https://127.0.0.1:15017/validate", caBundle: "Q0E=" };

test("the default revision gets its own validator and the default one for unlabelled config, both failing open", () => {
  const configs = validationWebhookConfigurations({ revision: "", namespace: "istio-system", clientConfig, isDefault: true });
  expect(configs.map((c) => c.metadata?.name)).toEqual(["istio-validator-istio-system", "istiod-default-validator"]);
  expect(configs.map((c) => c.webhooks?.[0]?.name)).toEqual(["rev.validation.istio.io", "validation.istio.io"]);
  expect(configs[0]?.webhooks?.[0]?.objectSelector).toEqual({
    matchExpressions: [{ key: "istio.io/rev", operator: "In", values: ["default"] }],
  });
  expect(configs[1]?.webhooks?.[0]?.objectSelector).toEqual({
    matchExpressions: [{ key: "istio.io/rev", operator: "DoesNotExist" }],
  });
  for (const c of configs) {
    expect(c.webhooks?.[0]?.failurePolicy).toBe("Ignore");
    expect(c.webhooks?.[0]?.rules?.[0]?.apiGroups).toEqual([
      "security.istio.io",
      "networking.istio.io",
      "telemetry.istio.io",
      "extensions.istio.io",
    ]);
    expect(c.webhooks?.[0]?.rules?.[0]?.operations).toEqual(["CREATE", "UPDATE"]);
  }
});

test("a canary revision validates only config labelled with it", () => {
  const configs = validationWebhookConfigurations({
    revision: "canary",
    namespace: "istio-system",
    clientConfig,
    isDefault: false,
  });
  expect(configs).toHaveLength(1);
  expect(configs[0]?.metadata?.name).toBe("istio-validator-canary-istio-system");
  expect(configs[0]?.metadata?.labels?.["istio.io/rev"]).toBe("canary");
  expect(configs[0]?.webhooks?.[0]?.objectSelector).toEqual({
    matchExpressions: [{ key: "istio.io/rev", operator: "In", values: ["canary"] }],
  });
});
