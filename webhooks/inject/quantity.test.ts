import { expect, test } from "vitest";
import { canonicalQuantity, parseQuantity } from "./quantity.ts";

test.each([
  ["2000m", "2"],
  ["1000m", "1"],
  ["100m", "100m"],
  ["1500m", "1500m"],
  ["0.5", "500m"],
  ["1024Mi", "1Gi"],
  ["1536Mi", "1536Mi"],
  ["128Mi", "128Mi"],
  ["2Gi", "2Gi"],
  ["4000m", "4"],
  ["1000", "1k"],
  ["0", "0"],
  ["1e3", "1k"],
  ["0.5Ki", "512"],
])("%s is printed as %s", (input, canonical) => {
  expect(canonicalQuantity(input)).toBe(canonical);
});

test.each(["lots", "1.2.3", "10Mb", "", "1 Gi"])("%j is not a quantity", (input) => {
  expect(parseQuantity(input)).toBeUndefined();
});
