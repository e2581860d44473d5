// Validation of the pod annotations that steer injection. A bad value rejects the
// pod with a message naming the annotation and the value, in upstream's wording.
import { isIP } from "node:net";
import { parseQuantity } from "./quantity.ts";

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

const quantity: Check = (value) => {
  if ([...value].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) return "value contains control characters";
  return parseQuantity(value)
    ? undefined
    : "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
};

const CHECKS: Record<string, Check> = {
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
    const check = CHECKS[name];
    const value = annotations[name] ?? "";
    const problem = check?.(value);
    if (problem) problems.push(`invalid value '${value}' for annotation '${name}': ${problem}`);
  }
  return problems;
}
