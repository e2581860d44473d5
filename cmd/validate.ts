// `rigger validate -f FILE|DIR|-`: offline validation of Istio config, like istioctl validate.
// Exit status 1 when any document has an error; warnings alone keep it 0.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { parseAllDocuments } from "yaml";
import { expandPaths } from "../analysis/read.ts";
import { describeProblem } from "../webhooks/validate/report.ts";
import { validate } from "../webhooks/validate/validate.ts";

export const usage = `usage: rigger validate -f FILE|DIR|- [-f …]

Validates every Istio config document in the files (a directory: its .yaml, .yml and
.json files, recursively) with the same rules as the validating webhook, and prints each
error and warning with its file, document number, kind, name and field path. Documents of
other kinds (Deployments, Services…) are skipped. Exit status 1 if any error is found.
`;

export async function runValidate(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { filename: { type: "string", short: "f", multiple: true }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    process.stdout.write(usage);
    return 0;
  }
  const inputs = values.filename ?? [];
  if (inputs.length === 0) throw new Error(`-f FILE|DIR|- is required\n\n${usage}`);
  let errors = 0;
  let warnings = 0;
  let checked = 0;
  for (const file of inputs.flatMap(expandPaths)) {
    const text = readFileSync(file === "-" ? 0 : file, "utf8");
    parseAllDocuments(text).forEach((doc, i) => {
      const where = `${file === "-" ? "<stdin>" : file}:${i + 1}`;
      if (doc.errors.length > 0) {
        errors++;
        process.stdout.write(`${where}: error: not valid YAML: ${doc.errors[0]?.message}\n`);
        return;
      }
      const object = doc.toJS() as {
        apiVersion?: string;
        kind?: string;
        metadata?: { name?: string; namespace?: string };
      } | null;
      if (!object) return;
      const group = (object.apiVersion ?? "").split("/")[0] ?? "";
      // Only Istio config is ours to judge; an unknown kind in an Istio group is reported.
      if (!group.endsWith("istio.io") || group === "operator.istio.io") return;
      checked++;
      const who = `${object.kind ?? "?"} ${object.metadata?.namespace ? `${object.metadata.namespace}/` : ""}${object.metadata?.name ?? "(unnamed)"}`;
      const result = validate(object);
      for (const e of result.errors) process.stdout.write(`${where}: ${who}: error: ${describeProblem(e)}\n`);
      for (const w of result.warnings) process.stdout.write(`${where}: ${who}: warning: ${describeProblem(w)}\n`);
      errors += result.errors.length;
      warnings += result.warnings.length;
    });
  }
  process.stderr.write(`validated ${checked} Istio object(s): ${errors} error(s), ${warnings} warning(s)\n`);
  return errors > 0 ? 1 : 0;
}
