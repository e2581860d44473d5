// Sidecar injection on a real cluster: `rigger istiod` runs as a process on 127.0.0.1 for
// two revisions (default and canary), and MutatingWebhookConfigurations with upstream's
// selector matrix point at them by URL (until the operator creates them).
import type { V1Deployment, V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { injectionWebhookConfiguration } from "../webhooks/inject/webhook-configuration.ts";
import { type RunningIstiod, startRiggerIstiod } from "./support/istiod.ts";
import { kubeClients, uniqueName, waitFor } from "./support/kube.ts";

const { core, apps, admission } = kubeClients();
const suffix = uniqueName("x").slice(2);
const ns = {
  enabled: `inj-enabled-${suffix}`,
  plain: `inj-plain-${suffix}`,
  canary: `inj-canary-${suffix}`,
};
let stable: RunningIstiod;
let canary: RunningIstiod;
const configs: string[] = [];

beforeAll(async () => {
  [stable, canary] = await Promise.all([startRiggerIstiod(""), startRiggerIstiod("canary")]);
  for (const [running, revision, isDefault] of [
    [stable, "", true],
    [canary, "canary", false],
  ] as const) {
    const config = injectionWebhookConfiguration({
      revision,
      isDefault,
      clientConfig: { url: `${running.baseUrl}/inject`, caBundle: running.caBundle },
    });
    // Names carry the run's suffix so parallel or leftover runs never collide.
    config.metadata = { ...config.metadata, name: `${config.metadata?.name}-${suffix}` };
    await admission.createMutatingWebhookConfiguration({ body: config });
    configs.push(config.metadata.name as string);
  }
  await core.createNamespace({ body: { metadata: { name: ns.enabled, labels: { "istio-injection": "enabled" } } } });
  await core.createNamespace({ body: { metadata: { name: ns.plain } } });
  await core.createNamespace({ body: { metadata: { name: ns.canary, labels: { "istio.io/rev": "canary" } } } });
  // The apiserver loads new webhook configurations asynchronously: wait until a dry-run pod is injected.
  await waitFor("the injection webhooks to take effect", async () => {
    const dry = await core.createNamespacedPod({ namespace: ns.enabled, body: pod(uniqueName("probe")), dryRun: "All" });
    return containerNames(dry).includes("istio-proxy") ? true : undefined;
  });
});

afterAll(async () => {
  for (const name of configs) await admission.deleteMutatingWebhookConfiguration({ name }).catch(() => undefined);
  for (const name of Object.values(ns)) await core.deleteNamespace({ name }).catch(() => undefined);
  await Promise.all([stable?.stop(), canary?.stop()]);
});

function pod(name: string, labels: Record<string, string> = {}): V1Pod {
  return {
    metadata: { name, labels: { app: "web", ...labels } },
    spec: { containers: [{ name: "web", image: "nginx:1.27", ports: [{ containerPort: 80, name: "http" }] }] },
  };
}

function containerNames(p: V1Pod): string[] {
  return [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])].map((c) => c.name);
}

describe("injection on a real cluster", () => {
  test("a Deployment in a namespace labelled istio-injection=enabled gets istio-init and istio-proxy, and its pods run", async () => {
    const deployment: V1Deployment = {
      metadata: { name: "web", namespace: ns.enabled },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: "web" } },
        template: { metadata: { labels: { app: "web" } }, spec: pod("x").spec },
      },
    };
    await apps.createNamespacedDeployment({ namespace: ns.enabled, body: deployment });
    const pods = await waitFor("2 ready pods of Deployment web", async () => {
      const list = await core.listNamespacedPod({ namespace: ns.enabled, labelSelector: "app=web" });
      const ready = list.items.filter((p) => p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"));
      return ready.length === 2 ? ready : undefined;
    });
    for (const p of pods) {
      expect(p.spec?.initContainers?.map((c) => c.name)).toEqual(["istio-init"]);
      expect(p.spec?.containers.map((c) => c.name)).toEqual(["web", "istio-proxy"]);
      expect(p.metadata?.labels?.["security.istio.io/tlsMode"]).toBe("istio");
      expect(p.metadata?.labels?.["service.istio.io/canonical-name"]).toBe("web");
      expect(p.metadata?.annotations?.["istio.io/rev"]).toBe("default");
      const proxy = p.spec?.containers.find((c) => c.name === "istio-proxy");
      expect(proxy?.env?.find((e) => e.name === "ISTIO_META_OWNER")?.value).toBe(
        `kubernetes://apis/apps/v1/namespaces/${ns.enabled}/deployments/web`,
      );
      expect(proxy?.image).toBe("docker.io/istio/proxyv2:1.27.9");
    }
  });

  test("a pod in an unlabelled namespace is not injected", async () => {
    await core.createNamespacedPod({ namespace: ns.plain, body: pod("plain") });
    const stored = await core.readNamespacedPod({ name: "plain", namespace: ns.plain });
    expect(containerNames(stored)).toEqual(["web"]);
    expect(stored.metadata?.annotations?.["sidecar.istio.io/status"]).toBeUndefined();
  });

  test("a pod labelled sidecar.istio.io/inject=false is not injected, even in an enabled namespace", async () => {
    await core.createNamespacedPod({ namespace: ns.enabled, body: pod("opted-out", { "sidecar.istio.io/inject": "false" }) });
    const stored = await core.readNamespacedPod({ name: "opted-out", namespace: ns.enabled });
    expect(containerNames(stored)).toEqual(["web"]);
  });

  test("a namespace labelled istio.io/rev=canary is injected by the canary revision", async () => {
    await core.createNamespacedPod({ namespace: ns.canary, body: pod("canaried") });
    const stored = await core.readNamespacedPod({ name: "canaried", namespace: ns.canary });
    expect(containerNames(stored)).toEqual(["istio-init", "web", "istio-proxy"]);
    expect(stored.metadata?.annotations?.["istio.io/rev"]).toBe("canary");
    const proxy = stored.spec?.containers.find((c) => c.name === "istio-proxy");
    expect(proxy?.env?.find((e) => e.name === "CA_ADDR")?.value).toBe("istiod-canary.istio-system.svc:15012");
  });

  test("a pod labelled istio.io/rev=canary in an unlabelled namespace is injected by the canary revision", async () => {
    await core.createNamespacedPod({ namespace: ns.plain, body: pod("object-canary", { "istio.io/rev": "canary" }) });
    const stored = await core.readNamespacedPod({ name: "object-canary", namespace: ns.plain });
    expect(stored.metadata?.annotations?.["istio.io/rev"]).toBe("canary");
  });

  test("a pod with an invalid injection annotation is rejected with the annotation's name and value", async () => {
    const bad = pod("bad");
    bad.metadata = { ...bad.metadata, annotations: { "sidecar.istio.io/interceptionMode": "SPLICE" } };
    const error = await core.createNamespacedPod({ namespace: ns.enabled, body: bad }).catch((err: { body?: string }) => err);
    expect(String((error as { body?: string }).body)).toContain(
      "invalid value 'SPLICE' for annotation 'sidecar.istio.io/interceptionMode'",
    );
  });
});

describe("rigger inject --kubeconfig", () => {
  test("uses the injection settings installed in the cluster", async () => {
    const { spawnSync } = await import("node:child_process");
    const { readFileSync } = await import("node:fs");
    const controlPlane = `inj-cp-${suffix}`;
    const settings = new URL("../webhooks/inject/testdata/settings/", import.meta.url);
    const values = JSON.parse(readFileSync(new URL("values.json", settings), "utf8"));
    values.global.hub = "registry.example/mesh";
    values.global.tag = "9.9";
    await core.createNamespace({ body: { metadata: { name: controlPlane } } });
    try {
      await core.createNamespacedConfigMap({
        namespace: controlPlane,
        body: {
          metadata: { name: "istio-sidecar-injector" },
          data: { config: readFileSync(new URL("inject-config.yaml", settings), "utf8"), values: JSON.stringify(values) },
        },
      });
      await core.createNamespacedConfigMap({
        namespace: controlPlane,
        body: { metadata: { name: "istio" }, data: { mesh: "trustDomain: example.org\n" } },
      });
      const rigger = new URL("../cmd/rigger.ts", import.meta.url).pathname;
      const input = JSON.stringify({ apiVersion: "v1", kind: "Pod", ...pod("from-cli") });
      const args = [rigger, "inject", "--kubeconfig", inject("kubeconfig"), "--namespace", controlPlane, "-f", "-"];
      const result = spawnSync(process.execPath, args, { input, encoding: "utf8" });
      expect(result.stderr).toBe("");
      expect(result.status).toBe(0);
      expect(result.stdout).toContain("image: registry.example/mesh/proxyv2:9.9");
      expect(result.stdout).toContain("value: example.org"); // TRUST_DOMAIN from the cluster's mesh config
      const missing = spawnSync(process.execPath, [...args.slice(0, 5), "nowhere", "-f", "-"], { input, encoding: "utf8" });
      expect(missing.status).toBe(1);
      expect(missing.stderr).toContain("ConfigMap nowhere/istio-sidecar-injector not found");
    } finally {
      await core.deleteNamespace({ name: controlPlane });
    }
  });
});
