import { readFileSync } from "node:fs";
import { expect, test } from "vitest";
import { parseAllDocuments } from "yaml";
import { ISTIO_CRDS_FILE } from "./generate.ts";

interface Crd {
  spec: {
    group: string;
    names: { kind: string; shortNames?: string[] };
    scope: string;
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      schema?: { openAPIV3Schema?: { properties?: { spec?: { properties?: object } } } };
    }[];
  };
}

const crds = parseAllDocuments(readFileSync(ISTIO_CRDS_FILE, "utf8")).map((d) => d.toJS() as Crd);
const byKind = new Map(crds.map((c) => [`${c.spec.names.kind}.${c.spec.group}`, c]));

test("every Istio config kind has a CRD in its upstream group", () => {
  expect([...byKind.keys()].sort()).toEqual(
    [
      "AuthorizationPolicy.security.istio.io",
      "DestinationRule.networking.istio.io",
      "EnvoyFilter.networking.istio.io",
      "Gateway.networking.istio.io",
      "PeerAuthentication.security.istio.io",
      "ProxyConfig.networking.istio.io",
      "RequestAuthentication.security.istio.io",
      "ServiceEntry.networking.istio.io",
      "Sidecar.networking.istio.io",
      "Telemetry.telemetry.istio.io",
      "VirtualService.networking.istio.io",
      "WasmPlugin.extensions.istio.io",
      "WorkloadEntry.networking.istio.io",
      "WorkloadGroup.networking.istio.io",
    ].sort(),
  );
});

test("each CRD is namespaced, has exactly one storage version and a structural spec schema", () => {
  for (const [kind, crd] of byKind) {
    expect(crd.spec.scope, kind).toBe("Namespaced");
    expect(
      crd.spec.versions.filter((v) => v.storage),
      kind,
    ).toHaveLength(1);
    for (const v of crd.spec.versions) {
      expect(
        Object.keys(v.schema?.openAPIV3Schema?.properties?.spec?.properties ?? {}).length,
        `${kind} ${v.name}`,
      ).toBeGreaterThan(0);
    }
  }
});

test("served versions and short names are upstream's", () => {
  const served = (kind: string) =>
    byKind
      .get(kind)
      ?.spec.versions.filter((v) => v.served)
      .map((v) => v.name)
      .sort();
  expect(served("VirtualService.networking.istio.io")).toEqual(["v1", "v1alpha3", "v1beta1"]);
  expect(served("AuthorizationPolicy.security.istio.io")).toEqual(["v1", "v1beta1"]);
  expect(served("Telemetry.telemetry.istio.io")).toEqual(["v1", "v1alpha1"]);
  expect(byKind.get("VirtualService.networking.istio.io")?.spec.names.shortNames).toEqual(["vs"]);
  expect(byKind.get("DestinationRule.networking.istio.io")?.spec.names.shortNames).toEqual(["dr"]);
  expect(byKind.get("Gateway.networking.istio.io")?.spec.names.shortNames).toEqual(["gw"]);
});
