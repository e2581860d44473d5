import { describe, expect, test } from "vitest";
import { formatTable, tagRows } from "./tag.ts";

describe("rigger tag list", () => {
  const tag = (name: string, revision?: string) => ({
    metadata: { name },
    spec: { targetRef: { kind: "Istio", name: "default" } },
    status: revision ? { istioRevision: revision } : {},
  });
  const ns = (name: string, labels: Record<string, string>) => ({ metadata: { name, labels } });

  test("one row per tag, with the namespaces that use it", () => {
    const rows = tagRows(
      [tag("prod-stable", "default-v1-27-9"), tag("default", "default-v1-27-9"), tag("prod-canary")],
      [
        ns("shop", { "istio.io/rev": "prod-stable" }),
        ns("web", { "istio-injection": "enabled" }),
        ns("cart", { "istio.io/rev": "prod-stable" }),
      ],
    );
    expect(rows).toEqual([
      ["default", "default-v1-27-9", "web"],
      ["prod-canary", "(Istio default: unresolved)", ""],
      ["prod-stable", "default-v1-27-9", "cart,shop"],
    ]);
    expect(formatTable(rows)).toBe(
      [
        "TAG           REVISION                      NAMESPACES",
        "default       default-v1-27-9               web",
        "prod-canary   (Istio default: unresolved)",
        "prod-stable   default-v1-27-9               cart,shop",
        "",
      ].join("\n"),
    );
  });
});
