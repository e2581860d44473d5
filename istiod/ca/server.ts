// The mesh CA's gRPC endpoint: istio.v1.auth.IstioCertificateService/CreateCertificate over
// TLS (port 15012 in a pod), as upstream istiod serves it, so Istio's own proxies and CA
// clients work unchanged. The service definition is istio/api's ca.proto, kept beside this file.
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type pino from "pino";
import { Counter, Gauge, type Registry } from "prom-client";
import type { RawClient } from "../../kube/raw-client.ts";
import { CsrError } from "../../pki/certificates.ts";
import { AuthenticationError, authenticate, bearerToken, TokenReviewer } from "./authenticate.ts";
import type { MeshCa } from "./mesh-ca.ts";

const PROTO = fileURLToPath(new URL("./ca.proto", import.meta.url));

export interface CaServerOptions {
  host: string;
  port: number;
  tls: { certPem: string; keyPem: string };
  ca: MeshCa;
  client: RawClient;
  trustDomain: () => string;
  /** Default and largest workload certificate lifetime, seconds (upstream: 24 h and 90 days). */
  defaultTtlSeconds?: number;
  maxTtlSeconds?: number;
  registry: Registry;
  log: pino.Logger;
  /** TokenReviews, and signings, at once; the rest wait in order (default 8 each). */
  maxConcurrentRequests?: number;
  /** Requests waiting for a TokenReview, and for signing; past this RESOURCE_EXHAUSTED (default 500 each). */
  maxQueuedRequests?: number;
  /** Token reviews, shared with the other services on this port (made here when absent). */
  reviewer?: TokenReviewer;
  /** Other services served on the same TLS port (xDS), registered before it binds. */
  services?: (server: grpc.Server) => void;
  /**
   * The mesh roots (PEM) client certificates are verified against: a caller may present its
   * workload certificate (xDS accepts it as credentials); none is required.
   */
  clientCaPem?: string;
}

/** Largest CSR accepted (a PEM CSR is about 1 KiB). */
const MAX_CSR_BYTES = 64 * 1024;

export interface CaServer {
  port: number;
  /** Serves new connections with this certificate; open connections keep theirs. */
  setCertificate(certPem: string, keyPem: string): void;
  /** Verifies new connections' client certificates against these roots. */
  setClientCa(caPem: string): void;
  close(): Promise<void>;
}

/**
 * The serving certificate, and the roots client certificates are checked against, held in
 * memory and pushed to grpc-js when they change.
 */
class ServingCertificateProvider implements grpc.experimental.CertificateProvider {
  private current: grpc.experimental.IdentityCertificateUpdate;
  private readonly listeners = new Set<grpc.experimental.IdentityCertificateUpdateListener>();
  private ca: grpc.experimental.CaCertificateUpdate | undefined;
  private readonly caListeners = new Set<grpc.experimental.CaCertificateUpdateListener>();

  constructor(certPem: string, keyPem: string, caPem?: string) {
    this.current = { certificate: Buffer.from(certPem), privateKey: Buffer.from(keyPem) };
    if (caPem) this.ca = { caCertificate: Buffer.from(caPem) };
  }

  setCa(caPem: string): void {
    this.ca = { caCertificate: Buffer.from(caPem) };
    for (const listener of this.caListeners) listener(this.ca);
  }

  set(certPem: string, keyPem: string): void {
    this.current = { certificate: Buffer.from(certPem), privateKey: Buffer.from(keyPem) };
    for (const listener of this.listeners) listener(this.current);
  }

  addIdentityCertificateListener(listener: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.listeners.add(listener);
    // Asynchronously: grpc-js registers its own watcher only after this call returns.
    setImmediate(() => this.listeners.has(listener) && listener(this.current));
  }

  removeIdentityCertificateListener(listener: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.listeners.delete(listener);
  }

  addCaCertificateListener(listener: grpc.experimental.CaCertificateUpdateListener): void {
    this.caListeners.add(listener);
    setImmediate(() => this.caListeners.has(listener) && this.ca && listener(this.ca));
  }

  removeCaCertificateListener(listener: grpc.experimental.CaCertificateUpdateListener): void {
    this.caListeners.delete(listener);
  }
}

/**
 * TLS credentials for a gRPC server with this certificate; with `clientCaPem`, client
 * certificates are asked for and verified against it but never required (grpc-js's createSsl
 * cannot do that: it asks for them only when it also requires them).
 */
export function servingCredentials(tls: { certPem: string; keyPem: string }, clientCaPem?: string) {
  const provider = new ServingCertificateProvider(tls.certPem, tls.keyPem, clientCaPem);
  // grpc-js 1.14 passes this function's first two arguments to the credentials in swapped
  // order (identity first): the identity provider goes first, then the CA provider.
  const credentials = grpc.experimental.createCertificateProviderServerCredentials(
    provider,
    clientCaPem ? provider : null,
    false,
  );
  return { credentials, provider };
}

interface CertificateRequest {
  csr?: string;
  validity_duration?: string | number;
}

function caMetrics(registry: Registry) {
  const counter = (name: string, help: string, labelNames: string[] = []) =>
    new Counter({ name, help, labelNames, registers: [registry] });
  return {
    csr: counter("citadel_server_csr_count", "The number of CSRs received by Citadel server."),
    authFailure: counter("citadel_server_authentication_failure_count", "The number of authentication failures."),
    csrParsingError: counter("citadel_server_csr_parsing_err_count", "The number of errors occurred when parsing the CSR."),
    signError: counter("citadel_server_csr_sign_err_count", "The number of errors occurred when signing the CSR.", [
      "error_type",
    ]),
    success: counter("citadel_server_success_cert_issuance_count", "The number of certificates issuances that have succeeded."),
    refused: counter(
      "rigger_ca_requests_refused_total",
      "Requests not served: queue full, or the caller gave up while waiting.",
      ["reason"],
    ),
    rootExpiry: new Gauge({
      name: "citadel_server_root_cert_expiry_timestamp",
      help: "The unix timestamp, in seconds, when Citadel root cert will expire.",
      registers: [registry],
    }),
  };
}

/** The queue is full: the caller should retry later (RESOURCE_EXHAUSTED). */
export class QueueFullError extends Error {}
/** The caller gave up (cancelled, or its deadline passed) while waiting: the work is not done. */
export class AbandonedError extends Error {}

/**
 * At most `limit` pieces of work at once, the rest waiting in arrival order, at most
 * `maxWaiting` of them: more concurrency only queues inside the apiserver and the threadpool,
 * where order is lost and the slowest requests wait longest, and an unbounded queue is memory
 * an attacker controls. A waiter whose caller gives up leaves the queue at once.
 */
export class FifoLimiter {
  private active = 0;
  private readonly waiting: { go: () => void; drop: (err: Error) => void }[] = [];
  private readonly limit: number;
  private readonly maxWaiting: number;

  constructor(limit: number, maxWaiting = Number.POSITIVE_INFINITY) {
    this.limit = limit;
    this.maxWaiting = maxWaiting;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Runs `work` in turn. `caller`, when given, is watched for giving up ('cancelled'). */
  async run<T>(
    work: () => Promise<T>,
    caller?: { cancelled: boolean; once(event: "cancelled", f: () => void): unknown },
  ): Promise<T> {
    if (caller?.cancelled) throw new AbandonedError("the caller gave up before its turn");
    if (this.active >= this.limit) {
      if (this.waiting.length >= this.maxWaiting) throw new QueueFullError(`${this.waiting.length} requests are already waiting`);
      await new Promise<void>((go, drop) => {
        const entry = { go, drop };
        this.waiting.push(entry);
        caller?.once("cancelled", () => {
          const at = this.waiting.indexOf(entry);
          if (at >= 0) {
            this.waiting.splice(at, 1);
            drop(new AbandonedError("the caller gave up while waiting"));
          }
        });
      });
    }
    this.active++;
    try {
      if (caller?.cancelled) throw new AbandonedError("the caller gave up before its turn");
      return await work();
    } finally {
      this.active--;
      this.waiting.shift()?.go();
    }
  }
}

function status(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
}

export async function startCaServer(options: CaServerOptions): Promise<CaServer> {
  const definition = protoLoader.loadSync(PROTO, { keepCase: true, longs: String, defaults: true });
  const proto = grpc.loadPackageDefinition(definition) as unknown as {
    istio: { v1: { auth: { IstioCertificateService: grpc.ServiceClientConstructor } } };
  };
  const metrics = caMetrics(options.registry);
  const defaultTtl = options.defaultTtlSeconds ?? 24 * 60 * 60;
  const maxTtl = options.maxTtlSeconds ?? 90 * 24 * 60 * 60;
  const updateRootExpiry = () => metrics.rootExpiry.set(options.ca.bundle.signer.certificate.notAfter.getTime() / 1000);
  updateRootExpiry();
  options.ca.onChange(updateRootExpiry);

  // Two queues: TokenReviews (only for tokens not answered from the cache) and signing, so a
  // flood of unknown tokens cannot hold up callers whose tokens are already known.
  const reviewQueue = new FifoLimiter(options.maxConcurrentRequests ?? 8, options.maxQueuedRequests ?? 500);
  const signQueue = new FifoLimiter(options.maxConcurrentRequests ?? 8, options.maxQueuedRequests ?? 500);
  const reviewer = options.reviewer ?? new TokenReviewer((token) => authenticate(options.client, token));

  const identify = async (call: grpc.ServerUnaryCall<CertificateRequest, unknown>): Promise<string> => {
    try {
      const token = bearerToken(call.metadata.get("authorization")[0]?.toString());
      const caller = reviewer.cached(token) ?? (await reviewQueue.run(() => reviewer.authenticate(token), call));
      return `spiffe://${options.trustDomain()}/ns/${caller.namespace}/sa/${caller.serviceAccount}`;
    } catch (err) {
      if (err instanceof QueueFullError || err instanceof AbandonedError) throw err;
      metrics.authFailure.inc();
      const reason = err instanceof AuthenticationError ? err.message : "the token could not be reviewed";
      options.log.debug({ peer: call.getPeer(), reason }, "certificate request not authenticated");
      throw status(grpc.status.UNAUTHENTICATED, `request authenticate failure: ${reason}`);
    }
  };

  const createCertificate = async (
    call: grpc.ServerUnaryCall<CertificateRequest, unknown>,
  ): Promise<{ cert_chain: string[] }> => {
    metrics.csr.inc();
    if ((call.request.csr ?? "").length > MAX_CSR_BYTES)
      throw status(grpc.status.INVALID_ARGUMENT, `the CSR is larger than ${MAX_CSR_BYTES} bytes`);
    const t0 = performance.now();
    const spiffeId = await identify(call);
    const requested = Number(call.request.validity_duration ?? 0);
    if (requested > maxTtl) {
      metrics.signError.inc({ error_type: "ttl_error" });
      throw status(grpc.status.INVALID_ARGUMENT, `requested TTL ${requested}s is greater than the max allowed TTL ${maxTtl}s`);
    }
    const ttl = requested > 0 ? requested : defaultTtl;
    const t1 = performance.now();
    try {
      const chain = await signQueue.run(() => options.ca.sign(call.request.csr ?? "", spiffeId, ttl), call);
      metrics.success.inc();
      const ms = (n: number) => Number(n.toFixed(2));
      options.log.debug(
        { identity: spiffeId, ttl, authMs: ms(t1 - t0), signMs: ms(performance.now() - t1) },
        "certificate issued",
      );
      return { cert_chain: chain };
    } catch (err) {
      if (err instanceof QueueFullError || err instanceof AbandonedError) throw err;
      if (err instanceof CsrError) {
        metrics.csrParsingError.inc();
        throw status(grpc.status.INVALID_ARGUMENT, `CSR parsing error: ${err.message}`);
      }
      metrics.signError.inc({ error_type: "cert_gen_error" });
      options.log.error({ identity: spiffeId, error: (err as Error).message }, "certificate signing failed");
      throw status(grpc.status.INTERNAL, "CSR signing error");
    }
  };

  const server = new grpc.Server({
    // A CSR is about 1 KiB (checked above); xDS requests carry a proxy's node and, on
    // reconnect, the names and versions it holds: grpc-js's default 4 MiB when xDS is served.
    "grpc.max_receive_message_length": options.services ? 4 * 1024 * 1024 : MAX_CSR_BYTES,
    // Streams a single connection may have open: past it the client is refused, not buffered.
    "grpc.max_concurrent_streams": 256,
  });
  server.addService(proto.istio.v1.auth.IstioCertificateService.service, {
    CreateCertificate: (call: grpc.ServerUnaryCall<CertificateRequest, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      createCertificate(call).then(
        (response) => callback(null, response),
        (err: Error) => {
          if (err instanceof QueueFullError) {
            metrics.refused.inc({ reason: "queue_full" });
            return callback(status(grpc.status.RESOURCE_EXHAUSTED, `the CA is busy (${err.message}); retry later`));
          }
          if (err instanceof AbandonedError) {
            metrics.refused.inc({ reason: "abandoned" });
            return callback(status(grpc.status.CANCELLED, err.message));
          }
          callback(err as grpc.ServiceError);
        },
      );
    },
  });
  options.services?.(server);
  const { credentials, provider } = servingCredentials(options.tls, options.clientCaPem);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${options.host}:${options.port}`, credentials, (err, bound) => (err ? reject(err) : resolve(bound))),
  );
  options.log.info({ port }, "mesh CA serving IstioCertificateService");
  return {
    port,
    setCertificate: (certPem, keyPem) => provider.set(certPem, keyPem),
    setClientCa: (caPem) => provider.setCa(caPem),
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 3000).unref();
      }),
  };
}
