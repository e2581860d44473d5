// A small JSON client for the Kubernetes API that sends and receives plain objects.
// The generated client's serializer drops fields it does not model and writes times
// with millisecond precision, which MicroTime fields (Lease renewTime) refuse; raw JSON
// avoids both. Authentication and TLS come from the kubeconfig.
import { Agent, request } from "node:https";
import type { KubeConfig } from "@kubernetes/client-node";

export class ApiError extends Error {
  readonly status: number;
  readonly reason: string;

  constructor(status: number, reason: string, message: string) {
    super(message);
    this.status = status;
    this.reason = reason;
  }
}

export interface RawClient {
  /** `accept` overrides the Accept header (e.g. PartialObjectMetadataList for metadata only). */
  get<T>(path: string, accept?: string): Promise<T>;
  create<T>(path: string, body: object): Promise<T>;
  replace<T>(path: string, body: object): Promise<T>;
  /** Server-side apply with `fieldManager`, taking over conflicting fields; `dryRun` validates and stores nothing. */
  apply<T>(path: string, body: object, fieldManager: string, options?: { dryRun?: boolean }): Promise<T>;
  delete(path: string): Promise<void>;
}

/** How long a call may go without a byte from the apiserver (the apiserver's own limit is 60 s). */
export const REQUEST_TIMEOUT_MS = 30_000;

export function rawClient(kc: KubeConfig): RawClient {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error("the kubeconfig has no current cluster");
  const server = cluster.server.replace(/\/+$/, "");
  // The kubeconfig's options come with a new Agent per request, i.e. a new TLS handshake per
  // call; one keep-alive agent with the same TLS settings reuses connections instead.
  let agent: Agent | undefined;

  const call = async <T>(
    method: string,
    path: string,
    body?: object,
    contentType = "application/json",
    accept = "application/json",
  ): Promise<T> => {
    const options: Parameters<typeof request>[1] = { method, headers: { accept } };
    await kc.applyToHTTPSOptions(options);
    if (!agent) {
      const { ca, cert, key, rejectUnauthorized, servername } = options;
      agent = new Agent({ keepAlive: true, maxSockets: 32, ca, cert, key, rejectUnauthorized, servername });
    }
    options.agent = agent;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    if (payload !== undefined)
      options.headers = { ...options.headers, "content-type": contentType, "content-length": Buffer.byteLength(payload) };
    return new Promise<T>((resolve, reject) => {
      const req = request(`${server}${path}`, options, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString();
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve((text ? JSON.parse(text) : undefined) as T);
          let reason = "Unknown";
          let message = text;
          try {
            const parsed = JSON.parse(text) as { reason?: string; message?: string };
            reason = parsed.reason ?? reason;
            message = parsed.message ?? message;
          } catch {
            // not a Status object; keep the raw text
          }
          reject(new ApiError(status, reason, `${method} ${path}: ${status} ${reason}: ${message}`));
        });
      });
      // A call that goes silent (a hung apiserver, a dead proxy) fails instead of waiting forever.
      req.setTimeout(REQUEST_TIMEOUT_MS, () =>
        req.destroy(new Error(`${method} ${path}: no answer within ${REQUEST_TIMEOUT_MS / 1000} s`)),
      );
      req.on("error", reject);
      req.end(payload);
    });
  };

  return {
    get: (path, accept) => call("GET", path, undefined, undefined, accept),
    create: (path, body) => call("POST", path, body),
    replace: (path, body) => call("PUT", path, body),
    apply: (path, body, fieldManager, options) =>
      call(
        "PATCH",
        `${path}?fieldManager=${encodeURIComponent(fieldManager)}&force=true${options?.dryRun ? "&dryRun=All" : ""}`,
        body,
        "application/apply-patch+yaml",
      ),
    delete: async (path) => {
      await call("DELETE", path);
    },
  };
}

/** Kubernetes MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/** `client`, calling `onRequest(verb)` before every call (for metrics): get, create, update, apply, apply-dry-run, delete. */
export function withRequestCounter(client: RawClient, onRequest: (verb: string) => void): RawClient {
  return {
    get: (path, accept) => {
      onRequest("get");
      return client.get(path, accept);
    },
    create: (path, body) => {
      onRequest("create");
      return client.create(path, body);
    },
    replace: (path, body) => {
      onRequest("update");
      return client.replace(path, body);
    },
    apply: (path, body, fieldManager, options) => {
      onRequest(options?.dryRun ? "apply-dry-run" : "apply");
      return client.apply(path, body, fieldManager, options);
    },
    delete: (path) => {
      onRequest("delete");
      return client.delete(path);
    },
  };
}
