// Parity with upstream: the pinned release's istiod and `rigger istiod` get the same
// AdmissionReview for every case of the validation corpus; their allow/deny decisions
// must agree, except where webhooks/validate/testdata/intended-differences.yaml says
// why Rigger decides otherwise.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { parse } from "yaml";
import { type CorpusCase, loadCorpus } from "../webhooks/validate/testdata/corpus.ts";
import { admissionResponse } from "./support/child.ts";
import type { RunningIstiod } from "./support/istiod.ts";
import { startIstiodPair, type UpstreamIstiod } from "./support/upstream-istiod.ts";

const NAMESPACE = "rigger-validation-parity";
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

async function decide(
  server: { baseUrl: string; caPem: string },
  c: CorpusCase,
): Promise<{ allowed: boolean; message?: string }> {
  const uid = `${c.file}-${c.index}`.replace(/[^a-z0-9-]/gi, "-");
  const kind = { group: "", version: "", kind: String(c.object.kind) };
  const response = await admissionResponse(`${server.baseUrl}/validate`, server.caPem, {
    uid,
    operation: "CREATE",
    namespace: "shop",
    kind,
    object: c.object,
  });
  return { allowed: response.allowed === true, message: (response.status as { message?: string } | undefined)?.message };
}

beforeAll(async () => {
  ({ rigger, upstream } = await startIstiodPair(inject("kubeconfig"), NAMESPACE, "vparity"));
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
