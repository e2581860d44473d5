// The admission server: fastify over HTTPS. POST /inject (and /inject/<k>/<v>…) runs the
// injection webhook, POST /validate the validation webhook; /healthz, /ready and /metrics
// serve probes and Prometheus. Timeouts and an in-flight bound (ServerLimits) keep slow or
// idle clients from holding it. The serving
// certificate is re-read from its files when they change, without a restart.
import { readFileSync, statSync } from "node:fs";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import Fastify, { type FastifyInstance, type FastifyRequest, LogController } from "fastify";
import { Counter, collectDefaultMetrics, Histogram, Registry } from "prom-client";
import type { InjectionSettings } from "./inject/inject.ts";
import { reviewInjection } from "./inject/review.ts";
import { envoyRoot } from "./validate/kinds/envoy-types.ts";
import { reviewValidation } from "./validate/review.ts";

export interface AdmissionServerOptions {
  host: string;
  port: number;
  /** Files (re-read when they change) or PEM in memory (swapped with setCertificate). */
  tls: { certFile: string; keyFile: string } | { certPem: string; keyPem: string };
  /** How often the certificate files are checked for changes. */
  tlsReloadIntervalMs?: number;
  /** The current injection settings; called per request, so a reload takes effect at once. */
  injection: () => InjectionSettings;
  /** Whether /ready answers 200 (default: always, once listening). */
  ready?: () => boolean;
  /** pino log level; "silent" turns logging off. */
  logLevel?: string;
  /** Largest accepted request body. An AdmissionReview carries at most two objects of ~1.5 MiB. */
  bodyLimitBytes?: number;
  /** Connection limits; each has a default sized for the apiserver as the only real caller. */
  limits?: Partial<ServerLimits>;
  /** GET /debug/*: istiod's debug views (xDS sync status, config dumps); undefined → 404. */
  debug?: (path: string, query: URLSearchParams) => { status: number; body: unknown } | undefined;
}

export interface ServerLimits {
  /** A TLS handshake not finished by then is dropped (Node's default: 120 s). */
  handshakeTimeoutMs: number;
  /** Request headers not complete by then: the connection is dropped (Node's default: 60 s). */
  headersTimeoutMs: number;
  /** A whole request not received by then gets 408 (the apiserver gives a webhook at most 30 s). */
  requestTimeoutMs: number;
  /** A connection with no bytes either way for this long is closed. */
  idleTimeoutMs: number;
  /** Admission requests in progress at once; more get 429 and the apiserver's failure policy. */
  maxInFlight: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  handshakeTimeoutMs: 5_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  idleTimeoutMs: 60_000,
  maxInFlight: 64,
};

export interface AdmissionServer {
  app: FastifyInstance;
  port: number;
  registry: Registry;
  /** Serves new connections with this certificate; open connections keep theirs. */
  setCertificate(certPem: string, keyPem: string): void;
  close(): Promise<void>;
}

function injectionMetrics(registry: Registry) {
  const counter = (name: string, help: string, labelNames: string[] = []) =>
    new Counter({ name, help, labelNames, registers: [registry] });
  return {
    requests: counter("sidecar_injection_requests_total", "Total number of sidecar injection requests."),
    success: counter("sidecar_injection_success_total", "Total number of successful sidecar injection requests."),
    skip: counter("sidecar_injection_skip_total", "Total number of skipped sidecar injection requests."),
    failure: counter("sidecar_injection_failure_total", "Total number of failed sidecar injection requests.", ["reason"]),
    time: new Histogram({
      name: "sidecar_injection_time_seconds",
      help: "Total time taken for injection in seconds.",
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1, 3, 5, 10],
      registers: [registry],
    }),
  };
}

function validationMetrics(registry: Registry) {
  return {
    passed: new Counter({
      name: "galley_validation_passed",
      help: "Resource is valid.",
      labelNames: ["kind"],
      registers: [registry],
    }),
    failed: new Counter({
      name: "galley_validation_failed",
      help: "Resource validation failed.",
      labelNames: ["kind", "reason"],
      registers: [registry],
    }),
    httpError: new Counter({
      name: "galley_validation_http_error",
      help: "Resource validation http serve errors.",
      labelNames: ["status"],
      registers: [registry],
    }),
    time: new Histogram({
      name: "galley_validation_duration_seconds",
      help: "Time taken to validate one resource, in seconds.",
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.1],
      registers: [registry],
    }),
  };
}

export async function startAdmissionServer(options: AdmissionServerOptions): Promise<AdmissionServer> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const metrics = injectionMetrics(registry);
  const validation = validationMetrics(registry);
  const metricsInFlightRefused = new Counter({
    name: "rigger_admission_refused_total",
    help: "Admission requests refused with 429 because too many were in progress.",
    registers: [registry],
  });
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const app = Fastify({
    https: {
      ...("certFile" in options.tls
        ? { cert: readFileSync(options.tls.certFile), key: readFileSync(options.tls.keyFile) }
        : { cert: options.tls.certPem, key: options.tls.keyPem }),
      handshakeTimeout: limits.handshakeTimeoutMs,
    },
    bodyLimit: options.bodyLimitBytes ?? 6 * 1024 * 1024,
    connectionTimeout: limits.idleTimeoutMs,
    logger: { level: options.logLevel ?? "info", redact: ["req.headers.authorization"] },
    // A line per admission request would cost more than the injection itself; outcomes are logged instead.
    logController: new LogController({ disableRequestLogging: true }),
  });
  // Only application/json is an AdmissionReview; anything else gets 415 from fastify.
  app.removeContentTypeParser("text/plain");

  enforceDeadlines(app.server as unknown as Server, limits);

  // Bounded concurrency: admission requests past maxInFlight are refused before their body is read.
  // The requests counted against the bound; a response or an abort releases one (once).
  const inFlight = new Set<FastifyRequest>();
  const admission = (url: string) => url.startsWith("/inject") || url.startsWith("/validate");
  app.addHook("onRequest", async (req, reply) => {
    if (!admission(req.url)) return;
    if (inFlight.size >= limits.maxInFlight) {
      metricsInFlightRefused.inc();
      return reply
        .code(429)
        .header("retry-after", "1")
        .send({ message: `more than ${limits.maxInFlight} admission requests in progress` });
    }
    inFlight.add(req);
  });
  app.addHook("onResponse", async (req) => {
    inFlight.delete(req);
  });
  app.addHook("onRequestAbort", async (req) => {
    inFlight.delete(req);
  });

  const handleInject = async (req: FastifyRequest) => {
    metrics.requests.inc();
    const stop = metrics.time.startTimer();
    const outcome = reviewInjection(req.body, req.url.split("?")[0] ?? "/inject", options.injection());
    stop();
    switch (outcome.outcome) {
      case "invalid":
        metrics.failure.inc({ reason: "invalid_request" });
        req.log.warn({ problem: outcome.message }, "rejected malformed AdmissionReview");
        throw Object.assign(new Error(outcome.message), { statusCode: 400 });
      case "denied":
        metrics.failure.inc({ reason: "injection" });
        req.log.warn({ problem: outcome.message }, "injection denied");
        return outcome.review;
      case "skipped":
        metrics.skip.inc();
        req.log.debug({ reason: outcome.reason }, "injection skipped");
        return outcome.review;
      case "injected":
        metrics.success.inc();
        return outcome.review;
    }
  };
  app.post("/inject", handleInject);
  app.post("/inject/*", handleInject);

  const handleValidate = async (req: FastifyRequest) => {
    const stop = validation.time.startTimer();
    const outcome = reviewValidation(req.body);
    stop();
    switch (outcome.outcome) {
      case "invalid":
        validation.httpError.inc({ status: "400" });
        throw Object.assign(new Error(outcome.message), { statusCode: 400 });
      case "denied":
        validation.failed.inc({ kind: outcome.kind, reason: "invalid_config" });
        req.log.info({ kind: outcome.kind, problem: outcome.message }, "configuration denied");
        return outcome.review;
      case "allowed":
        validation.passed.inc({ kind: outcome.kind });
        return outcome.review;
    }
  };
  app.post("/validate", handleValidate);
  app.post("/validate/", handleValidate);
  // Liveness: any answer means the event loop is turning (what a stalled istiod would fail).
  app.get("/healthz", async () => "ok\n");
  app.get("/ready", async (_req, reply) => {
    if (options.ready && !options.ready()) return reply.code(503).send("not ready\n");
    return "ok\n";
  });
  app.get("/metrics", async (_req, reply) => {
    reply.header("content-type", registry.contentType);
    return registry.metrics();
  });
  app.get("/debug/*", async (req, reply) => {
    const url = new URL(req.url, "https://istiod");
    const answer = options.debug?.(url.pathname, url.searchParams);
    if (!answer) return reply.code(404).send({ error: `no debug view at ${url.pathname}` });
    return reply.code(answer.status).send(answer.body);
  });

  // Load Envoy's types before serving, so the first EnvoyFilter is not the one that pays for it.
  envoyRoot();
  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  const tls = options.tls;
  const stopWatching = "certFile" in tls ? watchCertificate(app, tls, options.tlsReloadIntervalMs ?? 5000) : () => {};
  app.log.info({ port }, "admission server listening");
  return {
    app,
    port,
    registry,
    setCertificate: (certPem, keyPem) => {
      try {
        setSecureContext(app, certPem, keyPem);
      } catch (err) {
        // A bad pair must not take the server down: keep serving with the current one.
        app.log.error({ error: (err as Error).message }, "serving certificate not swapped; keeping the current one");
      }
    },
    close: async () => {
      stopWatching();
      await app.close();
    },
  };
}

/**
 * Slow clients (slowloris) are dropped on two clocks of our own: a connection must deliver a
 * request's headers within headersTimeoutMs of connecting or of its previous response, and the
 * whole request must be answered within requestTimeoutMs (408, then the connection closes).
 * Node has such clocks too, but its https server did not apply them to connections that sent
 * part of their headers and then stopped (seen with Node 24), so they are kept here, explicitly.
 */
function enforceDeadlines(server: Server, limits: ServerLimits): void {
  const headerTimers = new WeakMap<Socket, NodeJS.Timeout>();
  const awaitHeaders = (socket: Socket) => {
    clearTimeout(headerTimers.get(socket));
    const timer = setTimeout(() => socket.destroy(), limits.headersTimeoutMs);
    timer.unref();
    headerTimers.set(socket, timer);
  };
  server.on("secureConnection", (socket: Socket) => {
    socket.once("close", () => clearTimeout(headerTimers.get(socket)));
    awaitHeaders(socket);
  });
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    clearTimeout(headerTimers.get(socket));
    const timer = setTimeout(() => {
      if (!res.headersSent) res.writeHead(408, { connection: "close", "content-type": "text/plain" }).end("request timeout\n");
      socket.destroySoon();
    }, limits.requestTimeoutMs);
    timer.unref();
    res.once("close", () => {
      clearTimeout(timer);
      if (!socket.destroyed) awaitHeaders(socket);
    });
  });
}

/**
 * Polls the certificate and key files and swaps the server's TLS context when either
 * changes. New handshakes use the new certificate; open connections keep theirs.
 */
function watchCertificate(app: FastifyInstance, tls: { certFile: string; keyFile: string }, intervalMs: number): () => void {
  const stamp = () => {
    try {
      return [statSync(tls.certFile), statSync(tls.keyFile)].map((s) => `${s.mtimeMs}:${s.size}`).join("/");
    } catch {
      return "missing";
    }
  };
  let last = stamp();
  const timer = setInterval(() => {
    const now = stamp();
    if (now === last || now === "missing") return;
    try {
      setSecureContext(app, readFileSync(tls.certFile), readFileSync(tls.keyFile));
      last = now;
      app.log.info("serving certificate reloaded");
    } catch (err) {
      // A half-written pair (cert updated, key not yet): keep the old one and retry next tick.
      app.log.warn({ err: (err as Error).message }, "serving certificate not reloaded yet");
    }
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

function setSecureContext(app: FastifyInstance, cert: string | Buffer, key: string | Buffer): void {
  const server = app.server as unknown as { setSecureContext(options: { cert: string | Buffer; key: string | Buffer }): void };
  server.setSecureContext({ cert, key });
}
