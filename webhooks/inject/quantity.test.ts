// Quantities against apimachinery's own answers (testdata/quantities.golden, printed by
// testdata/kube-quantity/main.go from the inputs in testdata/quantities.txt).
import { readFileSync } from "node:fs";
import { expect, test } from "vitest";
import { canonicalQuantity, MAX_QUANTITY_LENGTH, parseQuantity } from "./quantity.ts";

const golden = readFileSync(new URL("./testdata/quantities.golden", import.meta.url), "utf8")
  .trimEnd()
  .split("\n")
  .map((line) => line.split("\t") as [string, string]);

/** Where Rigger answers differently on purpose, and why. */
const INTENDED: Record<string, { rigger: string; why: string }> = {
  "1000E": { rigger: "1e21", why: "apimachinery has no suffix past E and prints the digits alone, losing 10^21" },
  "1e9999999999": {
    rigger: "ERROR",
    why: "apimachinery truncates the exponent to 32 bits; an exponent outside int32 is refused",
  },
};

test.each(golden)("%j is printed as apimachinery prints it: %j", (input, expected) => {
  const ours = parseQuantity(input) ? canonicalQuantity(input) : "ERROR";
  expect(ours).toBe(INTENDED[input]?.rigger ?? expected);
});

test("every intended difference still applies (a stale entry fails)", () => {
  const inputs = new Map(golden);
  for (const [input, { rigger }] of Object.entries(INTENDED)) {
    expect(inputs.has(input), `${input} is in the golden file`).toBe(true);
    expect(inputs.get(input), `${input}: apimachinery now agrees; drop the entry`).not.toBe(rigger);
  }
});

test("an exponent is never expanded: huge and tiny powers cost as little as small ones", () => {
  // apimachinery itself takes unbounded time on 1e-99999999 (it rounds by multiplying out); the value rounds up to 10^-9, printed as 1e-9 like 1e-9999 is.
  // Expanded, any of these runs for minutes and the test's time limit fails it.
  const cases: [string, string][] = [
    ["1e99999999", "1e99999999"],
    ["1e-99999999", "1e-9"],
    ["-7e-2147483648", "-1e-9"],
    ["9e2147483647", "90e2147483646"],
  ];
  for (const [input, expected] of cases) {
    expect(canonicalQuantity(input)).toBe(expected);
  }
});

test("text longer than the bound is refused without being parsed", () => {
  expect(parseQuantity("1".repeat(MAX_QUANTITY_LENGTH))).toBeDefined();
  expect(parseQuantity("1".repeat(MAX_QUANTITY_LENGTH + 1))).toBeUndefined();
});
