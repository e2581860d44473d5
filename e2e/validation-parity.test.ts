// Parity with upstream: the pinned release's istiod and `rigger istiod` get the same
// AdmissionReview for every case of the validation corpus; their allow/deny decisions
// must agree, except where webhooks/validate/testdata/intended-differences.yaml says
// why Rigger decides otherwise.
import { readFileSync } from "node:fs";
import { request } from "node:https";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { parse } from "yaml";
import { type CorpusCase, loadCorpus } from "../webhooks/validate/testdata/corpus.ts";
import { type RunningIstiod, startRiggerIstiod } from "./support/istiod.ts";
import { kubeClients } from "./support/kube.ts";
import { startUpstreamIstiod, type UpstreamIstiod } from "./support/upstream-istiod.ts";

const NAMESPACE = "rigger-validation-parity";
const { core } = kubeClients();
let upstream: UpstreamIstiod;
let rigger: RunningIstiod;

interface Difference {
  case: string;
  rigger: "allowed" | "denied";
  reason: string;
}
const differences = parse(
  readFileSync(new URL("../webhooks/validate/testdata/intended-differences.yaml", import.meta.url), "utf8"),
) as Difference[];

function decide(server: { baseUrl: string; caPem: string }, c: CorpusCase): Promise<{ allowed: boolean; message?: string }> {
  const uid = `${c.file}-${c.index}`.replace(/[^a-z0-9-]/gi, "-");
  const body = JSON.stringify({
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid,
      operation: "CREATE",
      namespace: "shop",
      kind: { group: "", version: "", kind: String(c.object.kind) },
      object: c.object,
    },
  });
  return new Promise((resolve, reject) => {
    const req = request(
      `${server.baseUrl}/validate`,
      { method: "POST", ca: server.caPem, headers: { "content-type": "application/json" } },
      (res) => {
        let text = "";
        res.on("data", (chunk) => {
          text += chunk;
        });
        res.on("end", () => {
          if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}: ${text}`));
          const response = JSON.parse(text).response;
          if (response.uid !== uid) return reject(new Error("uid not echoed"));
          resolve({ allowed: response.allowed, message: response.status?.message });
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

beforeAll(async () => {
  await core.createNamespace({ body: { metadata: { name: NAMESPACE } } }).catch((err: { code?: number }) => {
    if (err.code !== 409) throw err;
  });
  [upstream, rigger] = await Promise.all([
    startUpstreamIstiod(inject("kubeconfig"), NAMESPACE, "vparity"),
    startRiggerIstiod("vparity"),
  ]);
}, 120_000);

afterAll(async () => {
  await Promise.all([upstream?.stop(), rigger?.stop()]);
});

describe("validation parity with upstream istiod", () => {
  test.each(loadCorpus().map((c) => [c.name, c] as const))("%s", async (_, c) => {
    const [theirs, ours] = await Promise.all([decide(upstream, c), decide(rigger, c)]);
    const intended = differences.find((d) => d.case === c.name);
    if (intended) {
      expect(ours.allowed ? "allowed" : "denied").toBe(intended.rigger);
      expect(theirs.allowed, `listed as an intended difference, but upstream now agrees: ${intended.reason}`).toBe(!ours.allowed);
      return;
    }
    expect({ allowed: ours.allowed, ours: ours.message }).toEqual({ allowed: theirs.allowed, ours: ours.message });
  });

  test("every intended difference names a corpus case", () => {
    const names = new Set(loadCorpus().map((c) => c.name));
    for (const d of differences) expect(names.has(d.case), d.case).toBe(true);
  });
});
