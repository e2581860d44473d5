// Parity with upstream: the pinned release's istiod (pilot-discovery) runs out of cluster
// beside `rigger istiod`; both get the same AdmissionReview for every pod of the golden
// corpus, and the pods their patches produce are compared field by field. Differences
// Rigger intends are listed, with reasons, in webhooks/inject/testdata/intended-differences.yaml.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { V1ObjectMeta, V1Pod, V1PodSpec } from "@kubernetes/client-node";
import fastJsonPatch from "fast-json-patch";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { parseAllDocuments } from "yaml";
import {
  applyIntendedDifferences,
  type IntendedDifference,
  loadIntendedDifferences,
  normalize,
} from "../webhooks/inject/testdata/upstream-comparison.ts";
import { admissionResponse } from "./support/child.ts";
import type { RunningIstiod } from "./support/istiod.ts";
import { startIstiodPair, type UpstreamIstiod } from "./support/upstream-istiod.ts";

const testdata = fileURLToPath(new URL("../webhooks/inject/testdata/", import.meta.url));
const REVISION = "parity";
const NAMESPACE = "rigger-parity";
let upstream: UpstreamIstiod;
let rigger: RunningIstiod;

interface Case {
  name: string;
  file: string;
  document: number;
  pod: V1Pod;
}

/** Every pod of the golden corpus, as the apiserver would send it: templates become pods with their owners. */
function corpus(): Case[] {
  const out: Case[] = [];
  const cases = join(testdata, "cases");
  for (const file of readdirSync(cases)
    .filter((f) => f.endsWith(".yaml") && !f.endsWith(".injected.yaml"))
    .sort()) {
    // Documents are numbered as the golden test numbers them: empty ones do not count.
    const docs = parseAllDocuments(readFileSync(join(cases, file), "utf8"))
      .map((d) => d.toJS())
      .filter((o) => o !== null && o !== undefined);
    docs.forEach((o, document) => {
      const items = o.kind === "List" ? o.items : [o];
      for (const item of items) {
        const pod = asPod(item);
        if (pod) out.push({ name: `${file} ${item.kind}/${item.metadata?.name}`, file, document, pod: asSentByApiserver(pod) });
      }
    });
  }
  return out;
}

type PodTemplate = { metadata?: V1ObjectMeta; spec?: V1PodSpec };

function asPod(o: {
  kind?: string;
  apiVersion?: string;
  metadata?: { name?: string };
  spec?: { template?: PodTemplate; jobTemplate?: { spec?: { template?: PodTemplate } } };
}): V1Pod | undefined {
  if (o.kind === "Pod") return { apiVersion: "v1", kind: "Pod", ...o, metadata: { namespace: "shop", ...o.metadata } } as V1Pod;
  const template = o.kind === "CronJob" ? o.spec?.jobTemplate?.spec?.template : o.spec?.template;
  if (!template?.spec) return undefined;
  const name = o.metadata?.name ?? "w";
  const owner =
    o.kind === "Deployment"
      ? { apiVersion: "apps/v1", kind: "ReplicaSet", name: `${name}-5d8f9c7b6` }
      : o.kind === "CronJob"
        ? { apiVersion: "batch/v1", kind: "Job", name: `${name}-29010000` }
        : { apiVersion: o.apiVersion ?? "v1", kind: o.kind ?? "", name };
  const labels = {
    ...(template.metadata?.labels ?? {}),
    ...(o.kind === "Deployment" ? { "pod-template-hash": "5d8f9c7b6" } : {}),
  };
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      ...template.metadata,
      generateName: `${owner.name}-`,
      namespace: "shop",
      labels,
      ownerReferences: [{ ...owner, uid: "00000000-0000-4000-8000-000000000000", controller: true, blockOwnerDeletion: true }],
    },
    spec: template.spec,
  };
}

interface Answer {
  allowed: boolean;
  patch?: fastJsonPatch.Operation[];
  message?: string;
}

async function review(server: { baseUrl: string; caPem: string }, pod: V1Pod, uid: string): Promise<Answer> {
  const response = await admissionResponse(`${server.baseUrl}/inject`, server.caPem, { uid, namespace: "shop", object: pod });
  return {
    allowed: response.allowed === true,
    patch: typeof response.patch === "string" ? JSON.parse(Buffer.from(response.patch, "base64").toString()) : undefined,
    message: (response.status as { message?: string } | undefined)?.message,
  };
}

/**
 * The pod as the apiserver serializes it for a webhook: Go's typed JSON always carries
 * `resources: {}` on containers and an empty status. Upstream's patches assume them.
 */
function asSentByApiserver(pod: V1Pod): V1Pod {
  const out = structuredClone(pod);
  for (const c of [...(out.spec?.containers ?? []), ...(out.spec?.initContainers ?? [])]) c.resources ??= {};
  out.status ??= {};
  return out;
}

/** Intended differences are written against workloads; for a pod, drop the template prefix. */
function forPod(entries: IntendedDifference[]): IntendedDifference[] {
  const strip = (path: string) => path.replace(/^spec\.jobTemplate\.spec\.template\./, "").replace(/^spec\.template\./, "");
  return entries
    .filter((e) => e.set && e.mode !== "native")
    .map((e) => ({ ...e, set: { path: strip(e.set?.path ?? ""), value: e.set?.value } }));
}

beforeAll(async () => {
  ({ rigger, upstream } = await startIstiodPair(inject("kubeconfig"), NAMESPACE, REVISION));
}, 120_000);

afterAll(async () => {
  await Promise.all([upstream?.stop(), rigger?.stop()]);
});

const intended = loadIntendedDifferences(join(testdata, "intended-differences.yaml"));

describe("webhook parity with upstream istiod", () => {
  test.each(corpus().map((c) => [c.name, c] as const))("%s", async (_, c) => {
    const uid = `${c.file}-${c.document}-${c.pod.metadata?.name ?? c.pod.metadata?.generateName}`.replace(/[^a-z0-9-]/gi, "-");
    const [theirs, ours] = await Promise.all([review(upstream, c.pod, uid), review(rigger, c.pod, uid)]);
    expect(ours.allowed).toBe(theirs.allowed);
    if (!theirs.allowed) {
      const fragments = [...(theirs.message ?? "").matchAll(/invalid value '[^']*' for annotation '[^']*'/g)].map((m) => m[0]);
      expect(fragments.length).toBeGreaterThan(0);
      for (const f of fragments) expect(ours.message).toContain(f);
      return;
    }
    expect(ours.patch === undefined).toBe(theirs.patch === undefined);
    if (!theirs.patch || !ours.patch) return;
    const apply = (patch: fastJsonPatch.Operation[]) =>
      fastJsonPatch.applyPatch(structuredClone(c.pod), patch, true, false).newDocument;
    const expected = apply(theirs.patch);
    applyIntendedDifferences(expected, forPod(intended.filter((e) => e.case === c.file && e.document === c.document)));
    expect(normalize(apply(ours.patch))).toEqual(normalize(expected));
  });
});
