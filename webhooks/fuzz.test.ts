// Property and fuzz tests (fast-check) over everything a caller of the webhooks controls:
// the AdmissionReview envelope, the pod given to inject(), the object given to validate(),
// and quantity text. Inputs start from the real corpora (the injection goldens' pods, the
// validation corpus) and are mutated field by field: wrong types, nulls, huge and odd
// strings, quantity-shaped values, deleted fields.
//
// Properties: no call throws anything but the errors it documents; each call finishes in
// under 50 ms (the best of three timings, so a garbage-collection pause is not blamed on the
// input); an injection's JSON patch applies cleanly to the pod as sent and yields inject()'s
// pod; canonical quantities are fixed points.
//
// `make test` runs a bounded, fixed-seed pass (FUZZ_RUNS, default 200 per property);
// `make fuzz` runs 20,000 per property with a fresh seed and prints it, so a failure can be
// replayed with FUZZ_SEED.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { V1Pod } from "@kubernetes/client-node";
import fc from "fast-check";
import fastJsonPatch, { type Operation } from "fast-json-patch";
import { expect, test } from "vitest";
import { parseAllDocuments } from "yaml";
import { parseInjectorConfig, parseMeshConfig, parseValues } from "./inject/config.ts";
import { InjectionError, type InjectionSettings, inject } from "./inject/inject.ts";
import { withoutNulls } from "./inject/pod-shape.ts";
import { canonicalQuantity, parseQuantity } from "./inject/quantity.ts";
import { proxyEnvsFromPath, reviewInjection } from "./inject/review.ts";
import { reviewValidation } from "./validate/review.ts";
import { loadCorpus } from "./validate/testdata/corpus.ts";
import { validate } from "./validate/validate.ts";

const RUNS = Number(process.env.FUZZ_RUNS ?? 200);
const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : process.env.FUZZ_RUNS ? Date.now() : 20261129;
const PER_CALL_MS = 50;
// A property's time limit: generous for the bounded pass, scaled for `make fuzz`.
const TIMEOUT = Math.max(120_000, RUNS * 100);
if (process.env.FUZZ_RUNS) console.log(`fuzz: ${RUNS} runs per property, seed ${SEED} (replay with FUZZ_SEED=${SEED})`);
const params = { numRuns: RUNS, seed: SEED, endOnFailure: true };

const testdata = fileURLToPath(new URL("./inject/testdata/", import.meta.url));
const settings: InjectionSettings = {
  injector: parseInjectorConfig(readFileSync(join(testdata, "settings/inject-config.yaml"), "utf8")),
  values: parseValues(readFileSync(join(testdata, "settings/values.json"), "utf8")),
  mesh: parseMeshConfig(readFileSync(join(testdata, "settings/mesh.yaml"), "utf8")),
  revision: "",
  nativeSidecars: false,
};

/** Every Pod and pod template in the injection goldens' inputs. */
function corpusPods(): V1Pod[] {
  const pods: V1Pod[] = [];
  const cases = join(testdata, "cases");
  for (const file of readdirSync(cases).filter((f) => f.endsWith(".yaml") && !f.includes(".injected."))) {
    for (const doc of parseAllDocuments(readFileSync(join(cases, file), "utf8"))) {
      const o = doc.toJS();
      for (const item of o?.kind === "List" ? o.items : [o]) {
        if (item?.kind === "Pod") pods.push(item);
        else if (item?.spec?.template?.spec)
          pods.push({ kind: "Pod", metadata: item.spec.template.metadata ?? {}, spec: item.spec.template.spec });
      }
    }
  }
  return pods;
}

const pods = corpusPods();
const configs = loadCorpus().map((c) => c.object);

/** Strings a parser can trip on. */
const nastyString = fc.oneof(
  fc.string(),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom(
    "",
    " ",
    "null",
    "-1",
    "1e99999999",
    "1e-99999999",
    "%E0",
    "*",
    "0/0",
    "::",
    "a".repeat(5000),
    "{{",
    "#{x}",
    "\u0000",
    "🙂",
  ),
  fc.stringMatching(/^[+-]?\d{0,30}(\.\d{0,12})?([eE][+-]?\d{1,12}|Ki|Mi|Gi|Ei|[numkMGTPE])?$/),
);
// JSON has no NaN or Infinity, so neither can reach the webhook.
const leaf = fc.oneof(
  nastyString,
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
  fc.constant([]),
  fc.constant({}),
);
const value = fc.oneof(
  { depthSize: "small" },
  leaf,
  fc.array(leaf, { maxLength: 3 }),
  fc.dictionary(nastyString, leaf, { maxKeys: 3 }),
);

/** Istio annotations inject() reads, with values from the same nasty pool. */
const ISTIO_ANNOTATIONS = [
  "sidecar.istio.io/proxyCPU",
  "sidecar.istio.io/proxyMemory",
  "sidecar.istio.io/proxyCPULimit",
  "sidecar.istio.io/proxyMemoryLimit",
  "sidecar.istio.io/interceptionMode",
  "sidecar.istio.io/inject",
  "sidecar.istio.io/userVolume",
  "sidecar.istio.io/userVolumeMount",
  "sidecar.istio.io/proxyImage",
  "sidecar.istio.io/logLevel",
  "sidecar.istio.io/componentLogLevel",
  "sidecar.istio.io/bootstrapOverride",
  "sidecar.istio.io/statsInclusionPrefixes",
  "sidecar.istio.io/agentLogLevel",
  "status.sidecar.istio.io/port",
  "readiness.status.sidecar.istio.io/initialDelaySeconds",
  "traffic.sidecar.istio.io/includeOutboundIPRanges",
  "traffic.sidecar.istio.io/excludeOutboundIPRanges",
  "traffic.sidecar.istio.io/includeInboundPorts",
  "traffic.sidecar.istio.io/excludeInboundPorts",
  "traffic.sidecar.istio.io/excludeOutboundPorts",
  "traffic.sidecar.istio.io/kubevirtInterfaces",
  "proxy.istio.io/config",
  "proxy.istio.io/overrides",
  "inject.istio.io/templates",
  "prometheus.istio.io/merge-metrics",
  "istio.io/rewriteAppHTTPProbers",
  "sidecar.istio.io/status",
];

type Json = Record<string, unknown>;
interface Mutation {
  /** Which path to touch: indexes into the object's keys at each level, taken modulo their count. */
  steps: number[];
  action: "set" | "delete" | "add";
  key: string;
  value: unknown;
}

const mutation: fc.Arbitrary<Mutation> = fc.record({
  steps: fc.array(fc.nat(), { minLength: 0, maxLength: 6 }),
  action: fc.constantFrom("set", "delete", "add"),
  key: fc.oneof(
    nastyString,
    fc.constantFrom("containers", "initContainers", "ports", "annotations", "labels", "resources", "name"),
  ),
  value,
});

/** Applies a mutation somewhere inside `root` (a copy is changed, not the corpus). */
function mutate(root: Json, m: Mutation): void {
  let node: unknown = root;
  for (const step of m.steps) {
    const children = node !== null && typeof node === "object" ? Object.keys(node) : [];
    const next = children.length > 0 ? (node as Json)[children[step % children.length] ?? ""] : undefined;
    if (next === null || typeof next !== "object") break;
    node = next;
  }
  if (node === null || typeof node !== "object") return;
  const target = node as Json;
  const keys = Object.keys(target);
  const existing = keys.length > 0 ? keys[(m.steps.at(-1) ?? 0) % keys.length] : undefined;
  // A copy per insertion: fast-check shares constant values between runs, and JSON has no shared or cyclic nodes.
  const inserted = structuredClone(m.value);
  if (m.action === "delete" && Array.isArray(target)) target.splice(Number(existing ?? 0), 1);
  else if (m.action === "delete" && existing !== undefined) delete target[existing];
  else if (m.action === "set" && existing !== undefined) target[existing] = inserted;
  else if (Array.isArray(target)) target.push(inserted);
  else target[m.key] = inserted;
}

const mutatedPod = fc
  .record({
    pod: fc.constantFrom(...pods),
    mutations: fc.array(mutation, { maxLength: 4 }),
    annotations: fc.dictionary(fc.constantFrom(...ISTIO_ANNOTATIONS), fc.oneof(nastyString, leaf), { maxKeys: 3 }),
  })
  .map(({ pod, mutations, annotations }) => {
    const copy = structuredClone(pod) as Json & { metadata?: Json };
    if (copy.metadata && typeof copy.metadata === "object") {
      copy.metadata.annotations = { ...((copy.metadata.annotations as Json) ?? {}), ...structuredClone(annotations) };
    }
    for (const m of mutations) mutate(copy, m);
    return copy;
  });

const mutatedConfig = fc
  .record({ config: fc.constantFrom(...configs), mutations: fc.array(mutation, { minLength: 1, maxLength: 4 }) })
  .map(({ config, mutations }) => {
    const copy = structuredClone(config) as Json;
    for (const m of mutations) mutate(copy, m);
    return copy;
  });

/** An AdmissionReview around `object`, or something that only looks like one. */
const envelope = (object: fc.Arbitrary<unknown>) =>
  fc.oneof(
    {
      weight: 8,
      arbitrary: object.map((o) => ({
        apiVersion: "admission.k8s.io/v1",
        kind: "AdmissionReview",
        request: { uid: "u", namespace: "ns", operation: "CREATE", object: o },
      })),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        apiVersion: fc.oneof(nastyString, leaf),
        kind: fc.oneof(fc.constant("AdmissionReview"), nastyString),
        request: value,
      }),
    },
    { weight: 1, arbitrary: value },
  );

/**
 * Runs `call` and fails when it is slow three times in a row: once or twice can be a
 * garbage-collection pause or another process on a busy machine; unbounded work (the issue
 * this guards against) is slow every time.
 */
function timed<T>(call: () => T): T {
  let result = call();
  for (let attempt = 0; attempt < 3; attempt++) {
    const started = performance.now();
    result = call();
    if (performance.now() - started < PER_CALL_MS) return result;
  }
  expect.fail(`one call took ${PER_CALL_MS} ms or more three times in a row`);
}

test(
  "the injection webhook answers any body with an outcome, and an injection's patch applies to the pod as sent",
  () => {
    fc.assert(
      fc.property(
        envelope(mutatedPod),
        fc.oneof(
          fc.constant("/inject"),
          fc.string().map((s) => `/inject/${s}`),
        ),
        (body, path) => {
          const sent = structuredClone(body);
          const outcome = timed(() => reviewInjection(body, path, settings));
          expect(["injected", "skipped", "denied", "invalid"]).toContain(outcome.outcome);
          expect(body, "the request is not modified").toEqual(sent);
          if (outcome.outcome === "invalid" || outcome.outcome === "denied") expect(outcome.message).not.toBe("");
          if (outcome.outcome !== "injected") return;
          const pod = (sent as { request: { object: unknown } }).request.object;
          const patched = fastJsonPatch.applyPatch(structuredClone(pod), outcome.patch as Operation[], true, false).newDocument;
          const proxyEnvs = proxyEnvsFromPath(path);
          if (typeof proxyEnvs === "string") throw new Error(`injected despite a bad path: ${proxyEnvs}`);
          const direct = inject({ pod: pod as V1Pod, namespace: "ns", proxyEnvs }, settings);
          expect(direct.kind).toBe("injected");
          // Compared as the apiserver sees them: JSON (where -0 is 0).
          if (direct.kind === "injected") expect(asJson(withoutNulls(patched))).toEqual(asJson(direct.pod));
        },
      ),
      params,
    );
  },
  TIMEOUT,
);

test(
  "inject() throws nothing but InjectionError",
  () => {
    fc.assert(
      fc.property(fc.oneof({ weight: 9, arbitrary: mutatedPod }, { weight: 1, arbitrary: value }), (pod) => {
        try {
          timed(() => inject({ pod: pod as V1Pod, namespace: "ns" }, settings));
        } catch (err) {
          if (!(err instanceof InjectionError)) throw err;
        }
      }),
      params,
    );
  },
  TIMEOUT,
);

test(
  "the validation webhook answers any body, and validate() returns errors instead of throwing",
  () => {
    fc.assert(
      fc.property(envelope(fc.oneof({ weight: 9, arbitrary: mutatedConfig }, { weight: 1, arbitrary: value })), (body) => {
        const outcome = timed(() => reviewValidation(body));
        expect(["allowed", "denied", "invalid"]).toContain(outcome.outcome);
        const object = (body as { request?: { object?: unknown } } | null)?.request?.object;
        const result = timed(() => validate(object));
        expect(Array.isArray(result.errors) && Array.isArray(result.warnings)).toBe(true);
      }),
      params,
    );
  },
  TIMEOUT,
);

test(
  "quantities: parsing never throws, printing keeps the value, and printing settles",
  () => {
    fc.assert(
      fc.property(nastyString, (text) => {
        const q = timed(() => parseQuantity(text));
        if (!q) return;
        // Printed, re-read and printed again, the text settles (one round can change the format,
        // as in Kubernetes: "1.5Ki" prints as "1536", which reads back as a decimal quantity).
        const canonical = canonicalQuantity(canonicalQuantity(text));
        expect(canonicalQuantity(canonical)).toBe(canonical);
        const again = parseQuantity(canonical);
        expect(again && value10(again)).toEqual(value10(q));
      }),
      params,
    );
  },
  TIMEOUT,
);

/** A quantity's value as (digits, exponent) with trailing zeros moved into the exponent. */
function value10(q: { unscaled: bigint; exponent: number }): [bigint, number] {
  let { unscaled, exponent } = q;
  while (unscaled !== 0n && unscaled % 10n === 0n) {
    unscaled /= 10n;
    exponent++;
  }
  return [unscaled, unscaled === 0n ? 0 : exponent];
}

function asJson(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value));
}
