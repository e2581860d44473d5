import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, test } from "vitest";
import { parse } from "yaml";
import { parseInjectorConfig, parseMeshConfig, parseValues } from "../../webhooks/inject/config.ts";
import { inject } from "../../webhooks/inject/inject.ts";
import { injectorConfigMap, meshConfigMap, type RevisionSpec } from "./configmaps.ts";

const pod: V1Pod = {
  metadata: { name: "web", namespace: "shop", labels: { app: "web" } },
  spec: { containers: [{ name: "web", image: "nginx" }] },
};

/** What a control plane reading these ConfigMaps would inject. */
function injectWith(spec: RevisionSpec, input: V1Pod = pod) {
  const injector = injectorConfigMap(spec);
  const mesh = meshConfigMap(spec);
  return inject(
    { pod: input },
    {
      injector: parseInjectorConfig(injector.data?.config ?? ""),
      values: parseValues(injector.data?.values ?? "{}"),
      mesh: parseMeshConfig(mesh.data?.mesh ?? ""),
      revision: spec.name === "default" ? "" : spec.name,
      nativeSidecars: false,
    },
  );
}

describe("revision ConfigMaps", () => {
  test("names follow upstream: no suffix for the default revision, -<rev> otherwise", () => {
    expect(injectorConfigMap({ name: "default", namespace: "istio-system" }).metadata?.name).toBe("istio-sidecar-injector");
    expect(meshConfigMap({ name: "default", namespace: "istio-system" }).metadata?.name).toBe("istio");
    const canary = { name: "canary", namespace: "istio-system" };
    expect(injectorConfigMap(canary).metadata?.name).toBe("istio-sidecar-injector-canary");
    expect(meshConfigMap(canary).metadata?.labels).toEqual({
      "istio.io/rev": "canary",
      "app.kubernetes.io/managed-by": "rigger",
    });
  });

  test("a control plane reading them injects the revision's image, CA address and mesh settings", () => {
    const result = injectWith({
      name: "canary",
      namespace: "mesh-system",
      version: "1.27.9",
      values: { global: { hub: "registry.example/istio" }, meshConfig: { trustDomain: "example.org" } },
    });
    if (result.kind !== "injected") throw new Error(result.reason);
    const proxy = result.pod.spec?.containers.find((c) => c.name === "istio-proxy");
    expect(proxy?.image).toBe("registry.example/istio/proxyv2:1.27.9");
    const env = Object.fromEntries((proxy?.env ?? []).map((e) => [e.name, e.value]));
    expect(env.CA_ADDR).toBe("istiod-canary.mesh-system.svc:15012");
    expect(env.TRUST_DOMAIN).toBe("example.org");
    expect(result.pod.metadata?.annotations?.["istio.io/rev"]).toBe("canary");
  });

  test("the injection policy and selectors come from the spec", () => {
    const spec: RevisionSpec = {
      name: "default",
      namespace: "istio-system",
      values: { sidecarInjectorWebhook: { policy: "disabled", alwaysInjectSelector: [{ matchLabels: { mesh: "yes" } }] } },
    };
    expect(injectWith(spec)).toEqual({ kind: "skipped", reason: "injection policy is disabled" });
    const labelled = { ...pod, metadata: { ...pod.metadata, labels: { app: "web", mesh: "yes" } } };
    expect(injectWith(spec, labelled).kind).toBe("injected");
  });

  test("the mesh config keeps upstream's defaults and takes the user's settings over them", () => {
    const mesh = parse(
      meshConfigMap({ name: "default", namespace: "istio-system", values: { meshConfig: { enablePrometheusMerge: false } } }).data
        ?.mesh ?? "",
    );
    expect(mesh).toEqual({
      defaultConfig: { discoveryAddress: "istiod.istio-system.svc:15012" },
      enablePrometheusMerge: false,
      rootNamespace: "istio-system",
      trustDomain: "cluster.local",
    });
  });
});
