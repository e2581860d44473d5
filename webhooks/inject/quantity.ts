// Kubernetes resource quantities: parsing and the canonical form the apiserver and
// upstream's injector print ("2000m" → "2", "1024Mi" → "1Gi", "0.5" → "500m").
// Values are kept exactly as BigInt nano-units, so nothing is lost to floating point.

const BINARY: Record<string, bigint> = { Ki: 1n, Mi: 2n, Gi: 3n, Ti: 4n, Pi: 5n, Ei: 6n };
const DECIMAL: Record<string, number> = { n: -9, u: -6, m: -3, "": 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const DECIMAL_SUFFIX = Object.fromEntries(Object.entries(DECIMAL).map(([suffix, exp]) => [exp, suffix])) as Record<
  number,
  string
>;
const BINARY_SUFFIX = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
const NANO = 10n ** 9n;

export interface Quantity {
  /** The value in units of 10^-9, exact. */
  nanos: bigint;
  format: "BinarySI" | "DecimalSI";
}

export function parseQuantity(text: string): Quantity | undefined {
  const match = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$/.exec(text);
  if (!match) return undefined;
  const [, sign = "", number = "", suffix = ""] = match;
  const [whole = "", fraction = ""] = number.split(".");
  if (fraction.length > 9 && !/^0*$/.test(fraction.slice(9))) return undefined; // finer than nano: not exact
  let nanos = BigInt(`${whole || "0"}${fraction.slice(0, 9).padEnd(9, "0")}`);
  let format: Quantity["format"] = "DecimalSI";
  const binary = BINARY[suffix];
  if (binary !== undefined) {
    nanos *= 1024n ** binary;
    format = "BinarySI";
  } else {
    const exp = suffix.startsWith("e") || suffix.startsWith("E") ? Number(suffix.slice(1)) : (DECIMAL[suffix] ?? 0);
    nanos = exp >= 0 ? nanos * 10n ** BigInt(exp) : nanos / 10n ** BigInt(-exp);
  }
  return { nanos: sign === "-" ? -nanos : nanos, format };
}

/** The canonical string of a quantity, or the input unchanged when it does not parse. */
export function canonicalQuantity(text: string): string {
  const q = parseQuantity(text);
  return q ? formatQuantity(q) : text;
}

export function formatQuantity(q: Quantity): string {
  const negative = q.nanos < 0n;
  const nanos = negative ? -q.nanos : q.nanos;
  const sign = negative ? "-" : "";
  // Binary form only for whole byte counts of at least 1024; smaller ones print in decimal.
  if (q.format === "BinarySI" && nanos % NANO === 0n && nanos / NANO >= 1024n) {
    const bytes = nanos / NANO;
    let power = 0;
    while (power < 6 && bytes % 1024n ** BigInt(power + 1) === 0n) power++;
    return `${sign}${bytes / 1024n ** BigInt(power)}${BINARY_SUFFIX[power]}`;
  }
  if (nanos === 0n) return "0";
  let exp = -9;
  while (exp < 18 && nanos % 10n ** BigInt(exp + 3 + 9) === 0n) exp += 3;
  return `${sign}${nanos / 10n ** BigInt(exp + 9)}${DECIMAL_SUFFIX[exp]}`;
}
