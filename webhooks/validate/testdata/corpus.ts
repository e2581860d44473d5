// The validation corpus: YAML documents in corpus/, each carrying `_expect` (valid,
// warning or invalid) and `_message` (a fragment the message must contain). Shared by
// the unit test and the parity test against upstream istiod.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

export interface CorpusCase {
  /** file, index and kind/name, for test titles */
  name: string;
  file: string;
  index: number;
  expect: "valid" | "warning" | "invalid";
  message?: string;
  object: Record<string, unknown>;
}

const dir = fileURLToPath(new URL("./corpus/", import.meta.url));

export function loadCorpus(): CorpusCase[] {
  const cases: CorpusCase[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".yaml")).sort()) {
    const docs = parseAllDocuments(readFileSync(join(dir, file), "utf8")).map((d) => d.toJS() as Record<string, unknown> | null);
    docs.forEach((doc, index) => {
      if (!doc) return;
      const { _expect, _message, ...object } = doc;
      if (_expect !== "valid" && _expect !== "warning" && _expect !== "invalid") {
        throw new Error(`${file} document ${index}: _expect must be valid, warning or invalid`);
      }
      const meta = (object.metadata ?? {}) as { name?: string };
      cases.push({ name: `${file}#${index} ${String(object.kind)}/${meta.name ?? ""}`, file, index, expect: _expect, message: _message as string | undefined, object });
    });
  }
  return cases;
}
