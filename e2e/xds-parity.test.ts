// Parity with upstream's own xDS generators (the pinned release, in-process through
// pilot/test/xds: xds/parity/upstream/main.go, built by build.sh): each scenario in
// xds/parity/scenarios goes to both, and every cluster, listener, route and load assignment
// they give each proxy is compared field by field (proto3 JSON, Anys expanded, resources by
// name). A difference must be listed with its reason in xds/parity/intended-differences.yaml;
// a listed one that no longer occurs fails too.

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { versions } from "../versions.ts";
import { covers, type Difference, describe as describeDifference, differences, readIntended } from "../xds/parity/diff.ts";
import { normalize, type ProxyConfig, readScenario, rigger } from "../xds/parity/scenario.ts";

const ROOT = join(import.meta.dirname, "..");
const SCENARIOS = join(ROOT, "xds/parity/scenarios");
const intended = readIntended(join(ROOT, "xds/parity/intended-differences.yaml"));

function oracle(): string {
  const hash = createHash("sha256")
    .update(readFileSync(join(ROOT, "xds/parity/upstream/main.go")))
    .digest("hex")
    .slice(0, 12);
  return join(ROOT, ".cache/bin", `xds-oracle-${versions.istio}-${hash}`, "rigger-xds-oracle");
}

function upstream(file: string): Record<string, ProxyConfig> {
  const out = join(mkdtempSync(join(tmpdir(), "rigger-parity-")), "upstream.json");
  execFileSync(oracle(), [out], { input: JSON.stringify(readScenario(file)), stdio: ["pipe", "ignore", "pipe"] });
  return JSON.parse(readFileSync(out, "utf8"));
}

const scenarios = readdirSync(SCENARIOS).filter((f) => f.endsWith(".yaml"));
const used = new Set<number>();

describe.each(scenarios)("scenario %s", (file) => {
  const name = file.replace(/\.yaml$/, "");
  test("Rigger sends each proxy what upstream sends it, but for the intended differences", () => {
    const theirs = upstream(join(SCENARIOS, file));
    const ours = rigger(readScenario(join(SCENARIOS, file)));
    expect(Object.keys(ours).sort()).toEqual(Object.keys(theirs).sort());
    const unexplained: string[] = [];
    let compared = 0;
    for (const [proxy, config] of Object.entries(ours)) {
      const upstreamConfig = theirs[proxy] as ProxyConfig;
      compared += Object.values(upstreamConfig).reduce((n, list) => n + list.length, 0);
      for (const d of differences(normalize(upstreamConfig), normalize(config)) as Difference[]) {
        const entry = intended.findIndex((e) => covers(e, name, d));
        if (entry >= 0) used.add(entry);
        else unexplained.push(`${proxy} ${describeDifference(d)}`);
      }
    }
    expect(compared).toBeGreaterThan(0);
    expect(unexplained).toEqual([]);
  });
});

test("every intended difference still occurs (no stale entries)", () => {
  const stale = intended.filter((_, i) => !used.has(i)).map((e) => `${e.scenario} ${e.path}`);
  expect(stale).toEqual([]);
});
