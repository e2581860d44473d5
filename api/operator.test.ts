// The CRDs (crds/operator.ts) and the TypeScript types (api/operator.ts) name the same fields.
import { expect, test } from "vitest";
import { operatorCrds } from "../crds/operator.ts";
import { API_FIELDS, GROUP, VERSION } from "./operator.ts";

interface Crd {
  spec: {
    group: string;
    names: { kind: keyof typeof API_FIELDS };
    versions: { name: string; schema: { openAPIV3Schema: { properties: Record<string, { properties?: object }> } } }[];
  };
}

const crds = operatorCrds() as Crd[];

test("every kind of the API has a CRD in its group and version, and no CRD is without a type", () => {
  expect(crds.map((c) => c.spec.names.kind).sort()).toEqual(Object.keys(API_FIELDS).sort());
  for (const crd of crds) {
    expect(crd.spec.group).toBe(GROUP);
    expect(crd.spec.versions.map((v) => v.name)).toEqual([VERSION]);
  }
});

test.each(crds.map((c) => [c.spec.names.kind, c] as const))(
  "%s: schema and type name the same spec and status fields",
  (kind, crd) => {
    const schema = crd.spec.versions[0]?.schema.openAPIV3Schema.properties ?? {};
    const fields = API_FIELDS[kind];
    expect(Object.keys(schema.spec?.properties ?? {}).sort(), `${kind} spec`).toEqual(Object.keys(fields.spec).sort());
    expect(Object.keys(schema.status?.properties ?? {}).sort(), `${kind} status`).toEqual(Object.keys(fields.status).sort());
  },
);
