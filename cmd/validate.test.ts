// `rigger validate` as a user runs it in CI: files, directories and stdin.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, test } from "vitest";

const rigger = fileURLToPath(new URL("./rigger.ts", import.meta.url));
const run = (args: string[], input?: string) =>
  spawnSync(process.execPath, [rigger, "validate", ...args], { input, encoding: "utf8" });

const good = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews}}]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: not-istio}
`;
const bad = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  subsets: [{name: v1}, {name: v1}]
`;
const warning = `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: f}
spec: {configPatches: [{applyTo: CLUSTER, patch: {operation: REMOVE}}]}
`;

test("valid config exits 0; other kinds are skipped", () => {
  const result = run(["-f", "-"], good);
  expect(result.status).toBe(0);
  expect(result.stdout).toBe("");
  expect(result.stderr).toBe("validated 1 Istio object(s): 0 error(s), 0 warning(s)\n");
});

test("a directory is walked; errors name file, document, kind, name and field, and exit 1", () => {
  const dir = mkdtempSync(join(tmpdir(), "rigger-validate-"));
  mkdirSync(join(dir, "nested"));
  writeFileSync(join(dir, "a.yaml"), good);
  writeFileSync(join(dir, "nested", "b.yml"), `${good}---\n${bad}`);
  writeFileSync(join(dir, "notes.txt"), "not config");
  const result = run(["-f", dir]);
  expect(result.status).toBe(1);
  expect(result.stdout).toBe(
    `${join(dir, "nested", "b.yml")}:3: DestinationRule shop/reviews: error: spec.subsets[1].name: duplicate subset names: v1\n`,
  );
  expect(result.stderr).toContain("validated 3 Istio object(s): 1 error(s), 0 warning(s)");
});

test("warnings are printed and keep exit status 0", () => {
  const result = run(["-f", "-"], warning);
  expect(result.status).toBe(0);
  expect(result.stdout).toMatch(/^<stdin>:1: EnvoyFilter f: warning: EnvoyFilter exposes internal implementation details/);
});

test("a missing -f is a usage error", () => {
  const result = run([]);
  expect(result.status).toBe(1);
  expect(result.stderr).toContain("-f FILE|DIR|- is required");
});
