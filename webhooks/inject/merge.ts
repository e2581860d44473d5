// Strategic merge of a partial pod onto a pod, with Kubernetes' rules for the Pod
// type: lists of named things (containers, volumes, env, ports, mounts) merge item
// by item on their key; any other list is replaced; objects merge field by field;
// null deletes. Volumes use retainKeys: a patched volume keeps only the fields the
// patch names, so a volume's source is replaced, not mixed.
import { isPlainObject } from "./config.ts";

type Json = unknown;
type JsonObject = Record<string, Json>;

/** Merge key (and retainKeys) of list fields, by the field's path with list indices dropped. */
const LIST_KEYS: Record<string, { key: string; retainKeys?: boolean } | "set"> = {
  "metadata.finalizers": "set",
  "metadata.ownerReferences": { key: "uid" },
  "spec.containers": { key: "name" },
  "spec.initContainers": { key: "name" },
  "spec.ephemeralContainers": { key: "name" },
  "spec.volumes": { key: "name", retainKeys: true },
  "spec.imagePullSecrets": { key: "name" },
  "spec.hostAliases": { key: "ip" },
  "spec.topologySpreadConstraints": { key: "topologyKey" },
  "spec.resourceClaims": { key: "name" },
  "spec.schedulingGates": { key: "name" },
};
const CONTAINER_LIST_KEYS: Record<string, { key: string }> = {
  env: { key: "name" },
  ports: { key: "containerPort" },
  volumeMounts: { key: "mountPath" },
  volumeDevices: { key: "devicePath" },
  resizePolicy: { key: "resourceName" },
};

/** Returns a new pod: `overlay` strategic-merged onto `target`. Neither input is changed. */
export function strategicMergePod<T>(target: T, overlay: unknown): T {
  return mergeValue(structuredClone(target), overlay, "") as T;
}

function listRule(path: string): { key: string; retainKeys?: boolean } | "set" | undefined {
  const direct = LIST_KEYS[path];
  if (direct) return direct;
  const containerField = /^spec\.(?:containers|initContainers|ephemeralContainers)\.([A-Za-z]+)$/.exec(path)?.[1];
  return containerField ? CONTAINER_LIST_KEYS[containerField] : undefined;
}

function mergeValue(target: Json, patch: Json, path: string): Json {
  if (isPlainObject(patch)) {
    if (!isPlainObject(target)) return mergeValue({}, patch, path);
    return mergeObject(target, patch, path);
  }
  if (Array.isArray(patch)) {
    const rule = listRule(path);
    if (rule === undefined || !Array.isArray(target)) return structuredClone(patch);
    if (rule === "set") return [...new Set([...target, ...patch])];
    return mergeKeyedList(target, patch, path, rule.key, rule.retainKeys ?? false);
  }
  return patch;
}

function mergeObject(target: JsonObject, patch: JsonObject, path: string): JsonObject {
  const out: JsonObject = { ...target };
  for (const [field, value] of Object.entries(patch)) {
    const childPath = path ? `${path}.${field}` : field;
    if (value === null) delete out[field];
    else out[field] = mergeValue(target[field], value, childPath);
  }
  return out;
}

/**
 * Items are matched on `key`. The result keeps Kubernetes' order: patch items in
 * patch order, and each item only in the target placed before the first patch
 * item that already existed after it in the target.
 */
function mergeKeyedList(target: Json[], patch: Json[], path: string, key: string, retainKeys: boolean): Json[] {
  const keyOf = (item: Json) => (isPlainObject(item) ? item[key] : undefined);
  const targetIndex = new Map(target.map((item, i) => [keyOf(item), i]));
  const patchKeys = new Set(patch.map(keyOf));
  const merged = patch.map((item) => {
    const i = targetIndex.get(keyOf(item));
    if (i === undefined) return mergeValue(undefined, item, path);
    const base = target[i];
    if (retainKeys && isPlainObject(base) && isPlainObject(item)) {
      const kept = Object.fromEntries(Object.entries(base).filter(([field]) => field in item));
      return mergeObject(kept, item, path);
    }
    return mergeValue(base, item, path);
  });
  const targetOnly = target.filter((item) => !patchKeys.has(keyOf(item)));

  const out: Json[] = [];
  let i = 0;
  let j = 0;
  while (i < targetOnly.length || j < merged.length) {
    if (j >= merged.length) out.push(targetOnly[i++]);
    else if (i >= targetOnly.length) out.push(merged[j++]);
    else {
      const left = targetIndex.get(keyOf(targetOnly[i]));
      const right = targetIndex.get(keyOf(merged[j]));
      if (left !== undefined && right !== undefined && left < right) out.push(targetOnly[i++]);
      else out.push(merged[j++]);
    }
  }
  return out;
}
