// What e2e tests share: clients for the suite's cluster, unique names, polling.
import { randomBytes } from "node:crypto";
import { AdmissionregistrationV1Api, AppsV1Api, CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { inject } from "vitest";

export function kubeClients() {
  const kc = new KubeConfig();
  kc.loadFromFile(inject("kubeconfig"));
  return {
    kc,
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    admission: kc.makeApiClient(AdmissionregistrationV1Api),
  };
}

/** Prints what a suite measured, one line each (the README's numbers come from these). */
export function reportMeasurements(suite: string, measured: Record<string, string>): void {
  console.log(
    `${suite} e2e measurements:\n${Object.entries(measured)
      .map(([k, v]) => `  ${k}: ${v}`)
      .join("\n")}`,
  );
}

/** `prefix-<6 hex>`, so reruns and parallel suites never collide on names. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString("hex")}`;
}

/**
 * Polls `probe` until it returns a value other than undefined. On timeout the
 * error says what was awaited and what was last seen, so a failure explains itself.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  { timeoutMs = 60_000, intervalMs = 250 } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}${last ? `; last error: ${String(last)}` : ""}`);
}
