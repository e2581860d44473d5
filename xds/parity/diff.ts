// Differences between upstream's and Rigger's configuration for one proxy, as a list of JSON
// paths (`clusters[outbound|9080||reviews.default.svc.cluster.local].lbPolicy`), and the
// intended-differences file that explains the ones we keep on purpose. Lists of named things
// (resources, filter chains, virtual hosts, routes) are matched by name, others by position.
import { readFileSync } from "node:fs";
import { parse } from "yaml";

export interface Difference {
  path: string;
  upstream: unknown;
  rigger: unknown;
}

export interface IntendedDifference {
  scenario: string;
  /** A path; each "*" stands for any run of characters (a name, or everything under a path). */
  path: string;
  reason: string;
}

const short = (v: unknown) => {
  const s = JSON.stringify(v);
  return s === undefined ? "(absent)" : s.length > 160 ? `${s.slice(0, 157)}...` : s;
};

export function describe(d: Difference): string {
  return `${d.path}: upstream ${short(d.upstream)}, rigger ${short(d.rigger)}`;
}

function keyOf(item: unknown, index: number): string {
  if (item && typeof item === "object" && !Array.isArray(item)) {
    const o = item as Record<string, unknown>;
    for (const k of ["name", "clusterName"]) if (typeof o[k] === "string" && o[k]) return String(o[k]);
  }
  return String(index);
}

export function differences(upstream: unknown, rigger: unknown, path = ""): Difference[] {
  if (JSON.stringify(upstream) === JSON.stringify(rigger)) return [];
  if (Array.isArray(upstream) && Array.isArray(rigger)) {
    const a = new Map(upstream.map((item, i) => [keyOf(item, i), item]));
    const b = new Map(rigger.map((item, i) => [keyOf(item, i), item]));
    const keys = [...new Set([...a.keys(), ...b.keys()])];
    return keys.flatMap((k) => differences(a.get(k), b.get(k), `${path}[${k}]`));
  }
  const isObject = (v: unknown) => v !== null && typeof v === "object" && !Array.isArray(v);
  if (isObject(upstream) && isObject(rigger)) {
    const a = upstream as Record<string, unknown>;
    const b = rigger as Record<string, unknown>;
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => differences(a[k], b[k], path ? `${path}.${k}` : k));
  }
  return [{ path, upstream, rigger }];
}

export function readIntended(file: string): IntendedDifference[] {
  return (parse(readFileSync(file, "utf8")) as { differences?: IntendedDifference[] } | null)?.differences ?? [];
}

export function covers(entry: IntendedDifference, scenario: string, d: Difference): boolean {
  if (entry.scenario !== scenario && entry.scenario !== "*") return false;
  const pattern = entry.path
    .split("*")
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
    .join(".*");
  return new RegExp(`^${pattern}$`).test(d.path);
}
