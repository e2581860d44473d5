// The reconcile wrapper, by its writes: a failing reconcile leaves its reason on the status.
import { describe, expect, test } from "vitest";
import { TAGS_PATH } from "../api/operator.ts";
import type { Controller } from "./controller.ts";
import { ApiError } from "./raw-client.ts";
import { TerminalError, withErrorStatus } from "./reconcile.ts";
import { RecordingClient } from "./recording-client.ts";

const failing = (err: Error): Controller => ({
  name: "t",
  watches: [],
  reconcile: async () => {
    throw err;
  },
});

function seeded() {
  return new RecordingClient().put(`${TAGS_PATH}/prod`, {
    apiVersion: "operator.rigger.dev/v1alpha1",
    kind: "IstioRevisionTag",
    metadata: { name: "prod" },
    spec: {},
    status: {
      conditions: [
        { type: "Ready", status: "True", reason: "Healthy", message: "", lastTransitionTime: "2026-01-01T00:00:00.000Z" },
      ],
    },
  });
}
const reconciled = (client: RecordingClient) =>
  (
    client.objects.get(`${TAGS_PATH}/prod`) as {
      status: { conditions: { type: string; status: string; reason: string; message: string }[] };
    }
  ).status.conditions.find((c) => c.type === "Reconciled");

describe("withErrorStatus", () => {
  test.each([
    {
      error: new TerminalError("InvalidTarget", "targetRef names a kind the operator does not know"),
      retried: false,
      reason: "InvalidTarget",
    },
    {
      error: new ApiError(422, "Invalid", "Service is invalid: spec.ports[1]: Duplicate value"),
      retried: true,
      reason: "Invalid",
    },
    { error: new Error("connect ECONNREFUSED 127.0.0.1:6443"), retried: true, reason: "ReconcileError" },
  ])("$reason: written on the status; retried: $retried", async ({ error, retried, reason }) => {
    const client = seeded();
    const controller = withErrorStatus(failing(error), client, (key) => `${TAGS_PATH}/${key}`);
    const run = controller.reconcile("prod");
    if (retried) await expect(run).rejects.toBe(error);
    else expect(await run).toBeUndefined();
    expect(client.writeLines()).toEqual([`apply ${TAGS_PATH}/prod/status`]);
    expect(reconciled(client)).toMatchObject({ status: "False", reason, message: error.message });
    // The same failure again: the status already says so, nothing is written (no write loop).
    client.writes.length = 0;
    await controller.reconcile("prod").catch(() => undefined);
    expect(client.writes).toEqual([]);
  });

  test("an object that is gone: nothing written, the error still decides the retry", async () => {
    const client = new RecordingClient();
    const controller = withErrorStatus(failing(new Error("boom")), client, (key) => `${TAGS_PATH}/${key}`);
    await expect(controller.reconcile("gone")).rejects.toThrow("boom");
    expect(client.writes).toEqual([]);
  });
});
