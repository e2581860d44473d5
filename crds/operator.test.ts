import { readFileSync } from "node:fs";
import { expect, test } from "vitest";
import { parseAllDocuments } from "yaml";
import { OPERATOR_CRDS_FILE } from "./generate.ts";

const crds = parseAllDocuments(readFileSync(OPERATOR_CRDS_FILE, "utf8")).map((d) => d.toJS());

test("the operator API is operator.rigger.dev/v1alpha1 with a status subresource; only gateways are namespaced", () => {
  expect(crds.map((c) => c.spec.names.kind)).toEqual(["Istio", "IstioRevision", "IstioRevisionTag", "IstioGateway"]);
  for (const crd of crds) {
    expect(crd.spec.group).toBe("operator.rigger.dev");
    expect(crd.spec.scope).toBe(crd.spec.names.kind === "IstioGateway" ? "Namespaced" : "Cluster");
    expect(crd.spec.versions.map((v: { name: string }) => v.name)).toEqual(["v1alpha1"]);
    expect(crd.spec.versions[0].subresources).toEqual({ status: {} });
    const status = crd.spec.versions[0].schema.openAPIV3Schema.properties.status.properties;
    expect(Object.keys(status)).toEqual(expect.arrayContaining(["observedGeneration", "conditions", "state"]));
  }
});

/** Every object node of a structural schema declares its type. */
function untyped(schema: Record<string, unknown>, path: string): string[] {
  const out: string[] = [];
  if (!("type" in schema) && !("x-kubernetes-int-or-string" in schema) && !("x-kubernetes-preserve-unknown-fields" in schema))
    out.push(path);
  for (const [key, child] of Object.entries((schema.properties as Record<string, Record<string, unknown>>) ?? {}))
    out.push(...untyped(child, `${path}.${key}`));
  if (schema.items) out.push(...untyped(schema.items as Record<string, unknown>, `${path}[]`));
  return out;
}

test("the schemas are structural", () => {
  for (const crd of crds) expect(untyped(crd.spec.versions[0].schema.openAPIV3Schema, crd.spec.names.kind)).toEqual([]);
});
