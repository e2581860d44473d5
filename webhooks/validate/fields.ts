// Field checks shared by the per-kind validators. Each returns an error message, or
// undefined when the value is fine. Messages follow upstream's wording where it has one.
import { isIP } from "node:net";

/** Port protocols Istio understands (Gateway servers, ServiceEntry ports), upper case. */
export const PROTOCOLS = new Set(["HTTP", "HTTPS", "HTTP2", "GRPC", "GRPC-WEB", "MONGO", "REDIS", "MYSQL", "TCP", "TLS", "UDP"]);

const DNS1123_LABEL = /^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

export function dnsLabel(value: string): string | undefined {
  if (value.length > 63 || !DNS1123_LABEL.test(value)) return `"${value}" is not a valid DNS label`;
  return undefined;
}

/** A fully qualified domain name: labels of ≤63, ≤255 in all, a trailing dot allowed, TLD not all digits. */
export function fqdn(value: string): string | undefined {
  const name = value.endsWith(".") ? value.slice(0, -1) : value;
  if (name.length === 0) return "empty domain name not allowed";
  if (name.length > 255) return `domain name "${value}" too long (max 255)`;
  const labels = name.split(".");
  for (const label of labels) {
    if (!DNS1123_LABEL.test(label) || label.length > 63) return `domain name "${value}" invalid (label "${label}" invalid)`;
  }
  if (labels.length > 1 && /^\d+$/.test(labels[labels.length - 1] ?? ""))
    return `domain name "${value}" invalid (top level domain is all digits)`;
  return undefined;
}

/** A domain whose first label may be a wildcard: `*`, `*foo`, `*-foo`, or `*.example.com`. */
export function wildcardDomain(value: string): string | undefined {
  if (value.length === 0) return "empty domain name not allowed";
  if (value === "*") return undefined;
  if (value.startsWith("*")) {
    const rest = value.slice(1);
    if (rest.startsWith(".")) return fqdn(rest.slice(1));
    const dot = rest.indexOf(".");
    if (dot === -1) return DNS1123_LABEL.test(`x${rest}`) ? undefined : `domain name "${value}" invalid`;
    return fqdn(`x${rest}`);
  }
  return fqdn(value);
}

/** A Gateway or Sidecar host: `*`, `*.x`, or an FQDN; partial wildcards are not allowed. */
export function strictWildcardDomain(value: string): string | undefined {
  if (value === "*") return undefined;
  if (value.startsWith("*.")) return fqdn(value.slice(2));
  if (value.includes("*")) return `partial wildcard "${value}" not allowed`;
  return fqdn(value);
}

export function port(value: unknown): string | undefined {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 65535) {
    return `port number ${String(value)} must be in the range 1..65535`;
  }
  return undefined;
}

export function ip(value: string): string | undefined {
  return isIP(value) ? undefined : `${value} is not a valid IP`;
}

export function cidrOrIp(value: string): string | undefined {
  if (isIP(value)) return undefined;
  const [address, bits, extra] = value.split("/");
  const family = isIP(address ?? "");
  if (
    family === 0 ||
    extra !== undefined ||
    bits === undefined ||
    !/^\d+$/.test(bits) ||
    Number(bits) > (family === 4 ? 32 : 128)
  ) {
    return `${value} is not a valid CIDR block`;
  }
  return undefined;
}

/** Istio's durations: protobuf JSON strings like "1.5s", at least 1ms, whole milliseconds. */
export function duration(value: unknown): string | undefined {
  const seconds = durationSeconds(value);
  if (seconds === undefined) return `invalid duration ${JSON.stringify(value)}`;
  if (seconds < 0.001) return "duration must be greater than 1ms";
  if (Math.abs(seconds * 1000 - Math.round(seconds * 1000)) > 1e-9) return "only durations to ms precision are supported";
  return undefined;
}

/** Seconds in a protobuf duration string ("10s", "0.5s", "1.000000001s"), or undefined when it is not one. */
export function durationSeconds(value: unknown): number | undefined {
  if (typeof value !== "string") return undefined;
  const match = /^(-?\d+(?:\.\d{1,9})?)s$/.exec(value);
  if (match?.[1]) return Number(match[1]);
  // Kubernetes-style units (1m, 200ms) are accepted by Istio's YAML path too.
  const go = /^(\d+(?:\.\d+)?)(h|m|ms|us|µs|ns)$/.exec(value);
  if (!go?.[1]) return undefined;
  const scale: Record<string, number> = { h: 3600, m: 60, ms: 1e-3, us: 1e-6, µs: 1e-6, ns: 1e-9 };
  return Number(go[1]) * (scale[go[2] ?? ""] ?? 1);
}

/** A label key: an optional DNS prefix and `/`, then a name of at most 63 characters. */
export function labelKey(key: string): string | undefined {
  const slash = key.lastIndexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : "";
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (
    (slash >= 0 && (prefix.length === 0 || prefix.length > 253 || fqdn(prefix))) ||
    name.length > 63 ||
    !LABEL_NAME.test(name)
  ) {
    return `invalid tag key: "${key}"`;
  }
  return undefined;
}

export function labelValue(value: string): string | undefined {
  if (value === "") return undefined;
  if (value.length > 63 || !LABEL_NAME.test(value)) return `invalid tag value: "${value}"`;
  return undefined;
}

export function labels(map: unknown): string[] {
  if (map === undefined || map === null) return [];
  if (typeof map !== "object") return ["labels must be a map of strings"];
  const problems: string[] = [];
  for (const [key, value] of Object.entries(map as Record<string, unknown>)) {
    const k = labelKey(key);
    if (k) problems.push(k);
    const v = labelValue(String(value));
    if (v) problems.push(v);
  }
  return problems;
}

/** Compiles a regular expression the way Envoy will: RE2 syntax, which lacks lookaround and backreferences. */
export function re2(value: string): string | undefined {
  if (value.length > 1024) return "regex is too long (max 1024 characters)";
  if (/\(\?[=!<]|\\[1-9]/.test(value)) {
    return "error parsing regexp: invalid or unsupported Perl syntax; Istio uses RE2 style regex-based match (https://github.com/google/re2/wiki/Syntax)";
  }
  try {
    new RegExp(value, "u");
  } catch (err) {
    return `error parsing regexp: ${(err as Error).message}`;
  }
  return undefined;
}
