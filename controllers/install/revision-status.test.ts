import { describe, expect, test } from "vitest";
import { type RevisionObservation, revisionStatus } from "./revision-status.ts";

const now = new Date("2026-01-01T00:00:00Z");
const base: RevisionObservation = {
  generation: 2,
  namespacesUsing: [],
  deployment: { name: "istiod", replicas: 1, readyReplicas: 1 },
};
const ready = (o: RevisionObservation) => revisionStatus(o, now).conditions.find((c) => c.type === "Ready");

describe("an IstioRevision's status", () => {
  test.each([
    [{ deployment: undefined }, "False", "IstiodNotReady", "the istiod Deployment does not exist yet"],
    [
      { deployment: { name: "istiod", replicas: 2, readyReplicas: 1 } },
      "False",
      "IstiodNotReady",
      "1/2 pods of Deployment istiod are ready",
    ],
    [{ deployment: { name: "istiod", replicas: 0 } }, "False", "IstiodNotReady", "Deployment istiod is scaled to zero"],
    [{ local: { serving: false, logFile: "/l/istiod.log" } }, "False", "ControlPlaneNotServing", "see /l/istiod.log"],
    [{ local: { serving: true, logFile: "" } }, "True", "Healthy", "1/1 pods"],
    [{ error: "boom" }, "False", "ReconcileError", "could not be applied"],
  ] as const)("%j → Ready %s (%s)", (change, status, reason, message) => {
    const condition = ready({ ...base, ...change } as RevisionObservation);
    expect(condition).toMatchObject({ status, reason });
    expect(condition?.message).toContain(message);
  });

  test("Reconciled carries the error, and the state says so", () => {
    const status = revisionStatus({ ...base, error: "PATCH …: 403 Forbidden" }, now);
    expect(status.conditions.find((c) => c.type === "Reconciled")).toMatchObject({
      status: "False",
      message: "PATCH …: 403 Forbidden",
    });
    expect(status.state).toBe("ReconcileError");
    expect(status.observedGeneration).toBe(2);
  });

  test("InUse names what pins the revision: tags, the first namespaces and pods, with counts", () => {
    const names = Array.from({ length: 7 }, (_, i) => `ns${i}`);
    const inUse = revisionStatus(
      { ...base, namespacesUsing: names, tagsUsing: ["prod-stable"], podsUsing: ["shop/web-1"] },
      now,
    ).conditions.find((c) => c.type === "InUse");
    expect(inUse).toMatchObject({ status: "True", reason: "ReferencedByWorkloads" });
    expect(inUse?.message).toBe(
      "used by 1 tag(s) (prod-stable), 7 namespace(s) (ns0, ns1, ns2, ns3, ns4, and 2 more), 1 pod(s) (shop/web-1)",
    );
    const podsOnly = revisionStatus({ ...base, podsUsing: ["job/finished-but-running"] }, now).conditions.find(
      (c) => c.type === "InUse",
    );
    expect(podsOnly?.status).toBe("True");
    expect(revisionStatus(base, now).conditions.find((c) => c.type === "InUse")?.reason).toBe("NotReferencedByAnything");
  });

  test("a transition time moves only when the status does", () => {
    const first = revisionStatus(base, now);
    const later = revisionStatus({ ...base, previous: first.conditions }, new Date("2026-02-01T00:00:00Z"));
    expect(later.conditions.map((c) => c.lastTransitionTime)).toEqual(first.conditions.map((c) => c.lastTransitionTime));
    const changed = revisionStatus(
      { ...base, previous: first.conditions, deployment: undefined },
      new Date("2026-02-01T00:00:00Z"),
    );
    expect(changed.conditions.find((c) => c.type === "Ready")?.lastTransitionTime).toBe("2026-02-01T00:00:00.000Z");
  });
});
