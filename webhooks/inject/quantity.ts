// Kubernetes resource quantities, parsed and printed as k8s.io/apimachinery does
// (resource.ParseQuantity, Quantity.String): "2000m" → "2", "1024Mi" → "1Gi", "0.5" → "500m",
// "1e3" → "1e3". A value is kept as digits and a power of ten, like apimachinery's inf.Dec,
// so an exponent is never expanded: "1e99999999" costs as little as "1". Work is bounded by the
// input's length, and callers bound that (see MAX_QUANTITY_LENGTH).
// testdata/quantities.golden holds apimachinery's own answers; quantity.test.ts compares.

/** Longest quantity text accepted: far beyond any real resource value, small enough to stay cheap. */
export const MAX_QUANTITY_LENGTH = 100;

export interface Quantity {
  /** The value is unscaled × 10^exponent, exactly; never finer than 10^-9 (rounded up, as Kubernetes does). */
  unscaled: bigint;
  exponent: number;
  format: "BinarySI" | "DecimalSI" | "DecimalExponent";
  /** Set when apimachinery keeps the text as written (its fast path for small canonical-looking values): printed as is. */
  asWritten?: string;
}

const DECIMAL: Record<string, number> = { n: -9, u: -6, m: -3, "": 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const DECIMAL_SUFFIX: Record<number, string> = Object.fromEntries(Object.entries(DECIMAL).map(([s, e]) => [e, s]));
const BINARY: Record<string, number> = { Ki: 1, Mi: 2, Gi: 3, Ti: 4, Pi: 5, Ei: 6 };
const BINARY_SUFFIX = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
/** Binary quantities are capped here, as apimachinery caps them (2^63 - 1). */
const MAX_BINARY = 2n ** 63n - 1n;
const INT32 = 2 ** 31;

/**
 * Parses a quantity, or undefined when Kubernetes would refuse it. Differences from
 * apimachinery, on inputs no one writes: an exponent outside int32 is refused (apimachinery
 * truncates it to 32 bits), and so is text longer than MAX_QUANTITY_LENGTH.
 */
export function parseQuantity(text: string): Quantity | undefined {
  if (text.length === 0 || text.length > MAX_QUANTITY_LENGTH) return undefined;
  if (text === "0") return { unscaled: 0n, exponent: 0, format: "DecimalSI" };
  const match = /^([+-]?)(\d*)(?:\.(\d*))?([eEinumkKMGTP]*[+-]?\d*)$/.exec(text);
  if (!match) return undefined;
  const [, sign = "", whole = "", fraction = "", suffix = ""] = match;

  let format: Quantity["format"];
  let unscaled = BigInt(`${whole}${fraction}` || "0");
  let exponent = 0 - fraction.length; // not -length: -0 would leak into comparisons
  if (suffix in DECIMAL) {
    format = "DecimalSI";
    exponent += DECIMAL[suffix] ?? 0;
  } else if (suffix in BINARY) {
    format = "BinarySI";
    unscaled *= 1024n ** BigInt(BINARY[suffix] ?? 0);
  } else if (/^[eE][+-]?\d+$/.test(suffix)) {
    const power = Number(suffix.slice(1));
    if (!Number.isSafeInteger(power) || power >= INT32 || power < -INT32) return undefined;
    format = "DecimalExponent";
    exponent += power;
  } else {
    return undefined;
  }
  if (sign === "-") unscaled = -unscaled;
  // No digits at all: apimachinery reads zero on its fast path and fails on its slow one (a scale below nano).
  if (whole === "" && fraction === "" && exponent < -9) return undefined;
  if (keptAsWritten(whole, fraction, suffix, format, exponent, unscaled)) return { unscaled, exponent, format, asWritten: text };

  if (unscaled === 0n) return { unscaled, exponent: 0, format: format === "BinarySI" ? "DecimalSI" : format };
  let q = roundUpToNano({ unscaled, exponent, format });
  if (format === "BinarySI") {
    const magnitude = abs(q.unscaled);
    // Binary exponents are ≤ 0 (fraction digits only), so the scale below is small.
    if (magnitude > MAX_BINARY * 10n ** BigInt(-q.exponent))
      q = { unscaled: q.unscaled < 0n ? -MAX_BINARY : MAX_BINARY, exponent: 0, format };
    else if (q.exponent < 0 && magnitude > 0n && magnitude < 10n ** BigInt(-q.exponent)) q = { ...q, format: "DecimalSI" };
  }
  return q;
}

/** The canonical string of a quantity, or the input unchanged when it does not parse. */
export function canonicalQuantity(text: string): string {
  const q = parseQuantity(text);
  return q ? formatQuantity(q) : text;
}

/** Kubernetes' canonical form (Quantity.String()). */
export function formatQuantity(q: Quantity): string {
  if (q.asWritten !== undefined) return q.asWritten;
  if (q.unscaled === 0n) return "0";
  const sign = q.unscaled < 0n ? "-" : "";
  const magnitude = abs(q.unscaled);
  // Binary quantities have an exponent in [-109, 0] (fraction digits, nano rounding): cheap to test.
  const fractional = q.exponent < 0 ? 10n ** BigInt(-q.exponent) : 1n;
  if (q.format === "BinarySI" && magnitude % fractional === 0n && magnitude / fractional >= 1024n) {
    let bytes = magnitude / fractional;
    let power = 0;
    while (power < 6 && bytes % 1024n === 0n) {
      bytes /= 1024n;
      power++;
    }
    return `${sign}${bytes}${BINARY_SUFFIX[power]}`;
  }
  let digits = magnitude;
  let exponent = q.exponent;
  while (digits % 10n === 0n) {
    digits /= 10n;
    exponent++;
  }
  const rest = ((exponent % 3) + 3) % 3;
  digits *= 10n ** BigInt(rest);
  exponent -= rest;
  if (exponent === 0) return `${sign}${digits}`;
  if (q.format === "DecimalExponent") return `${sign}${digits}e${exponent}`;
  const suffix = DECIMAL_SUFFIX[exponent];
  // Past "E", apimachinery has no suffix and prints the digits alone (wrongly); the exponent form is exact.
  return suffix === undefined ? `${sign}${digits}e${exponent}` : `${sign}${digits}${suffix}`;
}

/**
 * apimachinery's fast path for values of at most 18 digits: it keeps the text as written
 * ("+1", "1E3", "007" stay so) when the power of ten is a multiple of 3 and the digits neither
 * start with 0 nor end in 000; binary values when the number is not a multiple of 8.
 */
function keptAsWritten(
  whole: string,
  fraction: string,
  suffix: string,
  format: Quantity["format"],
  exponent: number,
  unscaled: bigint,
): boolean {
  const num = whole.replace(/^0+/, "") || "0";
  const shifted = num + fraction;
  if (format === "BinarySI") {
    const power = 10 * (BINARY[suffix] ?? 0);
    const precision = 15 - num.length - Math.trunc((power * 3) / 10) - 1;
    return fraction === "" && precision >= 0 && abs(unscaled) <= MAX_BINARY && BigInt(num) % 8n !== 0n;
  }
  if (18 - shifted.length < 0 || exponent < -9) return false;
  return exponent % 3 === 0 && !shifted.endsWith("000") && !shifted.startsWith("0");
}

/** Rounds away from zero to a multiple of 10^-9, as apimachinery does at parse time. */
function roundUpToNano(q: Quantity): Quantity {
  if (q.exponent >= -9 || q.unscaled === 0n) return q;
  const shift = -9 - q.exponent;
  const magnitude = abs(q.unscaled);
  // More digits to drop than the number has: it is below 1n, so it becomes 1n.
  const kept = shift > magnitude.toString().length ? 1n : ceilDiv(magnitude, 10n ** BigInt(shift));
  return { unscaled: q.unscaled < 0n ? -kept : kept, exponent: -9, format: q.format };
}

function ceilDiv(a: bigint, b: bigint): bigint {
  return (a + b - 1n) / b;
}

function abs(n: bigint): bigint {
  return n < 0n ? -n : n;
}
