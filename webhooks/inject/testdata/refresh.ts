// Refreshes the injection golden files from upstream itself: `make golden-inject`.
// It builds the pinned istioctl (cached), generates the pinned release's injection
// config, and runs `istioctl kube-inject` on every input in cases/, once with classic
// sidecars and once with native ones. An input upstream rejects gets an .error.txt.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments, stringify } from "yaml";
import { versions } from "../../../versions.ts";

const here = fileURLToPath(new URL(".", import.meta.url));
const root = join(here, "../../..");
const istioctl = join(root, ".cache/bin", `istio-${versions.istio}`, "istioctl");
const work = join(root, ".cache/golden-inject");

execFileSync("bash", [join(root, "e2e/cluster/build.sh"), "istio"], { stdio: "inherit" });
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

// The pinned release's configuration, as `istioctl install` would write it.
const manifest = execFileSync(
  istioctl,
  ["manifest", "generate", "--set", "profile=default", "--set", "hub=docker.io/istio", "--set", `tag=${versions.istio}`],
  { encoding: "utf8", maxBuffer: 64 << 20 },
);
for (const doc of parseAllDocuments(manifest)) {
  const obj = doc.toJS() as { kind?: string; metadata?: { name?: string }; data?: Record<string, string> } | null;
  if (obj?.kind !== "ConfigMap" || !obj.data) continue;
  if (obj.metadata?.name === "istio") writeFileSync(join(work, "mesh.yaml"), obj.data.mesh ?? "");
  if (obj.metadata?.name === "istio-sidecar-injector") {
    writeFileSync(join(work, "inject-config.yaml"), obj.data.config ?? "");
    writeFileSync(join(work, "values.json"), obj.data.values ?? "");
  }
}
// Checked in: the values and mesh config, and the injector config without template bodies.
const settings = join(here, "settings");
execFileSync("cp", [join(work, "values.json"), join(work, "mesh.yaml"), settings]);
const config = (parseAllDocuments(readFileSync(join(work, "inject-config.yaml"), "utf8"))[0]?.toJS() ?? {}) as Record<
  string,
  unknown
>;
config.templates = Object.fromEntries(
  Object.keys((config.templates as object) ?? {}).map((name) => [name, "(body not kept: Rigger renders templates in code)"]),
);
delete config.template;
writeFileSync(join(settings, "inject-config.yaml"), stringify(config));

const cases = join(here, "cases");
for (const file of readdirSync(cases)) if (/\.(injected\.yaml|error\.txt)$/.test(file)) rmSync(join(cases, file));
let count = 0;
for (const file of readdirSync(cases)
  .filter((f) => f.endsWith(".yaml"))
  .sort()) {
  for (const mode of ["classic", "native"] as const) {
    const run = spawnSync(
      istioctl,
      [
        "kube-inject",
        "-f",
        join(cases, file),
        "--injectConfigFile",
        join(work, "inject-config.yaml"),
        "--meshConfigFile",
        join(work, "mesh.yaml"),
        "--valuesFile",
        join(work, "values.json"),
      ],
      { encoding: "utf8", env: { ...process.env, ENABLE_NATIVE_SIDECARS: mode === "native" ? "true" : "false" } },
    );
    const base = join(cases, file.replace(/\.yaml$/, `.${mode}`));
    if (run.status === 0) writeFileSync(`${base}.injected.yaml`, run.stdout);
    // Keep upstream's error, not its timestamped log lines.
    else writeFileSync(`${base}.error.txt`, `${run.stderr.slice(Math.max(0, run.stderr.indexOf("Error:"))).trim()}\n`);
    count++;
  }
}
console.log(`refreshed ${count} golden files from istioctl ${versions.istio}`);
