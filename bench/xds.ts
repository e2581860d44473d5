// `make bench-xds`: Pilot under load, Rigger's istiod and upstream pilot-discovery on the same
// cluster state in the same run, one after the other (each has the 2 cores to itself).
//   1. 1,000 Services (HTTP port 80) with 10 endpoints each (EndpointSlices; addresses nobody
//      dials) in one namespace of the local cluster.
//   2. A control plane started against it, with plaintext xDS on 127.0.0.1 (Rigger's
//      --plaintext-xds-port, upstream's --grpcAddr): 500 simulated sidecars connect, each on
//      its own HTTP/2 connection, over Delta ADS as pilot-agent does, and subscribe to CDS,
//      EDS (every cluster CDS named), LDS and RDS (route "80"). Every response is ACKed at once.
//   3. Ten times, one EndpointSlice gets a new address: the time from the write to each proxy's
//      EDS response holding that address (every proxy's, so the last is "the last ACK"); then
//      ten times a VirtualService for svc-0 gets a new URI prefix: the time to each proxy's RDS
//      response holding it.
//   4. CPU seconds (user + system, from /proc) over connect and changes, and peak RSS (VmHWM).
// Prints a table; asserts nothing; deletes what it created and stops only what it started.
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { down, KUBECONFIG, kubectl, ROOT } from "../e2e/cluster/local-cluster.ts";
import { startClusterIstiod } from "../e2e/support/cluster-istiod.ts";
import { startUpstreamIstiod } from "../e2e/support/upstream-istiod.ts";
import type { RawClient } from "../kube/raw-client.ts";
import type {
  DeltaDiscoveryRequest,
  DeltaDiscoveryResponse,
} from "../xds/envoy/third_party/envoy/service/discovery/v3/discovery.ts";
import { TypeUrl } from "../xds/envoy/types.ts";
import { ADS_SERVICE } from "../xds/server/ads.ts";
import { benchCluster, median } from "./load.ts";

const SERVICES = Number(process.env.BENCH_SERVICES ?? 1000);
const ENDPOINTS = Number(process.env.BENCH_ENDPOINTS ?? 10);
const PROXIES = Number(process.env.BENCH_PROXIES ?? 500);
const CHANGES = Number(process.env.BENCH_CHANGES ?? 10);
const RUN = Math.random().toString(16).slice(2, 8);
const NAMESPACE = `xds-bench-${RUN}`;
const ISTIO_VERSION = readFileSync(`${ROOT}/versions.env`, "utf8").match(/^ISTIO=(\S+)/m)?.[1] ?? "1.27.9";

/** The k-th endpoint address: 10.200.0.0/16, data only. */
const address = (k: number) => `10.200.${(k >> 8) & 255}.${k & 255}`;

function slice(i: number, extra: string[] = []) {
  const addresses = [...Array.from({ length: ENDPOINTS }, (_, j) => address(i * ENDPOINTS + j)), ...extra];
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { name: `svc-${i}-bench`, namespace: NAMESPACE, labels: { "kubernetes.io/service-name": `svc-${i}` } },
    addressType: "IPv4",
    ports: [{ name: "http", port: 8080, protocol: "TCP" }],
    endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready: true } })),
  };
}

/** svc-0's VirtualService: requests under `prefix` go to svc-1, the rest to svc-0. */
function virtualService(prefix: string) {
  return {
    apiVersion: "networking.istio.io/v1",
    kind: "VirtualService",
    metadata: { name: "svc-0", namespace: NAMESPACE },
    spec: {
      hosts: ["svc-0"],
      http: [
        { name: "moved", match: [{ uri: { prefix } }], route: [{ destination: { host: "svc-1" } }] },
        { name: "rest", route: [{ destination: { host: "svc-0" } }] },
      ],
    },
  };
}

async function createMesh(client: RawClient): Promise<void> {
  kubectl(["create", "namespace", NAMESPACE]);
  let next = 0;
  const worker = async () => {
    while (next < SERVICES) {
      const i = next++;
      await client.create(`/api/v1/namespaces/${NAMESPACE}/services`, {
        apiVersion: "v1",
        kind: "Service",
        // No selector: the EndpointSlice controller leaves the bench's slices alone.
        metadata: { name: `svc-${i}`, namespace: NAMESPACE },
        spec: { ports: [{ name: "http", port: 80, targetPort: 8080 }] },
      });
      await client.create(`/apis/discovery.k8s.io/v1/namespaces/${NAMESPACE}/endpointslices`, slice(i));
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  await client.create(`/apis/networking.istio.io/v1/namespaces/${NAMESPACE}/virtualservices`, virtualService("/bench-0"));
}

const AdsClient = grpc.makeGenericClientConstructor(ADS_SERVICE, "ads");
const TYPES = [TypeUrl.cluster, TypeUrl.endpoint, TypeUrl.listener, TypeUrl.route];

/** One sidecar as pilot-agent drives it: Delta ADS, every response ACKed as it arrives. */
class SimulatedProxy {
  readonly seen = new Set<string>();
  private readonly client: grpc.Client;
  private call!: grpc.ClientDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;
  private readonly nodeIp: string;
  private readonly index: number;
  private closed = false;
  /** Streams refused for the control plane's rate limit (RESOURCE_EXHAUSTED) and opened again. */
  retries = 0;
  /** Called with each EDS response's resources' bytes. */
  onEndpoints?: (values: Uint8Array[]) => void;
  /** Called with each RDS response's resources' bytes. */
  onRoutes?: (values: Uint8Array[]) => void;
  error?: string;

  constructor(address: string, index: number) {
    // Its own connection, as every sidecar has (grpc-js would otherwise share one between channels).
    this.client = new AdsClient(address, grpc.credentials.createInsecure(), {
      "grpc.use_local_subchannel_pool": 1,
      "grpc.max_receive_message_length": 64 * 1024 * 1024,
    });
    this.nodeIp = `10.250.${(index >> 8) & 255}.${index & 255}`;
    this.index = index;
    this.open();
  }

  /** A new stream; refused for the rate limit, it is opened again after a pause, as pilot-agent does. */
  private open(): void {
    const call = (
      this.client as unknown as {
        DeltaAggregatedResources(): grpc.ClientDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;
      }
    ).DeltaAggregatedResources();
    this.call = call;
    call.on("data", (response: DeltaDiscoveryResponse) => this.receive(response));
    call.on("error", (err: grpc.ServiceError) => {
      if (this.closed) return;
      if (err.code === grpc.status.RESOURCE_EXHAUSTED && this.seen.size === 0) {
        this.retries++;
        setTimeout(() => this.open(), 200 + Math.random() * 800);
      } else if (err.code !== grpc.status.CANCELLED) this.error = err.message;
    });
    call.write({
      typeUrl: TypeUrl.cluster,
      node: {
        id: `sidecar~${this.nodeIp}~bench-${this.index}.${NAMESPACE}~${NAMESPACE}.svc.cluster.local`,
        cluster: `bench.${NAMESPACE}`,
        metadata: {
          fields: {
            NAMESPACE: { stringValue: NAMESPACE },
            ISTIO_VERSION: { stringValue: ISTIO_VERSION },
            CLUSTER_ID: { stringValue: "Kubernetes" },
            SERVICE_ACCOUNT: { stringValue: "default" },
          },
        },
      },
    } as DeltaDiscoveryRequest);
    call.write({ typeUrl: TypeUrl.listener });
  }

  private receive(response: DeltaDiscoveryResponse): void {
    const typeUrl = response.typeUrl ?? "";
    const first = !this.seen.has(typeUrl);
    this.seen.add(typeUrl);
    this.call.write({ typeUrl, responseNonce: response.nonce });
    const resources = response.resources ?? [];
    if (typeUrl === TypeUrl.cluster && first) {
      const names = resources.map((r) => r.name ?? "").filter((n) => n.startsWith("outbound|"));
      this.call.write({ typeUrl: TypeUrl.endpoint, resourceNamesSubscribe: names });
    }
    if (typeUrl === TypeUrl.listener && first) this.call.write({ typeUrl: TypeUrl.route, resourceNamesSubscribe: ["80"] });
    const values = () => resources.map((r) => r.resource?.value ?? new Uint8Array());
    if (typeUrl === TypeUrl.endpoint) this.onEndpoints?.(values());
    if (typeUrl === TypeUrl.route) this.onRoutes?.(values());
  }

  get ready(): boolean {
    return TYPES.every((t) => this.seen.has(t));
  }

  close(): void {
    this.closed = true;
    this.call.cancel();
    this.client.close();
  }
}

/** utime + stime of a process, seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function peakRssMiB(pid: number): number {
  const kb = Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
  return kb / 1024;
}

async function waitUntil(what: string, ok: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Result {
  vsLast: number[];
  vsPerProxy: number[];
  connectSeconds: number;
  retries: number;
  lastAck: number[];
  perProxy: number[];
  cpuSeconds: number;
  peakRssMiB: number;
}

/** Connects the proxies to `address`, makes the changes, measures; `pid` is the control plane's. */
async function measure(name: string, address: string, pid: number, client: RawClient, round: { n: number }): Promise<Result> {
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  const proxies: SimulatedProxy[] = [];
  try {
    // In groups of 50, as a rollout would bring them.
    for (let i = 0; i < PROXIES; i++) {
      proxies.push(new SimulatedProxy(address, i));
      if (i % 50 === 49) await new Promise((r) => setTimeout(r, 50));
    }
    await waitUntil(
      `${name}: ${PROXIES} proxies with CDS, EDS, LDS and RDS`,
      () => {
        const failed = proxies.find((p) => p.error);
        if (failed) throw new Error(`${name}: a proxy's stream failed: ${failed.error}`);
        return proxies.every((p) => p.ready);
      },
      300_000,
    );
    const connectSeconds = (performance.now() - t0) / 1000;
    const retries = proxies.reduce((n, p) => n + p.retries, 0);
    console.error(
      `bench: ${name}: ${PROXIES} proxies connected and configured in ${connectSeconds.toFixed(1)} s (${retries} streams refused for the rate limit and retried)`,
    );
    await new Promise((r) => setTimeout(r, 2000));

    const lastAck: number[] = [];
    const perProxy: number[] = [];
    for (let c = 0; c < CHANGES; c++) {
      const service = (round.n * 7919) % SERVICES;
      const added = `10.201.${(round.n >> 8) & 255}.${round.n & 255}`;
      round.n++;
      const needle = Buffer.from(added);
      const at = new Map<SimulatedProxy, number>();
      for (const p of proxies) {
        p.onEndpoints = (values) => {
          if (!at.has(p) && values.some((v) => Buffer.from(v.buffer, v.byteOffset, v.byteLength).includes(needle)))
            at.set(p, performance.now());
        };
      }
      const start = performance.now();
      await client.replace(
        `/apis/discovery.k8s.io/v1/namespaces/${NAMESPACE}/endpointslices/svc-${service}-bench`,
        slice(service, [added]),
      );
      await waitUntil(`${name}: every proxy to get endpoint ${added}`, () => at.size === proxies.length, 120_000);
      const times = [...at.values()].map((t) => t - start).sort((a, b) => a - b);
      lastAck.push(times.at(-1) ?? Number.NaN);
      perProxy.push(...times);
      console.error(
        `bench: ${name}: EndpointSlice change ${c + 1}: first proxy ${times[0]?.toFixed(0)} ms, last ${times.at(-1)?.toFixed(0)} ms`,
      );
      // Put the slice back, and let that push settle before the next change.
      await client.replace(
        `/apis/discovery.k8s.io/v1/namespaces/${NAMESPACE}/endpointslices/svc-${service}-bench`,
        slice(service),
      );
      await new Promise((r) => setTimeout(r, 1500));
    }
    const vsLast: number[] = [];
    const vsPerProxy: number[] = [];
    for (let c = 0; c < CHANGES; c++) {
      const prefix = `/bench-${round.n++}`;
      const needle = Buffer.from(prefix);
      const at = new Map<SimulatedProxy, number>();
      for (const p of proxies) {
        p.onRoutes = (values) => {
          if (!at.has(p) && values.some((v) => Buffer.from(v.buffer, v.byteOffset, v.byteLength).includes(needle)))
            at.set(p, performance.now());
        };
      }
      const start = performance.now();
      await client.apply(
        `/apis/networking.istio.io/v1/namespaces/${NAMESPACE}/virtualservices/svc-0`,
        virtualService(prefix),
        "bench",
      );
      await waitUntil(`${name}: every proxy to get route ${prefix}`, () => at.size === proxies.length, 120_000);
      const times = [...at.values()].map((t) => t - start).sort((a, b) => a - b);
      vsLast.push(times.at(-1) ?? Number.NaN);
      vsPerProxy.push(...times);
      console.error(
        `bench: ${name}: VirtualService change ${c + 1}: first proxy ${times[0]?.toFixed(0)} ms, last ${times.at(-1)?.toFixed(0)} ms`,
      );
      await new Promise((r) => setTimeout(r, 1500));
    }
    return {
      vsLast,
      vsPerProxy,
      connectSeconds,
      retries,
      lastAck,
      perProxy,
      cpuSeconds: cpuSeconds(pid) - cpu0,
      peakRssMiB: peakRssMiB(pid),
    };
  } finally {
    for (const p of proxies) p.close();
  }
}

const quantile = (values: number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
};

async function main() {
  const { started, client } = await benchCluster();
  // Istio's CRDs (upstream's informers want them).
  kubectl(["apply", "-f", `${ROOT}/manifests/install.yaml`]);
  kubectl(["wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"]);
  const results: Record<string, Result> = {};
  const round = { n: 1 };
  const namespaces = [`rigger-bench-xds-${RUN}`, `upstream-bench-xds-${RUN}`];
  try {
    const t0 = Date.now();
    await createMesh(client);
    console.error(
      `bench: ${SERVICES} Services and EndpointSlices (${ENDPOINTS} endpoints each) created in ${((Date.now() - t0) / 1000).toFixed(0)} s`,
    );
    for (const ns of namespaces) kubectl(["create", "namespace", ns]);

    const rigger = await startClusterIstiod(KUBECONFIG, namespaces[0] ?? "", ["--plaintext-xds-port=0"]);
    try {
      const port = Number(/"plaintextXdsPort":(\d+)/.exec(readFileSync(rigger.logFile, "utf8"))?.[1]);
      if (!port) throw new Error(`rigger istiod did not log its plaintext xDS port (${rigger.logFile})`);
      results.rigger = await measure("rigger", `127.0.0.1:${port}`, rigger.process.pid ?? 0, client, round);
    } finally {
      await rigger.stop();
    }
    const upstream = await startUpstreamIstiod(KUBECONFIG, namespaces[1] ?? "", "");
    try {
      results.upstream = await measure("upstream", upstream.plaintextAddress, upstream.process.pid ?? 0, client, round);
    } finally {
      await upstream.stop();
    }
  } finally {
    for (const ns of [NAMESPACE, ...namespaces]) kubectl(["delete", "namespace", ns, "--ignore-not-found", "--wait=false"]);
    if (started) await down((line) => console.error(`bench: ${line}`));
  }

  const r = results.rigger as Result;
  const u = results.upstream as Result;
  const rows: [string, number, number][] = [
    [`${PROXIES} proxies connected → all have CDS, EDS, LDS, RDS (s)`, r.connectSeconds, u.connectSeconds],
    ["streams refused by the connection rate limit, retried", r.retries, u.retries],
    ["EndpointSlice change → last proxy's EDS, median of changes (ms)", median(r.lastAck), median(u.lastAck)],
    [
      "EndpointSlice change → a proxy's EDS, p50 over proxies and changes (ms)",
      quantile(r.perProxy, 0.5),
      quantile(u.perProxy, 0.5),
    ],
    ["EndpointSlice change → a proxy's EDS, p99 (ms)", quantile(r.perProxy, 0.99), quantile(u.perProxy, 0.99)],
    ["VirtualService change → last proxy's RDS, median of changes (ms)", median(r.vsLast), median(u.vsLast)],
    ["VirtualService change → a proxy's RDS, p50 (ms)", quantile(r.vsPerProxy, 0.5), quantile(u.vsPerProxy, 0.5)],
    ["VirtualService change → a proxy's RDS, p99 (ms)", quantile(r.vsPerProxy, 0.99), quantile(u.vsPerProxy, 0.99)],
    [`CPU seconds, connect + ${CHANGES} + ${CHANGES} changes`, r.cpuSeconds, u.cpuSeconds],
    ["peak RSS (MiB)", r.peakRssMiB, u.peakRssMiB],
  ];
  console.log(`\n### xDS: ${SERVICES} services × ${ENDPOINTS} endpoints, ${PROXIES} simulated proxies (Delta ADS)\n`);
  console.log("| measure | rigger | upstream | rigger / upstream |");
  console.log("|---|---|---|---|");
  const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(2));
  for (const [metric, ours, theirs] of rows)
    console.log(`| ${metric} | ${fmt(ours)} | ${fmt(theirs)} | ${theirs === 0 ? "-" : (ours / theirs).toFixed(2)} |`);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
