// Parity with upstream's analysis: each case of analysis/testdata/cases (a directory of YAML)
// is applied to the real apiserver, then the pinned release's `istioctl analyze` (built from
// source by the cluster build) and `rigger analyze` read the same cluster. Their messages about
// the case's objects (code, object and text) must be equal, except for the differences
// analysis/testdata/intended-differences.yaml lists with reasons, and each listed difference must
// still occur. Pods are applied with a scheduling gate: they exist in the API (the checks read
// them) but never run, so no image is ever fetched.
import { execFileSync, spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { parse, parseAllDocuments, stringify } from "yaml";
import { versions } from "../versions.ts";
import { reportMeasurements } from "./support/kube.ts";
import { kubectl } from "./support/mesh-node.ts";

const ROOT = join(import.meta.dirname, "..");
const CASES = join(ROOT, "analysis/testdata/cases");
const istioctl = join(ROOT, ".cache/bin", `istio-${versions.istio}`, "istioctl");

interface Difference {
  case: string;
  /** Which side alone reports it. */
  only: "upstream" | "rigger";
  code: string;
  origin: string;
  why: string;
}
const INTENDED = parse(readFileSync(join(ROOT, "analysis/testdata/intended-differences.yaml"), "utf8")) as Difference[];

interface Message {
  code: string;
  origin: string;
  message: string;
}
type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; spec?: Record<string, unknown> };

const caseObjects = (name: string): Obj[] =>
  readdirSync(join(CASES, name))
    .filter((f) => f.endsWith(".yaml"))
    .flatMap((f) => parseAllDocuments(readFileSync(join(CASES, name, f), "utf8")).map((d) => d.toJS() as Obj))
    .filter(Boolean)
    .map((o) => (o.kind === "Pod" ? { ...o, spec: { ...o.spec, schedulingGates: [{ name: "rigger.dev/analysis-only" }] } } : o));

const origin = (o: Obj) => `${o.kind} ${o.metadata.namespace ? `${o.metadata.namespace}/` : ""}${o.metadata.name}`;

function analyzeWith(command: string, args: string[]): Message[] {
  const run = spawnSync(command, args, { encoding: "utf8", maxBuffer: 64 << 20, timeout: 120_000 });
  // istioctl logs to stdout before its JSON (e.g. "translation function ... not found"): the JSON starts at a line "[".
  const start = run.stdout.search(/^\[/m);
  if (run.status !== 0 || start < 0)
    throw new Error(`${command} ${args.join(" ")}: exit ${run.status}\n${run.stderr}\n${run.stdout.slice(0, 2000)}`);
  return (JSON.parse(run.stdout.slice(start)) as Message[]).map(({ code, origin, message }) => ({ code, origin, message }));
}

const created: string[] = [];

beforeAll(() => {
  execFileSync("bash", [join(ROOT, "e2e/cluster/build.sh"), "istio"], { stdio: "inherit" });
  kubectl(["apply", "--server-side", "-f", join(ROOT, "crds/istio-api.gen.yaml")]);
  kubectl(["wait", "--for=condition=Established", "--timeout=60s", "crd/virtualservices.networking.istio.io"]);
}, 600_000);

afterAll(() => {
  for (const ns of created) kubectl(["delete", "namespace", ns, "--ignore-not-found", "--wait=false"]);
});

describe("rigger analyze and istioctl analyze over the same cluster", () => {
  const names = readdirSync(CASES).sort();

  test.each(names)("%s", (name) => {
    const objects = caseObjects(name);
    // Namespaces the case's objects live in must exist first (those the case does not define are made here).
    const defined = new Set(objects.filter((o) => o.kind === "Namespace").map((o) => o.metadata.name));
    const existing = new Set(kubectl(["get", "namespaces", "-o", "jsonpath={.items[*].metadata.name}"]).split(/\s+/));
    for (const ns of new Set(objects.flatMap((o) => (o.metadata.namespace ? [o.metadata.namespace] : []))))
      if (!existing.has(ns) && !defined.has(ns)) {
        kubectl(["create", "namespace", ns]);
        created.push(ns);
      }
    for (const ns of defined) if (!existing.has(ns)) created.push(ns);
    const manifest = objects.map((o) => stringify(o)).join("---\n");
    kubectl(["apply", "-f", "-"], manifest);
    try {
      const kubeconfig = inject("kubeconfig");
      const ours = new Set(objects.map(origin));
      const about = (m: Message) => ours.has(m.origin);
      const upstream = analyzeWith(istioctl, ["analyze", "-A", "--kubeconfig", kubeconfig, "-o", "json"]).filter(about);
      const rigger = analyzeWith(process.execPath, [
        join(ROOT, "cmd/rigger.ts"),
        "analyze",
        "-A",
        "--kubeconfig",
        kubeconfig,
        "-o",
        "json",
      ]).filter(about);
      const listed = INTENDED.filter((d) => d.case === name);
      const isListed = (side: Difference["only"]) => (m: Message) =>
        listed.some((d) => d.only === side && d.code === m.code && d.origin === m.origin);
      // Each listed difference still occurs on its side and not on the other.
      for (const d of listed) {
        const on = d.only === "upstream" ? upstream : rigger;
        const off = d.only === "upstream" ? rigger : upstream;
        expect(
          on.some((m) => m.code === d.code && m.origin === d.origin),
          `listed: ${d.code} ${d.origin} (${d.why})`,
        ).toBe(true);
        expect(
          off.some((m) => m.code === d.code && m.origin === d.origin),
          `now on both sides: ${d.code} ${d.origin}`,
        ).toBe(false);
      }
      const line = (m: Message) => `${m.code} (${m.origin}) ${m.message}`;
      expect(
        rigger
          .filter((m) => !isListed("rigger")(m))
          .map(line)
          .sort(),
      ).toEqual(
        upstream
          .filter((m) => !isListed("upstream")(m))
          .map(line)
          .sort(),
      );
      // Not vacuous: every case makes upstream say something about its objects.
      expect(upstream.length).toBeGreaterThan(0);
      reportMeasurements("analyze parity", {
        [name]: `${upstream.length} messages from istioctl, ${rigger.length} from rigger, codes ${[...new Set(upstream.map((m) => m.code))].sort().join(" ")}`,
      });
    } finally {
      kubectl(["delete", "--ignore-not-found", "--wait=false", "-f", "-"], manifest);
    }
  });

  test("every intended difference names a case", () => {
    for (const d of INTENDED) expect(names, d.case).toContain(d.case);
  });
});
