import { describe, expect, test } from "vitest";
import type { ClusterLoadAssignment } from "../envoy/third_party/envoy/config/endpoint/v3/endpoint.ts";
import { applyLocality, changesEndpoints, localityPolicy, localityWeighted } from "./locality.ts";

const group = (region: string, zone: string, subZone = "") => ({
  locality: { region, zone, subZone },
  lbEndpoints: [{ endpoint: { address: { socketAddress: { address: `${region}-${zone}`, portValue: 80 } } } }],
  loadBalancingWeight: 1,
});
const assignment: ClusterLoadAssignment = {
  clusterName: "outbound|80||echo",
  endpoints: [group("r1", "z1", "s1"), group("r1", "z1", "s2"), group("r1", "z2"), group("r2", "z1"), group("r3", "z1")],
};
const at = { region: "r1", zone: "z1", subzone: "s1" };
const summary = (a: ClusterLoadAssignment) =>
  (a.endpoints ?? []).map(
    (g) => `${g.locality?.region}/${g.locality?.zone}:${g.priority ?? 0}:${g.loadBalancingWeight}:${g.lbEndpoints?.length}`,
  );

describe("locality load balancing", () => {
  test("the mesh default fails over only with outlier detection; a rule can turn it off", () => {
    const mesh = { enabled: true };
    expect(changesEndpoints(localityPolicy({}, mesh))).toBe(false);
    expect(changesEndpoints(localityPolicy({ outlierDetection: {} }, mesh))).toBe(true);
    expect(
      localityPolicy({ outlierDetection: {}, loadBalancer: { localityLbSetting: { enabled: false } } }, mesh),
    ).toBeUndefined();
    expect(localityPolicy({ outlierDetection: {} }, { enabled: false })).toBeUndefined();
  });

  test("failover: priorities by nearness, renumbered without gaps; an explicit failover region ahead of the rest", () => {
    const plain = applyLocality(assignment, at, { setting: { enabled: true }, failover: true });
    expect(summary(plain)).toEqual(["r1/z1:0:1:1", "r1/z1:1:1:1", "r1/z2:2:1:1", "r2/z1:3:1:1", "r3/z1:3:1:1"]);
    const toR3 = applyLocality(assignment, at, { setting: { failover: [{ from: "r1", to: "r3" }] }, failover: true });
    expect(summary(toR3)).toEqual(["r1/z1:0:1:1", "r1/z1:1:1:1", "r1/z2:2:1:1", "r2/z1:4:1:1", "r3/z1:3:1:1"]);
    expect(localityWeighted({ setting: { failover: [{ from: "r1", to: "r3" }] }, failover: true })).toBe(true);
    // The shared assignment is not changed.
    expect(summary(assignment)[1]).toBe("r1/z1:0:1:1");
  });

  test("distribute: the first rule for the proxy's locality sets shares; unnamed localities are emptied", () => {
    const out = applyLocality(assignment, at, {
      setting: {
        distribute: [
          { from: "r1/z1/*", to: { "r1/z1/*": 70, "r3/*": 30 } },
          { from: "r1/*", to: { "r2/*": 100 } },
        ],
      },
      failover: false,
    });
    expect(summary(out)).toEqual(["r1/z1:0:35:1", "r1/z1:0:35:1", "r1/z2:0:1:0", "r2/z1:0:1:0", "r3/z1:0:30:1"]);
    const elsewhere = applyLocality(
      assignment,
      { region: "r9", zone: "", subzone: "" },
      { setting: { distribute: [{ from: "r1/*", to: { "r2/*": 100 } }] }, failover: false },
    );
    expect(summary(elsewhere)).toEqual(summary(assignment));
  });
});
