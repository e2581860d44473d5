// The shape of a pod as Kubernetes' types define it, checked before injection reads it.
// The apiserver only sends well-typed pods, but anyone who can reach the webhook can send
// anything: `containers: null`, an annotation that is a number, a list where an object
// belongs. Each of those gets a denial naming the field instead of a crash.
//
// The types come from @kubernetes/client-node's generated models (each class lists its
// fields and their types), so the check follows the client's Kubernetes version without a
// schema of our own (imported from the models alone: half the load time of the whole client). Fields the models do not know are left alone, as is `null` (Kubernetes
// reads it as absent; withoutNulls() drops it before injection).
import * as models from "@kubernetes/client-node/dist/gen/models/all.js";

interface Attribute {
  baseName: string;
  type: string;
}
type Model = { getAttributeTypeMap(): Attribute[] };

const MODELS = models as unknown as Record<string, Model | undefined>;

/** The first place where `pod` is not a V1Pod, as "path: expected X, got Y", or undefined. */
export function podShapeProblem(pod: unknown): string | undefined {
  if (!isObject(pod)) return mismatch("pod", "an object", pod);
  const path = ["pod"];
  const problem = checker("V1Pod")(pod, path);
  return problem && `${path.join("")}: ${problem}`;
}

/**
 * A check of one type, compiled once per type name (this runs on every admission request).
 * It returns what is wrong ("expected …, got …") and leaves `path` pointing at the place.
 */
type Check = (value: unknown, path: string[]) => string | undefined;
const checkers = new Map<string, Check>();

function checker(type: string): Check {
  let check = checkers.get(type);
  if (!check) {
    // Registered before compiling, so recursive types (a field of the type's own kind) resolve.
    checkers.set(type, (value, path) => (check as Check)(value, path));
    check = compile(type);
    checkers.set(type, check);
  }
  return check;
}

function compile(type: string): Check {
  const array = /^Array<(.+)>$/.exec(type);
  if (array) {
    const item = array[1] ?? "any";
    return (value, path) => {
      if (value === null || value === undefined) return undefined;
      if (!Array.isArray(value)) return expected("a list", value);
      const check = checker(item);
      for (let i = 0; i < value.length; i++) {
        path.push(`[${i}]`);
        const v = value[i];
        const problem = v === null || v === undefined ? `expected ${article(item)}, got ${v}` : check(v, path);
        if (problem) return problem;
        path.pop();
      }
      return undefined;
    };
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    const item = map[1] ?? "any";
    return (value, path) => {
      if (value === null || value === undefined) return undefined;
      if (!isObject(value)) return expected("a map", value);
      const check = checker(item);
      for (const key in value) {
        path.push(`.${key}`);
        const problem = check(value[key], path);
        if (problem) return problem;
        path.pop();
      }
      return undefined;
    };
  }
  const scalar =
    (ok: (v: unknown) => boolean, what: string): Check =>
    (value) =>
      value === null || value === undefined || ok(value) ? undefined : expected(what, value);
  switch (type) {
    case "any":
      return () => undefined;
    case "string":
    case "Date":
      return scalar((v) => typeof v === "string", "a string");
    case "number":
      return scalar((v) => typeof v === "number" && Number.isFinite(v), "a number");
    case "boolean":
      return scalar((v) => typeof v === "boolean", "true or false");
    case "IntOrString":
      return scalar((v) => typeof v === "string" || typeof v === "number", "a number or a string");
  }
  const model = MODELS[type];
  if (typeof model?.getAttributeTypeMap !== "function") return () => undefined;
  const fields = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  return (value, path) => {
    if (value === null || value === undefined) return undefined;
    if (!isObject(value)) return expected("an object", value);
    for (const key in value) {
      const fieldType = fields.get(key);
      if (fieldType === undefined) continue;
      path.push(`.${key}`);
      const problem = checker(fieldType)(value[key], path);
      if (problem) return problem;
      path.pop();
    }
    return undefined;
  };
}

/** A copy without null-valued fields (Kubernetes reads them as absent). Arrays keep their items. */
export function withoutNulls<T>(value: T): T {
  if (Array.isArray(value)) return value.map((item) => withoutNulls(item)) as T;
  if (!isObject(value)) return value;
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) if (item !== null) copy[key] = withoutNulls(item);
  return copy as T;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function expected(what: string, value: unknown): string {
  const got = value === null ? "null" : Array.isArray(value) ? "a list" : `${article(typeof value)}`;
  return `expected ${what}, got ${got}`;
}

function mismatch(path: string, what: string, value: unknown): string {
  return `${path}: ${expected(what, value)}`;
}

function article(type: string): string {
  if (type.startsWith("V1") || type.startsWith("Core")) return "an object";
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}
