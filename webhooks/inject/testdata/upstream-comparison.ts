// Comparing Rigger's injection with upstream's: intended-differences.yaml is applied to
// upstream's output, so tests compare Rigger with upstream-as-Rigger-intends-it, and
// both sides are normalized. Paths are dot-separated, with `[name=x]` picking a list
// item by a field and `[2]` by index.
import { readFileSync } from "node:fs";
import { parse } from "yaml";

export interface IntendedDifference {
  case: string;
  document: number;
  /** classic or native; both when absent. */
  mode?: "classic" | "native";
  move?: { from: string; to: string };
  set?: { path: string; value?: unknown };
  reason: string;
}

export function loadIntendedDifferences(path: string): IntendedDifference[] {
  const entries = parse(readFileSync(path, "utf8")) as IntendedDifference[];
  for (const e of entries) {
    if (e.mode !== undefined && e.mode !== "classic" && e.mode !== "native") throw new Error(`${path}: bad mode ${e.mode}`);
    if (!e.reason?.trim()) throw new Error(`${path}: the entry for ${e.case} gives no reason`);
    if (!e.move === !e.set) throw new Error(`${path}: the entry for ${e.case} needs exactly one of move or set`);
  }
  return entries;
}

/** Applies the differences for one document of one case to upstream's object (in place). */
export function applyIntendedDifferences(upstream: unknown, entries: IntendedDifference[]): void {
  for (const e of entries) {
    if (e.move) {
      const value = get(upstream, e.move.from);
      if (value === undefined)
        throw new Error(`intended difference for ${e.case}: nothing at ${e.move.from} in upstream's output`);
      put(upstream, e.move.from, undefined);
      put(upstream, e.move.to, value);
    } else if (e.set) {
      put(upstream, e.set.path, e.set.value);
    }
  }
}

type Step = { key: string } | { index: number } | { field: string; equals: string };

function steps(path: string): Step[] {
  const out: Step[] = [];
  for (const part of path.split(".")) {
    const match = /^([^[]+)((?:\[[^\]]+\])*)$/.exec(part);
    if (!match?.[1]) throw new Error(`bad path ${path}`);
    out.push({ key: match[1] });
    for (const sel of (match[2] ?? "").match(/\[[^\]]+\]/g) ?? []) {
      const inner = sel.slice(1, -1);
      const eq = inner.indexOf("=");
      out.push(eq >= 0 ? { field: inner.slice(0, eq), equals: inner.slice(eq + 1) } : { index: Number(inner) });
    }
  }
  return out;
}

function child(node: unknown, step: Step): unknown {
  if (node === null || typeof node !== "object") return undefined;
  if ("key" in step) return (node as Record<string, unknown>)[step.key];
  if (!Array.isArray(node)) return undefined;
  if ("index" in step) return node[step.index];
  return node.find((item) => (item as Record<string, unknown>)?.[step.field] === step.equals);
}

function get(root: unknown, path: string): unknown {
  return steps(path).reduce<unknown>((node, step) => child(node, step), root);
}

function put(root: unknown, path: string, value: unknown): void {
  const all = steps(path);
  const last = all.pop() as Step;
  let node = root;
  for (const step of all) {
    let next = child(node, step);
    if (next === undefined && "key" in step) {
      next = {};
      (node as Record<string, unknown>)[step.key] = next;
    }
    node = next;
  }
  if (!("key" in last) || node === null || typeof node !== "object") throw new Error(`cannot set ${path}`);
  if (value === undefined) delete (node as Record<string, unknown>)[last.key];
  else (node as Record<string, unknown>)[last.key] = value;
}

/**
 * Upstream's output went through Go's typed structs, which add empty placeholders
 * (`creationTimestamp: null`, `strategy: {}`, `resources: {}`, `status: {}`). They
 * carry no meaning; both sides drop them before comparing.
 */
export function normalize(value: unknown, key = ""): unknown {
  if (Array.isArray(value)) return value.map((v) => normalize(v, "item"));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (v === null) continue;
      if (key === "" && k === "status") continue; // output-only; Go prints zero counters for some kinds
      if (PLACEHOLDERS.has(k) && typeof v === "object" && Object.keys(v as object).length === 0) continue;
      out[k] = normalize(v, k);
    }
    return out;
  }
  return value;
}
const PLACEHOLDERS = new Set(["strategy", "updateStrategy", "status", "resources", "template", "jobTemplate", "metadata"]);
