import { describe, expect, test } from "vitest";
import { delayMs, expectedRevision, rolledOut } from "./workload-migration.ts";

describe("workload migration", () => {
  const tags = new Map([
    ["prod-stable", "mesh-v1-27-9"],
    ["default", "mesh-v1-27-9"],
  ]);

  test("a namespace asks for its tag's revision, the revision it names, or the default tag's", () => {
    expect(expectedRevision({ "istio.io/rev": "prod-stable" }, tags)).toBe("mesh-v1-27-9");
    expect(expectedRevision({ "istio.io/rev": "mesh-v1-27-8" }, tags)).toBe("mesh-v1-27-8");
    expect(expectedRevision({ "istio-injection": "enabled", "istio.io/rev": "x" }, tags)).toBe("mesh-v1-27-9");
    expect(expectedRevision({ "istio-injection": "enabled" }, new Map())).toBe("default");
    expect(expectedRevision({}, tags)).toBeUndefined();
  });

  test("delays are seconds or minutes", () => {
    expect(delayMs("30s")).toBe(30_000);
    expect(delayMs("2m")).toBe(120_000);
    expect(delayMs(undefined)).toBe(0);
  });

  test("a Deployment has rolled out when every replica is updated, ready and available for its generation", () => {
    const deployment = (status: Record<string, number>, generation = 2) => ({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "web", generation },
      spec: { replicas: 2 },
      status,
    });
    const done = { observedGeneration: 2, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2 };
    expect(rolledOut("Deployment", deployment(done))).toBe(true);
    expect(rolledOut("Deployment", deployment({ ...done, observedGeneration: 1 }))).toBe(false);
    expect(rolledOut("Deployment", deployment({ ...done, updatedReplicas: 1 }))).toBe(false);
    expect(rolledOut("Deployment", deployment({ ...done, replicas: 3 }))).toBe(false);
    const daemonSet = {
      ...deployment({}),
      kind: "DaemonSet",
      status: { observedGeneration: 2, desiredNumberScheduled: 1, updatedNumberScheduled: 1, numberReady: 1 },
    };
    expect(rolledOut("DaemonSet", daemonSet)).toBe(true);
  });
});
