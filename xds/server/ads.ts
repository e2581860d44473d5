// Envoy's Aggregated Discovery Service on istiod's gRPC port (15012, beside the CA), both
// flavours: StreamAggregatedResources (state of the world) and DeltaAggregatedResources.
//
// A stream is served only once its caller is known, as upstream's authenticators decide it: a
// mesh client certificate the TLS handshake verified against the mesh roots (its SPIFFE URI),
// else `authorization: Bearer <token>` (a Kubernetes ServiceAccount token for audience
// istio-ca, reviewed by the apiserver and cached, the CA's reviewer), else UNAUTHENTICATED and
// nothing sent. The first request's node must parse (INVALID_ARGUMENT) and claim the caller's
// own namespace and ServiceAccount (PERMISSION_DENIED), as upstream's identity check. Then
// stream.ts speaks the protocol and the generators (passed in) say what each proxy gets.
//
// A server registered with `plaintext` (istiod's 15010, off unless asked for) authenticates
// nobody, as upstream's plaintext port: for local debugging only.
import * as grpc from "@grpc/grpc-js";
import type pino from "pino";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import {
  AuthenticationError,
  bearerToken,
  type Caller,
  certificateCaller,
  type TokenReviewer,
} from "../../istiod/ca/authenticate.ts";
import {
  DeltaDiscoveryRequest,
  DeltaDiscoveryResponse,
  DiscoveryRequest,
  DiscoveryResponse,
} from "../envoy/third_party/envoy/service/discovery/v3/discovery.ts";
import { type MessageCodec, TypeUrl } from "../envoy/types.ts";
import { identityMismatch, type MeshProxy, NodeError, parseNode } from "../proxy.ts";
import { DeltaStream, type Generate, SotwStream } from "./stream.ts";

const SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService";

function bidi<Req, Res>(name: string, req: MessageCodec<Req>, res: MessageCodec<Res>) {
  return {
    path: `/${SERVICE}/${name}`,
    requestStream: true,
    responseStream: true,
    requestSerialize: (m: Req) => Buffer.from(req.encode(m).finish()),
    requestDeserialize: (b: Buffer) => req.decode(b),
    responseSerialize: (m: Res) => Buffer.from(res.encode(m).finish()),
    responseDeserialize: (b: Buffer) => res.decode(b),
    originalName: name,
  };
}

/** The ADS service (its client side too: grpc.makeGenericClientConstructor(ADS_SERVICE, "ads")). */
export const ADS_SERVICE = {
  StreamAggregatedResources: bidi("StreamAggregatedResources", DiscoveryRequest, DiscoveryResponse),
  DeltaAggregatedResources: bidi("DeltaAggregatedResources", DeltaDiscoveryRequest, DeltaDiscoveryResponse),
} as grpc.ServiceDefinition;

/** Short names of the xDS types, as upstream's metrics label them. */
export function typeLabel(typeUrl: string): string {
  const short: Record<string, string> = {
    [TypeUrl.cluster]: "cds",
    [TypeUrl.listener]: "lds",
    [TypeUrl.route]: "rds",
    [TypeUrl.endpoint]: "eds",
    [TypeUrl.secret]: "sds",
  };
  return short[typeUrl] ?? typeUrl.slice(typeUrl.lastIndexOf("/") + 1);
}

export interface Connection {
  /** `<pod>.<namespace>-<n>`, as upstream names connections. */
  id: string;
  proxy: MeshProxy;
  /** Who the credentials said (undefined on the plaintext port, which checks none). */
  caller?: Caller;
  delta: boolean;
  connectedAt: Date;
  stream: SotwStream | DeltaStream;
  /** What this proxy is generated from (debug endpoints regenerate with it). */
  generate: Generate;
  peer: string;
}

export interface NackReport {
  connection: Connection;
  typeUrl: string;
  message: string;
  /** Names of the resources in the rejected response. */
  resources: string[];
}

export interface AdsServerOptions {
  reviewer: TokenReviewer;
  /** The mesh's trust domain: a client certificate must name a workload of it. */
  trustDomain: () => string;
  /** The generator for one proxy's stream. */
  generatorFor: (proxy: MeshProxy) => Generate;
  registry: Registry;
  log: pino.Logger;
  /** A proxy rejected configuration (after it was logged and counted). */
  onNack?: (report: NackReport) => void;
}

function adsMetrics(registry: Registry) {
  return {
    connected: new Gauge({
      name: "pilot_xds",
      help: "Number of endpoints connected to this pilot using XDS.",
      labelNames: ["version"],
      registers: [registry],
    }),
    pushes: new Counter({
      name: "pilot_xds_pushes",
      help: "Pilot build and send errors for lds, rds, cds and eds.",
      labelNames: ["type"],
      registers: [registry],
    }),
    rejects: new Counter({
      name: "pilot_total_xds_rejects",
      help: "Total number of XDS responses from pilot rejected by proxy.",
      labelNames: ["type"],
      registers: [registry],
    }),
    internalErrors: new Counter({
      name: "pilot_total_xds_internal_errors",
      help: "Total number of internal XDS errors in pilot.",
      registers: [registry],
    }),
    convergence: new Histogram({
      name: "pilot_proxy_convergence_time",
      help: "Delay in seconds between config change and a proxy receiving all required configuration.",
      buckets: [0.1, 0.5, 1, 3, 5, 10, 20, 30],
      registers: [registry],
    }),
  };
}

function status(code: grpc.status, details: string): grpc.StatusObject {
  return { code, details, metadata: new grpc.Metadata() };
}

/** Proxies pushed per turn of the event loop. */
const PUSH_BATCH = 25;

export class AdsServer {
  private readonly options: AdsServerOptions;
  private readonly metrics: ReturnType<typeof adsMetrics>;
  private readonly live = new Map<string, Connection>();
  private counter = 0;
  /** NACKs already logged, by proxy, type and message: each is logged once. */
  private readonly nacksLogged = new Set<string>();

  constructor(options: AdsServerOptions) {
    this.options = options;
    this.metrics = adsMetrics(options.registry);
  }

  /** Serves ADS on `server`; `plaintext` skips authentication (a server without TLS). */
  register(server: grpc.Server, { plaintext = false } = {}): void {
    server.addService(ADS_SERVICE, {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>) =>
        this.serve(call, false, plaintext),
      DeltaAggregatedResources: (call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>) =>
        this.serve(call, true, plaintext),
    });
  }

  connections(): Connection[] {
    return [...this.live.values()];
  }

  /** Sends every connection (or those `which` selects) what changed in `types` (all types when undefined). */
  push(types?: ReadonlySet<string>, which?: (c: Connection) => boolean, only?: ReadonlySet<string>): void {
    const connections = [...this.live.values()].filter((c) => !which || which(c));
    // A batch of proxies per turn of the event loop, so the first ones' responses go out while
    // the rest are generated (one loop over thousands would hold every write until its end).
    const step = (from: number) => {
      const to = Math.min(connections.length, from + PUSH_BATCH);
      for (const connection of connections.slice(from, to)) {
        if (!this.live.has(connection.id)) continue;
        try {
          connection.stream.push(types, only);
        } catch (err) {
          this.metrics.internalErrors.inc();
          this.options.log.error({ proxy: connection.proxy.id, error: (err as Error).message }, "push failed");
        }
      }
      if (to < connections.length) setImmediate(() => step(to));
    };
    step(0);
  }

  private serve(
    call: grpc.ServerDuplexStream<DiscoveryRequest | DeltaDiscoveryRequest, DiscoveryResponse | DeltaDiscoveryResponse>,
    delta: boolean,
    plaintext: boolean,
  ): void {
    const log = this.options.log;
    let connection: Connection | undefined;
    let ended = false;
    const pending: (DiscoveryRequest | DeltaDiscoveryRequest)[] = [];
    let authenticated = false;
    let caller: Caller | undefined;
    const fail = (code: grpc.status, details: string) => {
      if (ended) return;
      ended = true;
      call.emit("error", status(code, details));
    };
    const close = () => {
      ended = true;
      if (connection && this.live.delete(connection.id)) {
        this.metrics.connected.dec({ version: connection.proxy.istioVersion || "unknown" });
        log.info({ connection: connection.id }, "xDS stream closed");
      }
    };
    const handle = (request: DiscoveryRequest | DeltaDiscoveryRequest) => {
      if (ended || !authenticated) return;
      if (!connection) {
        let proxy: MeshProxy;
        try {
          proxy = parseNode(request.node);
        } catch (err) {
          if (!(err instanceof NodeError)) throw err;
          fail(grpc.status.INVALID_ARGUMENT, err.message);
          return;
        }
        const mismatch = caller && identityMismatch(proxy, caller);
        if (mismatch) {
          log.warn({ proxy: proxy.id, peer: call.getPeer(), reason: mismatch }, "xDS stream refused");
          fail(grpc.status.PERMISSION_DENIED, `authorization failed: ${mismatch}`);
          return;
        }
        if (caller) proxy.verifiedIdentity = { namespace: caller.namespace, serviceAccount: caller.serviceAccount };
        connection = this.connect(proxy, caller, delta, call);
      }
      try {
        if (delta) (connection.stream as DeltaStream).handle(request as DeltaDiscoveryRequest);
        else (connection.stream as SotwStream).handle(request as DiscoveryRequest);
      } catch (err) {
        this.metrics.internalErrors.inc();
        log.error({ connection: connection.id, error: (err as Error).message }, "xDS request failed");
        fail(grpc.status.INTERNAL, "the request could not be served");
      }
    };
    call.on("data", (request: DiscoveryRequest | DeltaDiscoveryRequest) => {
      if (authenticated) handle(request);
      else if (pending.length < 16) pending.push(request);
      else fail(grpc.status.RESOURCE_EXHAUSTED, "too many requests before authentication finished");
    });
    call.on("end", () => {
      close();
      call.end();
    });
    call.on("error", close);
    call.on("cancelled", close);

    const accept = (who: Caller | undefined) => {
      authenticated = true;
      caller = who;
      for (const request of pending.splice(0)) handle(request);
    };
    if (plaintext) {
      accept(undefined);
      return;
    }
    let token: string;
    try {
      const byCertificate = certificateCaller(call.getAuthContext(), this.options.trustDomain());
      if (byCertificate) {
        accept(byCertificate);
        return;
      }
      token = bearerToken(call.metadata.get("authorization")[0]?.toString());
    } catch (err) {
      fail(grpc.status.UNAUTHENTICATED, `authentication failure: ${(err as Error).message}`);
      return;
    }
    const reviewer = this.options.reviewer;
    let cached: Caller | undefined;
    try {
      cached = reviewer.cached(token);
    } catch (err) {
      fail(grpc.status.UNAUTHENTICATED, `authentication failure: ${(err as Error).message}`);
      return;
    }
    (cached ? Promise.resolve(cached) : reviewer.authenticate(token)).then(
      (who) => accept(who),
      (err: Error) => {
        const reason = err instanceof AuthenticationError ? err.message : "the token could not be reviewed";
        log.debug({ peer: call.getPeer(), reason }, "xDS stream not authenticated");
        fail(grpc.status.UNAUTHENTICATED, `authentication failure: ${reason}`);
      },
    );
  }

  private connect(
    proxy: MeshProxy,
    caller: Caller | undefined,
    delta: boolean,
    call: grpc.ServerDuplexStream<DiscoveryRequest | DeltaDiscoveryRequest, DiscoveryResponse | DeltaDiscoveryResponse>,
  ): Connection {
    const id = `${proxy.id}-${++this.counter}`;
    const sentAt = new Map<string, number>();
    const events = {
      sent: (typeUrl: string, nonce: string) => {
        this.metrics.pushes.inc({ type: typeLabel(typeUrl) });
        sentAt.set(nonce, performance.now());
      },
      acked: (_typeUrl: string, nonce: string) => {
        const at = sentAt.get(nonce);
        if (at !== undefined) this.metrics.convergence.observe((performance.now() - at) / 1000);
        sentAt.clear();
      },
      nacked: (typeUrl: string, nonce: string, message: string, resources: string[]) => {
        sentAt.delete(nonce);
        this.metrics.rejects.inc({ type: typeLabel(typeUrl) });
        const key = `${proxy.id}\n${typeUrl}\n${message}`;
        if (!this.nacksLogged.has(key)) {
          if (this.nacksLogged.size > 10_000) this.nacksLogged.clear();
          this.nacksLogged.add(key);
          this.options.log.warn({ proxy: proxy.id, type: typeLabel(typeUrl), message }, "proxy rejected configuration (NACK)");
        }
        if (connection) this.options.onNack?.({ connection, typeUrl, message, resources });
      },
      unknownType: (typeUrl: string) => this.options.log.info({ proxy: proxy.id, typeUrl }, "unknown xDS type: answered empty"),
    };
    const generate = this.options.generatorFor(proxy);
    const write = (response: DiscoveryResponse | DeltaDiscoveryResponse) => {
      call.write(response);
    };
    const stream = delta ? new DeltaStream(generate, write, events) : new SotwStream(generate, write, events);
    const connection: Connection = { id, proxy, caller, delta, connectedAt: new Date(), stream, generate, peer: call.getPeer() };
    this.live.set(id, connection);
    this.metrics.connected.inc({ version: proxy.istioVersion || "unknown" });
    this.options.log.info({ connection: id, delta, version: proxy.istioVersion }, "xDS stream connected");
    return connection;
  }
}
