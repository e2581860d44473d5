// AdmissionReview in, AdmissionReview out, for the validation webhook. No I/O.
import { openEnvelope } from "../admission-review.ts";
import { describeProblem } from "./report.ts";
import { validate } from "./validate.ts";

export type ValidationOutcome =
  | { outcome: "allowed"; review: object; warnings: string[]; kind: string }
  | { outcome: "denied"; review: object; message: string; kind: string }
  | { outcome: "invalid"; message: string };

/** Several errors read as upstream prints them (go-multierror), each with its field path. */
export function joinErrors(errors: string[]): string {
  if (errors.length === 1) return errors[0] ?? "";
  return `${errors.length} errors occurred:\n${errors.map((e) => `\t* ${e}`).join("\n")}\n\n`;
}

export function reviewValidation(body: unknown): ValidationOutcome {
  const envelope = openEnvelope(body);
  if (!envelope.ok) return { outcome: "invalid", message: envelope.message };
  const { request, respond } = envelope;
  const object = request.object as { kind?: string } | undefined;
  const kind = object?.kind ?? "unknown";
  // Only what is stored is checked: deletes and connects pass.
  if (request.operation !== "CREATE" && request.operation !== "UPDATE") {
    return { outcome: "allowed", warnings: [], kind, review: respond({ allowed: true }) };
  }
  const result = validate(object, request.namespace ?? "default");
  const warnings = result.warnings.map(describeProblem);
  if (result.errors.length > 0) {
    const message = `configuration is invalid: ${joinErrors(result.errors.map(describeProblem))}`;
    return {
      outcome: "denied",
      message,
      kind,
      review: respond({ allowed: false, status: { message, code: 400 }, ...(warnings.length ? { warnings } : {}) }),
    };
  }
  return { outcome: "allowed", warnings, kind, review: respond({ allowed: true, ...(warnings.length ? { warnings } : {}) }) };
}
