// The one wrapper every operator-API controller runs in: whatever goes wrong in a reconcile
// shows on the object's status, so `kubectl get` and `kubectl wait` see it, not only the log.
// - TerminalError(reason, message): the object cannot be reconciled as it is (bad input only
//   its owner can fix). Reconciled=False with that reason; not retried (the next change to the
//   object, or to what it refers to, queues it again).
// - any other error (the apiserver refused or failed, a timeout): Reconciled=False with the
//   apiserver's reason (or ReconcileError), and the reconcile is retried with backoff.
// Status is written only when it changes (writeStatus), so retries do not write in a loop.
import { getOrUndefined, type KubeObject, writeStatus } from "./apply.ts";
import { type Condition, setCondition } from "./conditions.ts";
import type { Controller } from "./controller.ts";
import { ApiError, type RawClient } from "./raw-client.ts";

export class TerminalError extends Error {
  readonly reason: string;

  constructor(reason: string, message: string) {
    super(message);
    this.reason = reason;
  }
}

/** The condition reason for an error: the TerminalError's, the apiserver's, or ReconcileError. */
export function errorReason(err: unknown): string {
  if (err instanceof TerminalError) return err.reason;
  if (err instanceof ApiError && err.reason && err.reason !== "Unknown") return err.reason;
  return "ReconcileError";
}

/**
 * `controller` with failures written to the status of the object at `path(key)` (undefined:
 * the key names no object of the operator's API, leave it to the log).
 */
export function withErrorStatus(
  controller: Controller,
  client: RawClient,
  path: (key: string) => string | undefined,
): Controller {
  return {
    ...controller,
    reconcile: async (key) => {
      try {
        return await controller.reconcile(key);
      } catch (err) {
        const at = path(key);
        const object = at
          ? await getOrUndefined<KubeObject & { status?: { conditions?: Condition[] } }>(client, at).catch(() => undefined)
          : undefined;
        if (object && !object.metadata.deletionTimestamp) {
          const conditions = setCondition(
            object.status?.conditions,
            { type: "Reconciled", status: "False", reason: errorReason(err), message: (err as Error).message },
            new Date(),
          );
          const status = { ...object.status, conditions, state: errorReason(err) };
          await writeStatus(client, object, object.status, status).catch(() => undefined);
        }
        if (err instanceof TerminalError) return undefined;
        throw err;
      }
    },
  };
}
