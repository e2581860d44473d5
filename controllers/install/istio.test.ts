import { describe, expect, test } from "vitest";
import type { Istio, IstioRevision } from "../../api/operator.ts";
import type { Condition } from "../../kube/conditions.ts";
import { versions } from "../../versions.ts";
import { activeRevisionName, desiredRevision, inactiveRevisions, istioStatus, profileValues } from "./istio.ts";

const istio = (spec: Istio["spec"] = {}, name = "default"): Istio => ({
  apiVersion: "operator.rigger.dev/v1alpha1",
  kind: "Istio",
  metadata: { name, uid: "uid-1", generation: 3 },
  spec,
});

const revision = (name: string, conditions: Partial<Record<string, "True" | "False">>, generation = 1): IstioRevision => ({
  apiVersion: "operator.rigger.dev/v1alpha1",
  kind: "IstioRevision",
  metadata: { name, generation },
  spec: { namespace: "istio-system" },
  status: {
    observedGeneration: generation,
    conditions: Object.entries(conditions).map(
      ([type, status]) => ({ type, status, reason: `${type}${status}`, message: `${type} is ${status}` }) as Condition,
    ),
  },
});

describe("the revision an Istio wants", () => {
  test("InPlace: named like the Istio", () => {
    expect(activeRevisionName(istio())).toBe("default");
    expect(activeRevisionName(istio({ updateStrategy: { type: "InPlace" } }, "mesh"))).toBe("mesh");
  });

  test("RevisionBased: <name>-v<version with dashes>", () => {
    expect(activeRevisionName(istio({ version: "1.27.9", updateStrategy: { type: "RevisionBased" } }))).toBe("default-v1-27-9");
    expect(activeRevisionName(istio({ updateStrategy: { type: "RevisionBased" } }))).toBe(
      `default-v${versions.istio.replaceAll(".", "-")}`,
    );
  });

  test("owned by the Istio, labelled with it, pinned version and namespace, profile under user values", () => {
    const rev = desiredRevision(
      istio({ profile: "demo", values: { meshConfig: { accessLogFile: "/tmp/log" }, global: { hub: "h" } } }),
    );
    expect(rev.metadata.ownerReferences).toEqual([
      {
        apiVersion: "operator.rigger.dev/v1alpha1",
        kind: "Istio",
        name: "default",
        uid: "uid-1",
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    expect(rev.metadata.labels?.["operator.rigger.dev/istio"]).toBe("default");
    expect(rev.spec).toEqual({
      version: versions.istio,
      namespace: "istio-system",
      values: {
        meshConfig: { accessLogFile: "/tmp/log" },
        global: { hub: "h" },
        pilot: { resources: { requests: { cpu: "10m", memory: "100Mi" } } },
      },
    });
  });

  test("an unknown profile is an error naming it", () => {
    expect(() => profileValues("ambient")).toThrow("spec.profile ambient is not one of default, minimal, demo, remote");
  });
});

describe("the Istio's status", () => {
  const now = new Date("2026-01-01T00:00:00Z");

  test("copies Reconciled and Ready from the active revision and counts revisions", () => {
    const status = istioStatus(
      istio({ updateStrategy: { type: "RevisionBased" }, version: "1.27.9" }),
      [
        revision("default-v1-27-9", { Reconciled: "True", Ready: "True", InUse: "False" }),
        revision("default-v1-26-0", { Ready: "True", InUse: "True" }),
      ],
      now,
    );
    expect(status.state).toBe("Healthy");
    expect(status.activeRevisionName).toBe("default-v1-27-9");
    expect(status.revisions).toEqual({ total: 2, ready: 2, inUse: 1 });
    expect(status.conditions?.find((c) => c.type === "Ready")).toMatchObject({ status: "True", reason: "ReadyTrue" });
    expect(status.observedGeneration).toBe(3);
  });

  test("says when the active revision does not exist yet", () => {
    const status = istioStatus(istio(), [], now);
    expect(status.conditions?.find((c) => c.type === "Ready")).toMatchObject({
      status: "False",
      reason: "ActiveRevisionNotFound",
    });
    expect(status.state).toBe("ActiveRevisionNotFound");
  });

  test("does not trust a revision status older than its spec", () => {
    const stale = revision("default", { Reconciled: "True", Ready: "True" });
    stale.metadata.generation = 2;
    const status = istioStatus(istio(), [stale], now);
    expect(status.conditions?.find((c) => c.type === "Ready")).toMatchObject({
      status: "False",
      reason: "RevisionNotReconciled",
    });
  });
});

describe("inactive revisions", () => {
  const now = new Date("2026-01-01T00:01:00Z");
  const rev = (name: string, inUse?: { status: "True" | "False"; since: string; message?: string }): IstioRevision => ({
    apiVersion: "operator.rigger.dev/v1alpha1",
    kind: "IstioRevision",
    metadata: { name },
    spec: { namespace: "istio-system" },
    status: inUse
      ? {
          conditions: [
            { type: "InUse", status: inUse.status, reason: "r", message: inUse.message ?? "m", lastTransitionTime: inUse.since },
          ],
        }
      : {},
  });
  const mesh = istio(
    { version: "1.27.9", updateStrategy: { type: "RevisionBased", inactiveRevisionDeletionGracePeriodSeconds: 30 } },
    "mesh",
  );

  test("unused past the grace period: pruned; unused within it: kept with the time it goes; in use or unknown: kept with why", () => {
    const decisions = inactiveRevisions(
      mesh,
      [
        rev("mesh-v1-27-9", { status: "False", since: "2026-01-01T00:00:00Z" }), // the active one: never pruned
        rev("mesh-v1-27-6", { status: "False", since: "2026-01-01T00:00:00Z" }),
        rev("mesh-v1-27-7", { status: "False", since: "2026-01-01T00:00:45Z" }),
        rev("mesh-v1-27-8", { status: "True", since: "2026-01-01T00:00:00Z", message: "used by 1 pod(s) (shop/web)" }),
        rev("mesh-v1-27-5"),
      ],
      now,
    );
    expect(decisions).toEqual([
      { name: "mesh-v1-27-5", prune: false, message: "kept: its use is not known yet" },
      {
        name: "mesh-v1-27-6",
        prune: true,
        pruneAt: "2026-01-01T00:00:30.000Z",
        message: "pruned: unused since 2026-01-01T00:00:00Z",
      },
      {
        name: "mesh-v1-27-7",
        prune: false,
        pruneAt: "2026-01-01T00:01:15.000Z",
        message: "unused since 2026-01-01T00:00:45Z; pruned at 2026-01-01T00:01:15.000Z unless used again",
      },
      { name: "mesh-v1-27-8", prune: false, message: "kept: used by 1 pod(s) (shop/web)" },
    ]);
  });
});
