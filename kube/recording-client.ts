// An in-memory RawClient for controller tests: objects stored by their API path, answers as
// the apiserver would for what controllers do (404 for a missing object, lists of a collection,
// server-side apply as create-or-merge, status as a subresource), and every write recorded.
// Controllers are tested by the writes they make: given these objects, reconcile(key) writes
// exactly this, and nothing when run again.
import { ApiError, type RawClient } from "./raw-client.ts";

export interface RecordedWrite {
  verb: "create" | "update" | "apply" | "apply-dry-run" | "delete";
  path: string;
  body?: object;
}

type Stored = { metadata?: { name?: string; namespace?: string; resourceVersion?: string; [k: string]: unknown } } & Record<
  string,
  unknown
>;

export class RecordingClient implements RawClient {
  readonly objects = new Map<string, Stored>();
  readonly writes: RecordedWrite[] = [];
  private version = 1;

  /** Seeds an object at its path (no write recorded). */
  put(path: string, object: object): this {
    this.objects.set(path, this.stamp(structuredClone(object) as Stored));
    return this;
  }

  /** The writes so far, as "verb path" lines (bodies in `writes`). */
  writeLines(): string[] {
    return this.writes.map((w) => `${w.verb} ${w.path}`);
  }

  async get<T>(path: string): Promise<T> {
    const [bare = ""] = path.split("?");
    const object = this.objects.get(bare);
    if (object) return structuredClone(object) as T;
    const items = [...this.objects].filter(([p]) => isIn(p, bare)).map(([, o]) => structuredClone(o));
    if (items.length > 0 || isCollection(bare)) return { items, metadata: { resourceVersion: String(this.version) } } as T;
    throw new ApiError(404, "NotFound", `GET ${path}: 404 NotFound`);
  }

  async create<T>(path: string, body: object): Promise<T> {
    this.writes.push({ verb: "create", path, body });
    const name = (body as Stored).metadata?.name;
    const at = `${path}/${name}`;
    if (this.objects.has(at)) throw new ApiError(409, "AlreadyExists", `POST ${path}: ${name} exists`);
    this.objects.set(at, this.stamp(structuredClone(body) as Stored));
    return structuredClone(this.objects.get(at)) as T;
  }

  async replace<T>(path: string, body: object): Promise<T> {
    this.writes.push({ verb: "update", path, body });
    if (!this.objects.has(path)) throw new ApiError(404, "NotFound", `PUT ${path}: 404 NotFound`);
    this.objects.set(path, this.stamp(structuredClone(body) as Stored));
    return structuredClone(this.objects.get(path)) as T;
  }

  async apply<T>(path: string, body: object, _fieldManager: string, options?: { dryRun?: boolean }): Promise<T> {
    this.writes.push({ verb: options?.dryRun ? "apply-dry-run" : "apply", path, body });
    const status = path.endsWith("/status");
    const target = status ? path.slice(0, -"/status".length) : path;
    const live = this.objects.get(target);
    if (status && !live) throw new ApiError(404, "NotFound", `PATCH ${path}: 404 NotFound`);
    const applied = status
      ? { ...live, status: (body as { status?: unknown }).status }
      : (merged(live ?? {}, structuredClone(body)) as Stored);
    if (options?.dryRun) return structuredClone(applied) as T;
    this.objects.set(target, this.stamp(applied as Stored));
    return structuredClone(this.objects.get(target)) as T;
  }

  async delete(path: string): Promise<void> {
    this.writes.push({ verb: "delete", path });
    if (!this.objects.delete(path)) throw new ApiError(404, "NotFound", `DELETE ${path}: 404 NotFound`);
  }

  private stamp(object: Stored): Stored {
    object.metadata = { ...object.metadata, resourceVersion: String(++this.version) };
    return object;
  }
}

/**
 * Server-side apply's merge, as far as controllers need it: objects field by field, lists of
 * named items (containers, webhooks, ports by name) item by item, other lists replaced.
 */
function merged(live: unknown, applied: unknown): unknown {
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
  if (isObject(live) && isObject(applied)) {
    const out: Record<string, unknown> = { ...live };
    for (const [k, v] of Object.entries(applied)) out[k] = k in live ? merged(live[k], v) : v;
    return out;
  }
  const named = (v: unknown): v is Record<string, unknown>[] =>
    Array.isArray(v) && v.every((i) => isObject(i) && typeof i.name === "string");
  if (named(live) && named(applied)) {
    const out = [...live];
    for (const item of applied) {
      const at = out.findIndex((o) => o.name === item.name);
      if (at >= 0) out[at] = merged(out[at], item) as Record<string, unknown>;
      else out.push(item);
    }
    return out;
  }
  return applied;
}

/** Whether the object path `path` lies in the collection `collection` (cluster-wide or one namespace). */
function isIn(path: string, collection: string): boolean {
  if (path.startsWith(`${collection}/`)) return !path.slice(collection.length + 1).includes("/");
  // A cluster-wide collection holds namespaced objects too: /api/v1/pods ∋ /api/v1/namespaces/a/pods/b.
  const match = /^(\/api\/v1|\/apis\/[^/]+\/[^/]+)\/([^/]+)$/.exec(collection);
  if (!match) return false;
  const [, prefix, resource] = match;
  const namespaced = `${prefix}/namespaces/`;
  const rest = path.startsWith(namespaced) ? path.slice(namespaced.length).split("/") : [];
  return rest.length === 3 && rest[1] === resource;
}

function isCollection(path: string): boolean {
  return /^(\/api\/v1|\/apis\/[^/]+\/[^/]+)(\/namespaces\/[^/]+)?\/[^/]+$/.test(path) && !/\/namespaces\/[^/]+$/.test(path);
}
