import { describe, expect, test } from "vitest";
import { patchedConfiguration } from "./webhook-patcher.ts";

const config = (failurePolicy: string, caBundle?: string) => ({
  metadata: { name: "c" },
  webhooks: [
    { name: "a", failurePolicy, clientConfig: { url: "https://127.0.0.1:1/validate", ...(caBundle ? { caBundle } : {}) } },
    { name: "b", failurePolicy, clientConfig: { url: "https://127.0.0.1:1/validate", ...(caBundle ? { caBundle } : {}) } },
  ],
});

describe("what the control plane writes on its webhook configurations", () => {
  test("caBundle on every webhook; the URL untouched", () => {
    const next = patchedConfiguration(config("Ignore"), "mutatingwebhookconfigurations", "Q0E=", false);
    expect(next?.webhooks?.map((w) => w.clientConfig)).toEqual([
      { url: "https://127.0.0.1:1/validate", caBundle: "Q0E=" },
      { url: "https://127.0.0.1:1/validate", caBundle: "Q0E=" },
    ]);
  });

  test("validators fail closed only once proven; mutating webhooks' policy is never touched", () => {
    expect(patchedConfiguration(config("Ignore", "Q0E="), "validatingwebhookconfigurations", "Q0E=", false)).toBeUndefined();
    const proven = patchedConfiguration(config("Ignore", "Q0E="), "validatingwebhookconfigurations", "Q0E=", true);
    expect(proven?.webhooks?.map((w) => w.failurePolicy)).toEqual(["Fail", "Fail"]);
    expect(patchedConfiguration(config("Ignore", "Q0E="), "mutatingwebhookconfigurations", "Q0E=", true)).toBeUndefined();
  });

  test("nothing to write when everything is already right", () => {
    expect(patchedConfiguration(config("Fail", "Q0E="), "validatingwebhookconfigurations", "Q0E=", true)).toBeUndefined();
  });
});
