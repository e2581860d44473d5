// `make bench-inject`: HTTPS load on 127.0.0.1 against `rigger istiod` and upstream istiod
// (pilot-discovery at the pinned release) in the same run, with the same realistic pod.
// Prints throughput at saturation and p50/p99 latency at fixed rates; asserts nothing.
// Bounded: every phase has a fixed duration, and only processes started here are stopped.
import { Agent, request } from "node:https";
import type { V1Pod } from "@kubernetes/client-node";
import { buildBinaries, down, KUBECONFIG, kubectl, up } from "../e2e/cluster/local-cluster.ts";
import { startRiggerIstiod } from "../e2e/support/istiod.ts";
import { startUpstreamIstiod } from "../e2e/support/upstream-istiod.ts";

const SATURATION_SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const RATE_SECONDS = Number(process.env.BENCH_RATE_SECONDS ?? 5);
const CONCURRENCY = 16;
const RATES = [100, 500, 1000];
/** Each fixed-rate phase runs this many times per target, alternating; the median is reported. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

/** A pod as a Deployment's ReplicaSet creates it: 3 containers, probes, annotations. */
function realisticPod(): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      generateName: "checkout-7c9d8f6b5-",
      namespace: "shop",
      labels: { app: "checkout", version: "v3", "pod-template-hash": "7c9d8f6b5", "app.kubernetes.io/part-of": "shop" },
      annotations: {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "9090",
        "prometheus.io/path": "/metrics",
        "sidecar.istio.io/proxyCPU": "200m",
        "sidecar.istio.io/proxyMemory": "256Mi",
        "traffic.sidecar.istio.io/excludeOutboundPorts": "5432",
      },
      ownerReferences: [
        {
          apiVersion: "apps/v1",
          kind: "ReplicaSet",
          name: "checkout-7c9d8f6b5",
          uid: "6f1c1c3e-8d2a-4c55-9a0e-0c3b6f0e1a11",
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      serviceAccountName: "checkout",
      volumes: [{ name: "config", configMap: { name: "checkout" } }],
      containers: [
        {
          name: "checkout",
          image: "registry.example/shop/checkout:3.4.1",
          ports: [
            { name: "http", containerPort: 8080, protocol: "TCP" },
            { name: "metrics", containerPort: 9090, protocol: "TCP" },
          ],
          env: [{ name: "DB_HOST", value: "postgres.shop.svc" }],
          resources: { requests: { cpu: "250m", memory: "256Mi" }, limits: { memory: "512Mi" } },
          readinessProbe: { httpGet: { path: "/ready", port: "http" }, periodSeconds: 5 },
          livenessProbe: { httpGet: { path: "/live", port: 8080 }, periodSeconds: 10 },
          volumeMounts: [{ name: "config", mountPath: "/etc/checkout" }],
        },
        {
          name: "payments-client",
          image: "registry.example/shop/payments-client:1.2.0",
          ports: [{ name: "grpc", containerPort: 9000, protocol: "TCP" }],
          startupProbe: { grpc: { port: 9000 }, failureThreshold: 30 },
          resources: { requests: { cpu: "50m", memory: "64Mi" } },
        },
        {
          name: "log-shipper",
          image: "registry.example/ops/log-shipper:0.9",
          readinessProbe: { exec: { command: ["cat", "/tmp/ready"] } },
          resources: { requests: { cpu: "10m", memory: "32Mi" } },
        },
      ],
    },
  };
}

interface Target {
  name: string;
  url: string;
  agent: Agent;
}

function send(target: Target, body: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(
      target.url,
      { method: "POST", agent: target.agent, headers: { "content-type": "application/json", "content-length": body.length } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          if (res.statusCode !== 200) return reject(new Error(`${target.name}: HTTP ${res.statusCode}`));
          const response = JSON.parse(Buffer.concat(chunks).toString()).response;
          if (!response.allowed || !response.patch) return reject(new Error(`${target.name}: pod was not injected`));
          resolve();
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function saturation(target: Target, body: Buffer, seconds: number): Promise<number> {
  let done = 0;
  const end = Date.now() + seconds * 1000;
  const worker = async () => {
    while (Date.now() < end) {
      await send(target, body);
      done++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return done / ((performance.now() - t0) / 1000);
}

/** Open loop at `rate` req/s: latency counts from each request's scheduled start, so queueing shows. */
async function fixedRate(
  target: Target,
  body: Buffer,
  rate: number,
  seconds: number,
): Promise<{ p50: number; p99: number; achieved: number }> {
  const total = rate * seconds;
  const latencies: number[] = [];
  const start = performance.now();
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const scheduled = start + (i * 1000) / rate;
    const wait = scheduled - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    inFlight.push(
      send(target, body).then(() => {
        latencies.push(performance.now() - scheduled);
      }),
    );
  }
  await Promise.all(inFlight);
  const elapsed = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN;
  return { p50: at(0.5), p99: at(0.99), achieved: total / elapsed };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

function review(uid: number): Buffer {
  return Buffer.from(
    JSON.stringify({
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      request: { uid: `bench-${uid}`, namespace: "shop", object: realisticPod() },
    }),
  );
}

async function main(): Promise<void> {
  buildBinaries();
  const cluster = await up((line) => console.error(`bench: ${line}`));
  kubectl(["create", "namespace", "rigger-bench"]);
  const [rigger, upstream] = await Promise.all([
    startRiggerIstiod("bench"),
    startUpstreamIstiod(KUBECONFIG, "rigger-bench", "bench"),
  ]);
  const targets: Target[] = [
    {
      name: "rigger",
      url: `${rigger.baseUrl}/inject`,
      agent: new Agent({ keepAlive: true, maxSockets: CONCURRENCY, ca: rigger.caPem }),
    },
    {
      name: "upstream",
      url: `${upstream.baseUrl}/inject`,
      agent: new Agent({ keepAlive: true, maxSockets: CONCURRENCY, ca: upstream.caPem }),
    },
  ];
  const body = review(1);
  const results: Record<string, Record<string, number>> = Object.fromEntries(targets.map((t) => [t.name, {}]));
  const of = (name: string): Record<string, number> => results[name] ?? {};
  try {
    for (const t of targets) {
      await saturation(t, body, 1); // warm-up: JIT, connection pool, caches
      const throughput = await saturation(t, body, SATURATION_SECONDS);
      of(t.name).throughput = throughput;
      console.error(`bench: ${t.name} saturation ${throughput.toFixed(0)} req/s`);
    }
    for (const rate of RATES) {
      const p50: Record<string, number[]> = Object.fromEntries(targets.map((t) => [t.name, []]));
      const p99: Record<string, number[]> = Object.fromEntries(targets.map((t) => [t.name, []]));
      for (let round = 0; round < ROUNDS; round++) {
        for (const t of targets) {
          const r = await fixedRate(t, body, rate, RATE_SECONDS);
          p50[t.name]?.push(r.p50);
          p99[t.name]?.push(r.p99);
          console.error(
            `bench: ${t.name} @${rate} req/s round ${round + 1}: p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms (achieved ${r.achieved.toFixed(0)} req/s)`,
          );
        }
      }
      for (const t of targets) {
        of(t.name)[`p50@${rate}`] = median(p50[t.name] ?? []);
        of(t.name)[`p99@${rate}`] = median(p99[t.name] ?? []);
      }
    }
  } finally {
    for (const t of targets) t.agent.destroy();
    await Promise.all([rigger.stop(), upstream.stop()]);
    kubectl(["delete", "namespace", "rigger-bench", "--wait=false"]);
    if (cluster.started) await down(() => {});
  }
  const value = (name: string, key: string) => of(name)[key] ?? Number.NaN;
  const rows: [string, number, number][] = [
    ["throughput at saturation (req/s)", value("rigger", "throughput"), value("upstream", "throughput")],
  ];
  for (const rate of RATES) {
    rows.push([`p50 latency at ${rate} req/s (ms)`, value("rigger", `p50@${rate}`), value("upstream", `p50@${rate}`)]);
    rows.push([`p99 latency at ${rate} req/s (ms)`, value("rigger", `p99@${rate}`), value("upstream", `p99@${rate}`)]);
  }
  console.log(
    `\nSidecar injection webhook, HTTPS on 127.0.0.1: ${CONCURRENCY} connections for ${SATURATION_SECONDS}s at saturation; ` +
      `latency is the median of ${ROUNDS} rounds of ${RATE_SECONDS}s per rate, measured from each request's scheduled start`,
  );
  console.log("| metric | rigger | upstream istiod 1.27.9 | rigger ÷ upstream |");
  console.log("|---|---|---|---|");
  for (const [metric, ours, theirs] of rows) {
    const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(2));
    console.log(`| ${metric} | ${fmt(ours)} | ${fmt(theirs)} | ${(ours / theirs).toFixed(2)} |`);
  }
}

await main();
