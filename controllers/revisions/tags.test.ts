import { describe, expect, test } from "vitest";
import { renderTag } from "./tags.ts";

const input = {
  revision: "default-v1-27-9",
  namespace: "istio-system",
  inject: { url: "https://127.0.0.1:1/inject" },
  validate: { url: "https://127.0.0.1:1/validate" },
};

describe("a revision tag's objects", () => {
  test("prod-stable: its own injector matching istio.io/rev=prod-stable, calling the target; a Service for the target's pods", () => {
    const [mwc, svc, ...rest] = renderTag({ ...input, tag: "prod-stable" });
    expect(mwc.metadata?.name).toBe("istio-revision-tag-prod-stable");
    expect(mwc.metadata?.labels).toMatchObject({ "istio.io/tag": "prod-stable", "istio.io/rev": "default-v1-27-9" });
    expect(mwc.webhooks?.map((w) => w.name)).toEqual([
      "rev.namespace.sidecar-injector.istio.io",
      "rev.object.sidecar-injector.istio.io",
    ]);
    expect(JSON.stringify(mwc.webhooks?.[0]?.namespaceSelector)).toContain('"values":["prod-stable"]');
    expect(mwc.webhooks?.every((w) => w.clientConfig.url === "https://127.0.0.1:1/inject")).toBe(true);
    expect(svc.metadata?.name).toBe("istiod-revision-tag-prod-stable");
    expect(svc.spec?.selector).toEqual({ app: "istiod", "istio.io/rev": "default-v1-27-9" });
    expect(rest).toEqual([]);
  });

  test("default: also istio-injection=enabled and sidecar.istio.io/inject=true, and istiod-default-validator", () => {
    const [mwc, , validator] = renderTag({ ...input, tag: "default" });
    expect(mwc.webhooks?.map((w) => w.name)).toEqual([
      "rev.namespace.sidecar-injector.istio.io",
      "rev.object.sidecar-injector.istio.io",
      "namespace.sidecar-injector.istio.io",
      "object.sidecar-injector.istio.io",
    ]);
    expect(validator?.metadata?.name).toBe("istiod-default-validator");
    expect(validator?.metadata?.labels?.["istio.io/rev"]).toBe("default-v1-27-9");
    expect(validator?.webhooks?.[0]?.clientConfig.url).toBe("https://127.0.0.1:1/validate");
  });

  test("outside istio-system the injector's name carries the namespace, as upstream names it", () => {
    const [mwc] = renderTag({ ...input, tag: "canary", namespace: "mesh" });
    expect(mwc.metadata?.name).toBe("istio-revision-tag-canary-mesh");
  });
});
