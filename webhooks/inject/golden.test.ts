// Golden tests: every input in testdata/cases/ is injected by Rigger and compared,
// object by object, with what upstream istioctl kube-inject at the pinned release
// produced for it (refreshed by `make golden-inject`), in classic and native modes.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { parseAllDocuments } from "yaml";
import { parseInjectorConfig, parseMeshConfig, parseValues } from "./config.ts";
import { InjectionError, type InjectionSettings } from "./inject.ts";
import { applyIntendedDifferences, loadIntendedDifferences, normalize } from "./testdata/upstream-comparison.ts";
import { injectWorkload } from "./workloads.ts";

const testdata = fileURLToPath(new URL("./testdata/", import.meta.url));
const cases = join(testdata, "cases");
const intended = loadIntendedDifferences(join(testdata, "intended-differences.yaml"));

function settings(nativeSidecars: boolean): InjectionSettings {
  return {
    injector: parseInjectorConfig(readFileSync(join(testdata, "settings/inject-config.yaml"), "utf8")),
    values: parseValues(readFileSync(join(testdata, "settings/values.json"), "utf8")),
    mesh: parseMeshConfig(readFileSync(join(testdata, "settings/mesh.yaml"), "utf8")),
    revision: "",
    nativeSidecars,
  };
}

function documents(path: string): unknown[] {
  return parseAllDocuments(readFileSync(path, "utf8"))
    .map((d) => d.toJS())
    .filter((d) => d !== null && d !== undefined);
}

const inputs = readdirSync(cases)
  .filter((f) => f.endsWith(".yaml") && !f.endsWith(".injected.yaml"))
  .sort();

describe.each(["classic", "native"] as const)("%s sidecars", (mode) => {
  test.each(inputs)("%s matches upstream", (file) => {
    const base = join(cases, file.replace(/\.yaml$/, `.${mode}`));
    const run = () => documents(join(cases, file)).map((doc) => injectWorkload(doc, settings(mode === "native")).object);
    if (existsSync(`${base}.error.txt`)) {
      const upstream = readFileSync(`${base}.error.txt`, "utf8");
      const expected = [...upstream.matchAll(/invalid value '[^']*' for annotation '[^']*'/g)].map((m) => m[0]);
      expect(expected.length).toBeGreaterThan(0);
      expect(run).toThrow(InjectionError);
      try {
        run();
      } catch (err) {
        for (const part of expected) expect((err as Error).message).toContain(part);
      }
      return;
    }
    const expected = documents(`${base}.injected.yaml`).map((d, i) => {
      applyIntendedDifferences(
        d,
        intended.filter((e) => e.case === file && e.document === i && (e.mode === undefined || e.mode === mode)),
      );
      return normalize(d);
    });
    expect(run().map((d) => normalize(d))).toEqual(expected);
  });
});

test("every golden file belongs to an input, and every input has its goldens in both modes", () => {
  const files = readdirSync(cases);
  const inputSet = new Set(inputs);
  for (const file of files.filter((f) => !inputSet.has(f))) {
    const input = file.replace(/\.(classic|native)\.(injected\.yaml|error\.txt)$/, ".yaml");
    expect(input !== file && inputSet.has(input), `${file} has no input ${input}: remove it or restore the input`).toBe(true);
  }
  for (const input of inputs) {
    for (const mode of ["classic", "native"]) {
      const base = join(cases, input.replace(/\.yaml$/, `.${mode}`));
      expect(existsSync(`${base}.injected.yaml`) || existsSync(`${base}.error.txt`), `${input} has no ${mode} golden`).toBe(true);
    }
  }
});

test("every intended difference still changes upstream's output (a stale entry fails)", () => {
  for (const entry of intended) {
    for (const mode of entry.mode ? [entry.mode] : (["classic", "native"] as const)) {
      const golden = join(cases, entry.case.replace(/\.yaml$/, `.${mode}.injected.yaml`));
      expect(existsSync(golden), `${entry.case} (${mode}) has a golden`).toBe(true);
      const doc = documents(golden)[entry.document];
      expect(doc, `${entry.case} document ${entry.document} exists`).toBeDefined();
      const changed = structuredClone(doc);
      applyIntendedDifferences(changed, [entry]);
      expect(normalize(changed), `${entry.case} #${entry.document} (${mode}): the entry changes nothing; drop it`).not.toEqual(
        normalize(doc),
      );
    }
  }
});
