// Schema checks (upstream's schema.ValidationAnalyzer): every Istio config object through the
// validating webhook's own rules (webhooks/validate): errors as IST0106, warnings as IST0133,
// and the VirtualService rules validation finds unreachable as IST0130 and IST0131.
import { validate } from "../../webhooks/validate/validate.ts";
import type { AnalysisContext } from "../analyze.ts";
import { type Finding, messages } from "../messages.ts";

const UNREACHABLE = /^virtualService rule (.+) not used \((.+)\)$/;
const INEFFECTIVE = /^virtualService rule (\S+) match (\S+) is not used \(duplicate\/overlapping match in rule (\S+)\)$/;

/** A validation warning as upstream's analyzer words it. */
function warning(text: string): Finding {
  const ineffective = INEFFECTIVE.exec(text);
  if (ineffective)
    return messages.virtualServiceIneffectiveMatch(ineffective[1] ?? "", ineffective[2] ?? "", ineffective[3] ?? "");
  const unreachable = UNREACHABLE.exec(text);
  if (unreachable) return messages.virtualServiceUnreachableRule(unreachable[1] ?? "", unreachable[2] ?? "");
  return messages.schemaWarning(text);
}

export function schemaChecks(context: AnalysisContext): void {
  for (const r of context.resources) {
    const group = (r.object.apiVersion ?? "").split("/")[0] ?? "";
    if (!group.endsWith("istio.io") || group === "operator.istio.io" || group === "install.istio.io") continue;
    const result = validate(r.object, r.object.metadata?.namespace ?? "default");
    // Reported at the object's first line, as upstream does (the message names the field).
    for (const e of result.errors) context.report(r, messages.schemaValidationError(e.message));
    for (const w of result.warnings) context.report(r, warning(w.message));
  }
}
