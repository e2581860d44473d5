// Validation of the pod annotations that steer injection. A bad value rejects the
// pod with a message naming the annotation and the value, in upstream's wording.
import { isIP } from "node:net";
import { MAX_QUANTITY_LENGTH, parseQuantity, type Quantity } from "./quantity.ts";

/** Largest value of an Istio annotation (any key with "istio.io/") the injector reads; Kubernetes allows 256 KiB in all. */
export const MAX_ANNOTATION_VALUE_BYTES = 32 * 1024;
/** How much of a bad value a message repeats. */
const QUOTED_VALUE_CHARS = 120;

type Check = (value: string) => string | undefined;

const port: Check = (value) => {
  const trimmed = value.trim();
  if (!/^\d+$/.test(trimmed) || Number(trimmed) > 65535) return `failed parsing port '${value}'`;
  return undefined;
};

const portList =
  (name: string): Check =>
  (value) => {
    const trimmed = value.trim();
    if (trimmed === "") return undefined;
    for (const part of trimmed.split(",")) {
      const problem = port(part);
      if (problem) return `${name} invalid: failed parsing port '${part}': ${problem}`;
    }
    return undefined;
  };

const cidrList = (value: string): string | undefined => {
  if (value === "") return undefined;
  for (const cidr of value.split(",")) {
    const [address, bits, extra] = cidr.split("/");
    const family = isIP(address ?? "");
    const max = family === 4 ? 32 : 128;
    if (family === 0 || extra !== undefined || bits === undefined || !/^\d+$/.test(bits) || Number(bits) > max) {
      return `failed parsing cidr '${cidr}'`;
    }
  }
  return undefined;
};

const uint32: Check = (value) =>
  /^\d+$/.test(value) && Number(value) <= 0xffffffff ? undefined : `parsing "${value}": invalid syntax`;

const bool: Check = (value) =>
  ["1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"].includes(value)
    ? undefined
    : `parsing "${value}": invalid syntax`;

const INT64_MAX = 2n ** 63n - 1n;

/** Whether 0 ≤ q ≤ 2^63-1, without expanding the exponent. */
function fitsInt64(q: Quantity): boolean {
  if (q.unscaled <= 0n) return q.unscaled === 0n;
  if (q.unscaled === 0n || q.exponent <= 0) return q.unscaled <= INT64_MAX * 10n ** BigInt(Math.max(0, -q.exponent));
  return q.exponent <= 19 && q.unscaled * 10n ** BigInt(q.exponent) <= INT64_MAX;
}

const quantity: Check = (value) => {
  if ([...value].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) return "value contains control characters";
  if (value.length > MAX_QUANTITY_LENGTH) return `quantities are at most ${MAX_QUANTITY_LENGTH} characters long`;
  const q = parseQuantity(value);
  if (!q) return "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
  // Beyond upstream, which passes such values on: a proxy's CPU or memory must be a number the kubelet can hold.
  if (!fitsInt64(q)) return `quantity out of range: must be between 0 and ${INT64_MAX}`;
  return undefined;
};

/** A JSON object whose values are objects: sidecar.istio.io/userVolume and userVolumeMount. */
const jsonObjectOfObjects: Check = (value) => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (err) {
    return `not JSON: ${(err as Error).message}`;
  }
  const isObject = (v: unknown) => typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isObject(parsed)) return "expected a JSON object of name: definition";
  const bad = Object.entries(parsed as object).find(([, v]) => !isObject(v));
  return bad ? `the entry '${bad[0]}' is not an object` : undefined;
};

const CHECKS: Record<string, Check> = {
  "sidecar.istio.io/userVolume": jsonObjectOfObjects,
  "sidecar.istio.io/userVolumeMount": jsonObjectOfObjects,
  "sidecar.istio.io/interceptionMode": (v) =>
    ["REDIRECT", "TPROXY", "NONE"].includes(v) ? undefined : `interceptionMode invalid, use REDIRECT,TPROXY,NONE: ${v}`,
  "status.sidecar.istio.io/port": (v) => {
    const problem = port(v);
    return problem ? `excludeInboundPorts invalid: ${problem}` : undefined;
  },
  "readiness.status.sidecar.istio.io/initialDelaySeconds": uint32,
  "readiness.status.sidecar.istio.io/periodSeconds": uint32,
  "readiness.status.sidecar.istio.io/failureThreshold": uint32,
  "traffic.sidecar.istio.io/includeOutboundIPRanges": (v) => {
    if (v === "*") return undefined;
    const problem = cidrList(v);
    return problem ? `includeIPRanges invalid: ${problem}` : undefined;
  },
  "traffic.sidecar.istio.io/excludeOutboundIPRanges": (v) => {
    const problem = cidrList(v);
    return problem ? `excludeIPRanges invalid: ${problem}` : undefined;
  },
  "traffic.sidecar.istio.io/includeInboundPorts": (v) => (v === "*" ? undefined : portList("includeInboundPorts")(v)),
  "traffic.sidecar.istio.io/excludeInboundPorts": portList("excludeInboundPorts"),
  "traffic.sidecar.istio.io/excludeOutboundPorts": portList("excludeOutboundPorts"),
  "prometheus.istio.io/merge-metrics": bool,
  "sidecar.istio.io/proxyCPU": quantity,
  "sidecar.istio.io/proxyMemory": quantity,
  "sidecar.istio.io/proxyCPULimit": quantity,
  "sidecar.istio.io/proxyMemoryLimit": quantity,
};

/** Every problem with the pod's injection annotations, one message each, sorted by annotation name. */
export function annotationProblems(annotations: Record<string, string>): string[] {
  const problems: string[] = [];
  for (const name of Object.keys(annotations).sort()) {
    const value = annotations[name] ?? "";
    if (value.length > MAX_ANNOTATION_VALUE_BYTES && name.includes("istio.io/")) {
      const bytes = Buffer.byteLength(value);
      if (bytes > MAX_ANNOTATION_VALUE_BYTES) {
        problems.push(`value of annotation '${name}' is ${bytes} bytes long; at most ${MAX_ANNOTATION_VALUE_BYTES} are accepted`);
        continue;
      }
    }
    const problem = CHECKS[name]?.(value);
    if (problem) problems.push(`invalid value '${quoted(value)}' for annotation '${name}': ${problem}`);
  }
  return problems;
}

/** A value as messages repeat it: cut short when long. */
export function quoted(value: string): string {
  return value.length > QUOTED_VALUE_CHARS ? `${value.slice(0, QUOTED_VALUE_CHARS)}… (${value.length} characters)` : value;
}
