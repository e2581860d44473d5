// Checks several kinds share: exportTo, workload selectors, TLS settings.
import { dnsLabel, labels } from "../fields.ts";
import { at, isObj, type Report, strings } from "../report.ts";

/** `.`, `*` or namespace names; `~` only where `allowTilde`; no duplicates; `*` alone. */
export function exportTo(report: Report, path: string, value: unknown, namespace: string, allowTilde: boolean): void {
  const entries = strings(report, path, value);
  const seen = new Set<string>();
  for (const [entry, p] of entries) {
    if (entry === "~" && !allowTilde) report.error(p, "exportTo ~ (none) is only allowed for ServiceEntry");
    else if (entry !== "." && entry !== "*" && entry !== "~" && dnsLabel(entry))
      report.error(p, `invalid value for exportTo: "${entry}"`);
    const key = entry === "." ? namespace : entry;
    if (seen.has(key)) report.error(p, `duplicate entries in exportTo: ${entry}`);
    seen.add(key);
  }
  if (entries.length > 1 && entries.some(([e]) => e === "*"))
    report.error(path, "cannot have both public (*) and non-public exportTo values for a resource");
  if (entries.length > 1 && entries.some(([e]) => e === "~"))
    report.error(path, "cannot export service entry to no one (~) and someone");
}

/** A workload selector: `{labels}` in Sidecar, EnvoyFilter and ServiceEntry, `{matchLabels}` elsewhere. */
export function workloadSelector(
  report: Report,
  path: string,
  selector: unknown,
  key: "labels" | "matchLabels" = "matchLabels",
): void {
  if (selector === undefined || selector === null) return;
  if (!isObj(selector)) {
    report.error(path, "workloadSelector must be an object");
    return;
  }
  const matchLabels = selector[key];
  if (!isObj(matchLabels) || Object.keys(matchLabels).length === 0) {
    report.warn(path, "workload selector specified without labels");
    return;
  }
  for (const [label, value] of Object.entries(matchLabels)) {
    if (label === "") report.error(at(path, key), "empty key is not supported in selector");
    if (label.includes("*") || String(value).includes("*")) report.error(at(path, key), "wildcard is not supported in selector");
  }
  for (const message of labels(matchLabels)) report.error(at(path, key), message);
}
