// AdmissionReview in, AdmissionReview out, for the validation webhook. No I/O.
import { describeProblem } from "./report.ts";
import { validate } from "./validate.ts";

interface ValidationReview {
  apiVersion?: string;
  kind?: string;
  request?: {
    uid?: string;
    operation?: string;
    namespace?: string;
    object?: unknown;
  };
}

export type ValidationOutcome =
  | { outcome: "allowed"; review: object; warnings: string[]; kind: string }
  | { outcome: "denied"; review: object; message: string; kind: string }
  | { outcome: "invalid"; message: string };

const ACCEPTED_VERSIONS = new Set(["admission.k8s.io/v1", "admission.k8s.io/v1beta1"]);

/** Several errors read as upstream prints them (go-multierror), each with its field path. */
export function joinErrors(errors: string[]): string {
  if (errors.length === 1) return errors[0] ?? "";
  return `${errors.length} errors occurred:\n${errors.map((e) => `\t* ${e}`).join("\n")}\n\n`;
}

export function reviewValidation(body: unknown): ValidationOutcome {
  const review = body as ValidationReview;
  if (review === null || typeof review !== "object" || Array.isArray(review)) {
    return { outcome: "invalid", message: "request body is not an AdmissionReview object" };
  }
  if (review.kind !== "AdmissionReview" || !ACCEPTED_VERSIONS.has(review.apiVersion ?? "")) {
    return {
      outcome: "invalid",
      message: `expected kind AdmissionReview in admission.k8s.io/v1 or v1beta1, got ${review.kind ?? "no kind"} in ${review.apiVersion ?? "no apiVersion"}`,
    };
  }
  const request = review.request;
  if (!request?.uid) return { outcome: "invalid", message: "AdmissionReview has no request.uid" };
  const respond = (response: object) => ({
    apiVersion: review.apiVersion,
    kind: "AdmissionReview",
    response: { uid: request.uid, ...response },
  });
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
