// The rigger image holds every module the app imports: a new top-level folder missing from
// appFiles() would make the operator crash at start in its pod (ERR_MODULE_NOT_FOUND).
import { readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, test } from "vitest";
import { appFiles } from "./build.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

test("every relative import of the image's files is in the image", () => {
  const files = new Set(appFiles());
  const missing: string[] = [];
  for (const file of [...files].filter((f) => f.endsWith(".ts"))) {
    const text = readFileSync(join(ROOT, file), "utf8");
    for (const [, spec] of text.matchAll(/(?:from|import\()\s*"(\.{1,2}\/[^"]+)"/g)) {
      const target = normalize(join(dirname(file), spec ?? ""));
      if (!files.has(target)) missing.push(`${file} imports ${target}`);
    }
  }
  expect(missing).toEqual([]);
});
