import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { V1Pod } from "@kubernetes/client-node";
import fastJsonPatch, { type Operation } from "fast-json-patch";
import { describe, expect, test } from "vitest";
import { parseAllDocuments } from "yaml";
import { parseInjectorConfig, parseMeshConfig, parseValues } from "./config.ts";
import { type InjectionSettings, inject } from "./inject.ts";
import { proxyEnvsFromPath, reviewInjection } from "./review.ts";

const testdata = fileURLToPath(new URL("./testdata/", import.meta.url));
const settings = (over: Partial<InjectionSettings> = {}): InjectionSettings => ({
  injector: parseInjectorConfig(readFileSync(join(testdata, "settings/inject-config.yaml"), "utf8")),
  values: parseValues(readFileSync(join(testdata, "settings/values.json"), "utf8")),
  mesh: parseMeshConfig(readFileSync(join(testdata, "settings/mesh.yaml"), "utf8")),
  revision: "",
  nativeSidecars: false,
  ...over,
});

/** Every Pod and pod template in the golden inputs, as a pod. */
function corpusPods(): [string, V1Pod][] {
  const pods: [string, V1Pod][] = [];
  const cases = join(testdata, "cases");
  for (const file of readdirSync(cases).filter(
    (f) => f.endsWith(".yaml") && !f.includes(".injected.") && !f.startsWith("errors-"),
  )) {
    for (const doc of parseAllDocuments(readFileSync(join(cases, file), "utf8"))) {
      const o = doc.toJS();
      const items = o?.kind === "List" ? o.items : [o];
      for (const item of items) {
        if (item?.kind === "Pod") pods.push([`${file} ${item.metadata.name}`, item]);
        else if (item?.spec?.template?.spec)
          pods.push([`${file} ${item.kind}`, { metadata: item.spec.template.metadata ?? {}, spec: item.spec.template.spec }]);
      }
    }
  }
  return pods;
}

describe("re-injection", () => {
  for (const native of [false, true]) {
    test.each(corpusPods())(`injecting twice equals injecting once (native=${native}): %s`, (_, pod) => {
      const s = settings({ nativeSidecars: native });
      const once = inject({ pod }, s);
      if (once.kind === "skipped") return;
      const twice = inject({ pod: once.pod }, s);
      expect(twice).toEqual(once);
    });
  }
});

describe("webhook-only settings", () => {
  const pod: V1Pod = {
    metadata: { name: "p", namespace: "ns", labels: { app: "p" } },
    spec: { containers: [{ name: "app", image: "a" }] },
  };

  test("the revision names the control plane in CA_ADDR, istio.io/rev and the status", () => {
    const s = settings({ revision: "canary" });
    s.values = { ...s.values, revision: "canary" };
    const result = inject({ pod }, s);
    if (result.kind !== "injected") throw new Error("not injected");
    const proxy = result.pod.spec?.containers.find((c) => c.name === "istio-proxy");
    expect(proxy?.env?.find((e) => e.name === "CA_ADDR")?.value).toBe("istiod-canary.istio-system.svc:15012");
    expect(result.pod.metadata?.annotations?.["istio.io/rev"]).toBe("canary");
    expect(JSON.parse(result.pod.metadata?.annotations?.["sidecar.istio.io/status"] ?? "{}").revision).toBe("canary");
  });

  test("injectedAnnotations from the injector config are added", () => {
    const s = settings();
    s.injector = { ...s.injector, injectedAnnotations: { "example.com/injected": "yes" } };
    const result = inject({ pod }, s);
    expect(result.kind === "injected" && result.pod.metadata?.annotations?.["example.com/injected"]).toBe("yes");
  });

  test("cluster and network from the webhook path become proxy env and the network label", () => {
    expect(proxyEnvsFromPath("/inject/cluster/east/net/net--slash--1")).toEqual({
      ISTIO_META_CLUSTER_ID: "east",
      ISTIO_META_NETWORK: "net/1",
    });
    const result = inject({ pod, proxyEnvs: { ISTIO_META_CLUSTER_ID: "east", ISTIO_META_NETWORK: "n1" } }, settings());
    if (result.kind !== "injected") throw new Error("not injected");
    const env = result.pod.spec?.containers.find((c) => c.name === "istio-proxy")?.env ?? [];
    expect(env.slice(-2)).toEqual([
      { name: "ISTIO_META_CLUSTER_ID", value: "east" },
      { name: "ISTIO_META_NETWORK", value: "n1" },
    ]);
    expect(env.filter((e) => e.name === "ISTIO_META_CLUSTER_ID")).toHaveLength(1);
    expect(result.pod.metadata?.labels?.["topology.istio.io/network"]).toBe("n1");
  });

  test("an unknown template is an error naming it and the known ones", () => {
    const annotated = { ...pod, metadata: { ...pod.metadata, annotations: { "inject.istio.io/templates": "nope" } } };
    expect(() => inject({ pod: annotated }, settings())).toThrow(/requested template "nope" not found; have sidecar, gateway/);
  });

  test("neverInjectSelector applies in the webhook", () => {
    const s = settings();
    s.injector = { ...s.injector, neverInjectSelector: [{ matchLabels: { app: "p" } }] };
    expect(inject({ pod }, s)).toEqual({ kind: "skipped", reason: "pod labels match neverInjectSelector" });
  });
});

describe("reviewInjection", () => {
  const review = (apiVersion: string, object: unknown) => ({
    apiVersion,
    kind: "AdmissionReview",
    request: { uid: "0b6b4f6e-0000-4000-8000-000000000001", namespace: "ns", object },
  });
  const pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { generateName: "web-", labels: { app: "web" } },
    spec: { containers: [{ name: "app", image: "a" }] },
  };

  test.each(["admission.k8s.io/v1", "admission.k8s.io/v1beta1"])("%s: echoes apiVersion and uid, and patches", (apiVersion) => {
    const outcome = reviewInjection(review(apiVersion, pod), "/inject", settings());
    if (outcome.outcome !== "injected") throw new Error(outcome.outcome);
    const response = outcome.review as { apiVersion: string; response: { uid: string; patch: string; patchType: string } };
    expect(response.apiVersion).toBe(apiVersion);
    expect(response.response.uid).toBe("0b6b4f6e-0000-4000-8000-000000000001");
    expect(response.response.patchType).toBe("JSONPatch");
    const patch = JSON.parse(Buffer.from(response.response.patch, "base64").toString()) as { op: string; path: string }[];
    // Annotation keys with "/" are escaped as ~1 in JSON pointers.
    expect(patch.some((op) => op.path.includes("sidecar.istio.io~1status") || op.path === "/metadata/annotations")).toBe(true);
    expect(patch.every((op) => ["add", "replace", "remove"].includes(op.op))).toBe(true);
  });

  test("an invalid annotation denies the pod with the annotation's name and value", () => {
    const bad = { ...pod, metadata: { ...pod.metadata, annotations: { "sidecar.istio.io/interceptionMode": "SPLICE" } } };
    const outcome = reviewInjection(review("admission.k8s.io/v1", bad), "/inject", settings());
    expect(outcome.outcome).toBe("denied");
    const r =
      outcome.outcome === "denied"
        ? (outcome.review as { response: { allowed: boolean; status: { message: string } } })
        : undefined;
    expect(r?.response.allowed).toBe(false);
    expect(r?.response.status.message).toContain("invalid value 'SPLICE' for annotation 'sidecar.istio.io/interceptionMode'");
  });

  test("managedFields are neither cloned into the result nor touched by the patch, and the request is not changed", () => {
    const managed = { ...pod, metadata: { ...pod.metadata, managedFields: [{ manager: "kubectl", operation: "Update" }] } };
    const before = structuredClone(managed);
    const outcome = reviewInjection(review("admission.k8s.io/v1", managed), "/inject", settings());
    if (outcome.outcome !== "injected") throw new Error(outcome.outcome);
    expect(outcome.patch.some((op) => JSON.stringify(op).includes("managedFields"))).toBe(false);
    expect(managed).toEqual(before);
  });

  test.each([
    ["not an object", [1, 2]],
    ["wrong kind", { apiVersion: "admission.k8s.io/v1", kind: "Pod" }],
    ["no uid", { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: {} }],
  ])("%s is invalid", (_, body) => {
    expect(reviewInjection(body, "/inject", settings()).outcome).toBe("invalid");
  });
});

describe("malformed input is denied by name, never a crash", () => {
  const review = (object: unknown, path = "/inject") =>
    reviewInjection(
      { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: { uid: "u1", namespace: "ns", object } },
      path,
      settings(),
    );
  const basePod = { kind: "Pod", metadata: { name: "p" }, spec: { containers: [{ name: "app", image: "app" }] } };
  const denial = (outcome: ReturnType<typeof review>) => (outcome.outcome === "denied" ? outcome.message : outcome.outcome);

  test("a proxyCPU of 1e99999999 is denied at once (under 10 ms, best of three), naming the annotation", () => {
    const pod = { ...basePod, metadata: { name: "p", annotations: { "sidecar.istio.io/proxyCPU": "1e99999999" } } };
    const best = Math.min(
      ...[0, 1, 2].map(() => {
        const started = performance.now();
        review(pod);
        return performance.now() - started;
      }),
    );
    expect(best).toBeLessThan(10);
    expect(denial(review(pod))).toBe(
      "injection of pod ns/p failed: invalid value '1e99999999' for annotation 'sidecar.istio.io/proxyCPU': quantity out of range: must be between 0 and 9223372036854775807",
    );
  });

  test.each([
    [{ ...basePod, spec: { containers: "app" } }, "pod.spec.containers: expected a list, got a string"],
    [
      { ...basePod, metadata: { name: "p", annotations: { a: 5 } } },
      "pod.metadata.annotations.a: expected a string, got a number",
    ],
    [{ ...basePod, metadata: { name: 7 } }, "pod.metadata.name: expected a string, got a number"],
    [{ ...basePod, spec: { containers: [null] } }, "pod.spec.containers[0]: expected an object, got null"],
    [
      { ...basePod, spec: { containers: [{ name: "a", ports: [{ containerPort: "80" }] }] } },
      "pod.spec.containers[0].ports[0].containerPort: expected a number, got a string",
    ],
    [{ ...basePod, spec: [] }, "pod.spec: expected an object, got a list"],
  ])("%j is denied: %s", (pod, message) => {
    expect(denial(review(pod))).toContain(message);
  });

  test("nulls are read as absent: containers: null injects, and the patch applies to the pod as sent", () => {
    const pod = {
      ...basePod,
      metadata: { name: "p", labels: null, annotations: null },
      spec: { containers: null, initContainers: null },
    };
    const outcome = review(pod);
    if (outcome.outcome !== "injected") throw new Error(`not injected: ${JSON.stringify(outcome)}`);
    const patched = fastJsonPatch.applyPatch(structuredClone(pod), outcome.patch as Operation[], true)
      .newDocument as unknown as V1Pod;
    expect(patched.spec?.containers.map((c) => c.name)).toEqual(["istio-proxy"]);
    expect(patched.metadata?.labels?.["security.istio.io/tlsMode"]).toBe("istio");
  });

  test("a huge annotation value is refused by its size, not parsed", () => {
    const big = "x: ".padEnd(40 * 1024, "y");
    const pod = { ...basePod, metadata: { name: "p", annotations: { "proxy.istio.io/config": big } } };
    expect(denial(review(pod))).toContain(
      "value of annotation 'proxy.istio.io/config' is 40960 bytes long; at most 32768 are accepted",
    );
  });

  test("a path that is not valid percent-encoding is a 4xx, named", () => {
    const outcome = review(basePod, "/inject/cluster/%E0");
    expect(outcome).toEqual({ outcome: "invalid", message: "webhook path /inject/cluster/%E0 is not valid percent-encoding" });
  });
});
