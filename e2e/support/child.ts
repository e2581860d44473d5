// Helpers for servers the tests start as child processes on 127.0.0.1.
import type { ChildProcess } from "node:child_process";
import { request } from "node:https";
import { createServer } from "node:net";

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

/** Stops a child we started (SIGTERM) and resolves when it has exited. */
export function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

/**
 * The HTTP status of one request to `url` verified against `ca`, or undefined when the
 * server does not answer (not listening yet, TLS not ready, timeout).
 */
export function httpsStatus(url: string, ca: string, method = "GET", body?: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const headers = body !== undefined ? { "content-type": "application/json" } : undefined;
    const req = request(url, { method, ca, timeout: 1000, headers }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on("error", () => resolve(undefined));
    req.on("timeout", () => req.destroy());
    req.end(body);
  });
}

/** Polls until `ready()` holds; fails early with `exited()`'s message when the child died. */
export async function waitUntilServing(
  what: string,
  child: ChildProcess,
  ready: () => Promise<boolean>,
  timeoutMs: number,
  logHint = "",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ready())) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode} before it was ready${logHint}`);
    if (Date.now() > deadline) throw new Error(`${what} was not ready within ${timeoutMs / 1000}s${logHint}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The AdmissionResponse a webhook at `url` gives for `admission`; fails unless it is HTTP 200 echoing the uid. */
export function admissionResponse(
  url: string,
  ca: string,
  admission: { uid: string } & Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const body = JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: admission });
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", ca, headers: { "content-type": "application/json" } }, (res) => {
      let text = "";
      res.on("data", (chunk) => {
        text += chunk;
      });
      res.on("end", () => {
        if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}: ${text}`));
        const response = JSON.parse(text).response as Record<string, unknown>;
        if (response.uid !== admission.uid)
          return reject(new Error(`uid ${String(response.uid)} does not echo ${admission.uid}`));
        resolve(response);
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}
