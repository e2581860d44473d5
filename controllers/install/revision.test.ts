import { describe, expect, test } from "vitest";
import { renderRevision } from "./render.ts";
import { istiodName, service, webhookConfigurations } from "./revision.ts";

const canary = { name: "canary", namespace: "istio-system" };
const stable = { name: "default", namespace: "istio-system" };

describe("revision objects", () => {
  test("the default revision is istiod, others istiod-<rev>", () => {
    expect(istiodName("default")).toBe("istiod");
    expect(istiodName("")).toBe("istiod");
    expect(istiodName("canary")).toBe("istiod-canary");
  });

  test("the Service exposes upstream's ports and selects only its revision's pods", () => {
    const svc = service(canary);
    expect(svc.metadata?.name).toBe("istiod-canary");
    expect(svc.spec?.ports?.map((p) => [p.name, p.port, p.targetPort ?? p.port])).toEqual([
      ["grpc-xds", 15010, 15010],
      ["https-dns", 15012, 15012],
      ["https-webhook", 443, 15017],
      ["http-monitoring", 15014, 15014],
    ]);
    expect(svc.spec?.selector).toEqual({ app: "istiod", "istio.io/rev": "canary" });
  });

  test("webhooks call the revision's Service on 443, or an external control plane's URL", () => {
    const [mutating, ...validating] = webhookConfigurations(canary, { isDefault: false });
    expect(mutating.metadata?.name).toBe("istio-sidecar-injector-canary");
    expect(mutating.webhooks?.[0]?.clientConfig).toEqual({
      service: { name: "istiod-canary", namespace: "istio-system", path: "/inject", port: 443 },
    });
    expect(validating.map((v) => v.metadata?.name)).toEqual(["istio-validator-canary-istio-system"]);
    expect(validating[0]?.webhooks?.[0]?.clientConfig?.service?.path).toBe("/validate");

    const [external] = webhookConfigurations(stable, { isDefault: true, externalUrl: "https://istiod.example.com:15017/" });
    expect(external.webhooks?.map((w) => w.clientConfig?.url)).toEqual(Array(4).fill("https://istiod.example.com:15017/inject"));
  });

  test("a default revision renders the default rows and the default validator too", () => {
    const kinds = renderRevision(stable, { isDefault: true, image: "rigger:test" }).map((o) => {
      const obj = o as { kind: string; metadata: { name: string } };
      return `${obj.kind}/${obj.metadata.name}`;
    });
    expect(kinds).toEqual([
      "ConfigMap/istio",
      "ConfigMap/istio-sidecar-injector",
      "ServiceAccount/istiod",
      "Role/istiod",
      "RoleBinding/istiod",
      "ClusterRole/istiod-clusterrole-istio-system",
      "ClusterRoleBinding/istiod-clusterrole-istio-system",
      "ClusterRoleBinding/istiod-credentials-istio-system",
      "Service/istiod",
      "Deployment/istiod",
      "PodDisruptionBudget/istiod",
      "HorizontalPodAutoscaler/istiod",
      "MutatingWebhookConfiguration/istio-sidecar-injector",
      "ValidatingWebhookConfiguration/istio-validator-istio-system",
      "ValidatingWebhookConfiguration/istiod-default-validator",
    ]);
  });

  test("once a default tag exists, the default revision's injector is kept but matches nothing", () => {
    const [mwc, ...validators] = webhookConfigurations(stable, { isDefault: false, deactivated: true });
    expect(mwc.metadata?.name).toBe("istio-sidecar-injector");
    const never = { matchExpressions: [{ key: "istio.io/deactivated", operator: "In", values: ["never-match"] }] };
    expect(mwc.webhooks?.map((w) => [w.namespaceSelector, w.objectSelector])).toEqual(mwc.webhooks?.map(() => [never, never]));
    // istiod-default-validator now belongs to the tag.
    expect(validators.map((v) => v.metadata?.name)).toEqual(["istio-validator-istio-system"]);
  });
});
