// `rigger analyze` as a user runs it: exit codes, output formats, namespaces, bad input.
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, test } from "vitest";

const rigger = fileURLToPath(new URL("./rigger.ts", import.meta.url));
const cases = fileURLToPath(new URL("../analysis/testdata/cases", import.meta.url));
const run = (args: string[], input?: string) =>
  spawnSync(process.execPath, [rigger, "analyze", ...args], { input, encoding: "utf8" });

test("a case with errors: istioctl's lines, exit 79; only the asked namespace's messages", () => {
  const all = run(["-A", "-f", join(cases, "routing")]);
  expect(all.status).toBe(79);
  expect(all.stdout).toContain(
    "Error [IST0101] (VirtualService shop/reviews " +
      join(cases, "routing/objects.yaml") +
      ':57) Referenced host+subset in destinationrule not found: "reviews+v3"',
  );
  // The default namespace is "default": the shop namespace's messages are not shown, nothing at Error level is.
  const scoped = run(["-f", join(cases, "routing")]);
  expect(scoped.stdout).toBe("");
  expect(scoped.stderr).toContain("No validation issues found");
  expect(scoped.status).toBe(0);
});

test("--failure-threshold and --output-threshold; json and yaml outputs exit 0 as istioctl's do", () => {
  const ports = join(cases, "port-names");
  expect(run(["-f", ports]).status).toBe(0);
  expect(run(["-f", ports, "--failure-threshold", "Info"]).status).toBe(79);
  expect(run(["-f", ports, "--output-threshold", "Warning"]).stdout).not.toContain("IST0118");
  const json = run(["-f", ports, "-o", "json"]);
  expect(json.status).toBe(0);
  const parsed = JSON.parse(json.stdout) as { code: string; origin: string; documentationUrl: string }[];
  expect(parsed.map((m) => `${m.code} ${m.origin}`)).toEqual([
    "IST0150 Service default/external",
    "IST0118 Service default/unnamed",
    "IST0118 Service default/web",
  ]);
  expect(parsed[0]?.documentationUrl).toBe("https://istio.io/v1.27/docs/reference/config/analysis/ist0150/?ref=istioctl-analyze");
  expect(run(["-f", ports, "-o", "yaml"]).stdout).toContain("code: IST0150");
});

test("bad input: an unparsable document is named with its file and line and the rest analyzed; unknown kinds counted", () => {
  const dir = mkdtempSync(join(tmpdir(), "analyze-"));
  const file = join(dir, "mixed.yaml");
  writeFileSync(
    file,
    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n---\nkind: [\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec:\n  hosts: [v]\n  http: [{route: [{destination: {host: nowhere, subset: v1}}]}]\n",
  );
  const out = run(["-f", file]);
  expect(out.stderr).toContain(`${file}:5: not valid YAML`);
  expect(out.stderr).toContain("skipped 1 object(s) of kinds no check reads (Deployment 1)");
  expect(out.stdout).toContain('Referenced host+subset in destinationrule not found: "nowhere+v1"');
  expect(out.status).toBe(79);
  writeFileSync(file, "kind: [\n");
  expect(run(["-f", file]).status).toBe(65);
  expect(run(["-o", "xml", "-f", file]).stderr).toContain("-o xml: must be log, yaml or json");
  expect(run([]).stderr).toContain("nothing to analyze");
});

test("a cluster that cannot be read: a clear error and exit code 2", () => {
  const dir = mkdtempSync(join(tmpdir(), "analyze-"));
  const kubeconfig = join(dir, "kubeconfig");
  writeFileSync(
    kubeconfig,
    `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`,
  );
  const out = run(["--kubeconfig", kubeconfig]);
  expect(out.status).toBe(2);
  expect(out.stderr).toMatch(/rigger analyze: cannot read the cluster: .*ECONNREFUSED/);
});
