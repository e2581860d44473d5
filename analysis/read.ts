// Reading objects to analyze from files: every YAML or JSON document of the files named (a
// directory: its .yaml, .yml and .json files, recursively; `-`: standard input), each with the
// file and line it starts at and a way to find a field's line. A document that does not parse
// is reported with its file and line, and the rest are still read; objects of kinds no check
// reads are skipped and counted.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { isNode, LineCounter, parseAllDocuments } from "yaml";
import type { AnalysisResource, FieldPath } from "./analyze.ts";
import { isAnalyzedKind } from "./analyze.ts";

export interface ReadResult {
  resources: AnalysisResource[];
  /** `<file>:<line>: <why>` for each document that could not be read. */
  errors: string[];
  /** Objects of kinds no check reads, by `<Kind>` (left out). */
  skipped: Map<string, number>;
}

/** The files a -f argument names, directories expanded in name order. */
export function expandPaths(path: string): string[] {
  if (path === "-") return ["-"];
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path, { withFileTypes: true })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .flatMap((entry) => {
      const child = join(path, entry.name);
      if (entry.isDirectory()) return expandPaths(child);
      return /\.(ya?ml|json)$/.test(entry.name) ? [child] : [];
    });
}

/** Parses one file's text; objects without a namespace get `defaultNamespace` (cluster-scoped kinds excepted). */
export function readText(text: string, file: string, defaultNamespace: string, into: ReadResult): void {
  const lines = new LineCounter();
  for (const doc of parseAllDocuments(text, { lineCounter: lines })) {
    const start = lines.linePos(doc.contents?.range[0] ?? doc.range[0]).line;
    if (doc.errors.length > 0) {
      // The document's first line, and the parser's own words (they name where it gave up).
      const why = (doc.errors[0]?.message.split("\n")[0] ?? "").replace(/:$/, "");
      into.errors.push(`${file}:${start}: not valid YAML: ${why}`);
      continue;
    }
    const value = doc.toJS() as AnalysisResource["object"] | null;
    if (value === null || value === undefined) continue;
    if (typeof value !== "object" || Array.isArray(value) || !value.kind || !value.apiVersion) {
      into.errors.push(`${file}:${start}: not a Kubernetes object (apiVersion and kind are required)`);
      continue;
    }
    if (value.kind === "List" && Array.isArray((value as { items?: unknown[] }).items)) {
      into.errors.push(`${file}:${start}: a List: give its items as separate documents`);
      continue;
    }
    if (!isAnalyzedKind(value)) {
      into.skipped.set(value.kind, (into.skipped.get(value.kind) ?? 0) + 1);
      continue;
    }
    if (!CLUSTER_SCOPED.has(value.kind) && !value.metadata?.namespace)
      value.metadata = { ...value.metadata, namespace: defaultNamespace };
    const lineOf = (path: FieldPath): number | undefined => {
      const node = doc.getIn(path as (string | number)[], true);
      return isNode(node) && node.range ? lines.linePos(node.range[0]).line : undefined;
    };
    into.resources.push({ object: value, origin: { file, line: start, lineOf } });
  }
}

const CLUSTER_SCOPED = new Set([
  "Namespace",
  "Node",
  "GatewayClass",
  "MutatingWebhookConfiguration",
  "ValidatingWebhookConfiguration",
]);

export function readFiles(paths: readonly string[], defaultNamespace: string): ReadResult {
  const out: ReadResult = { resources: [], errors: [], skipped: new Map() };
  for (const file of paths.flatMap(expandPaths)) {
    const text = readFileSync(file === "-" ? 0 : file, "utf8");
    readText(text, file === "-" ? "<stdin>" : file, defaultNamespace, out);
  }
  return out;
}
