// Collects what validation finds: errors (the object is rejected) and warnings (it is
// accepted, and kubectl prints them), each with the path of the field it is about.

export interface Problem {
  /** e.g. spec.http[0].route[1].weight; empty for the object as a whole. */
  path: string;
  message: string;
}

export interface ValidationResult {
  errors: Problem[];
  warnings: Problem[];
}

export class Report {
  readonly errors: Problem[] = [];
  readonly warnings: Problem[] = [];

  error(path: string, message: string | undefined): void {
    if (message) this.errors.push({ path, message });
  }

  warn(path: string, message: string | undefined): void {
    if (message) this.warnings.push({ path, message });
  }

  result(): ValidationResult {
    return { errors: this.errors, warnings: this.warnings };
  }
}

/** `path: message`, or the message alone for the whole object. */
export function describeProblem(p: Problem): string {
  return p.path ? `${p.path}: ${p.message}` : p.message;
}

/** The child path for an object field or a list index. */
export function at(path: string, step: string | number): string {
  if (typeof step === "number") return `${path}[${step}]`;
  return path ? `${path}.${step}` : step;
}

export type Obj = Record<string, unknown>;

export function isObj(value: unknown): value is Obj {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The value as a list of objects (absent → empty); anything else in the list is reported. */
export function objects(report: Report, path: string, value: unknown): [Obj, string][] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    report.error(path, "must be a list");
    return [];
  }
  const out: [Obj, string][] = [];
  value.forEach((item, i) => {
    if (isObj(item)) out.push([item, at(path, i)]);
    else report.error(at(path, i), "must be an object");
  });
  return out;
}

/** The value as a list of strings (absent → empty). */
export function strings(report: Report, path: string, value: unknown): [string, string][] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    report.error(path, "must be a list of strings");
    return [];
  }
  const out: [string, string][] = [];
  value.forEach((item, i) => {
    if (typeof item === "string") out.push([item, at(path, i)]);
    else report.error(at(path, i), "must be a string");
  });
  return out;
}
