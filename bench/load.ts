// HTTPS load on 127.0.0.1 for the webhook benchmarks: saturation throughput, open-loop
// fixed-rate latency, and a side-by-side table of rigger and upstream istiod. Every phase
// has a fixed duration; only the servers started here are stopped.
import { Agent, request } from "node:https";
import { KubeConfig } from "@kubernetes/client-node";
import { buildBinaries, down, KUBECONFIG, kubectl, up } from "../e2e/cluster/local-cluster.ts";
import { startIstiodPair } from "../e2e/support/upstream-istiod.ts";
import { type RawClient, rawClient } from "../kube/raw-client.ts";

export const SATURATION_SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
export const RATE_SECONDS = Number(process.env.BENCH_RATE_SECONDS ?? 5);
/** Each fixed-rate phase runs this many times per server, alternating; the median round is reported. */
export const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
export const CONCURRENCY = 16;

export interface Target {
  name: string;
  url: string;
  agent: Agent;
}

/** One request; `accept` says what is wrong with the AdmissionResponse, or nothing when it is as expected. */
export function send(
  target: Target,
  body: Buffer,
  accept: (response: Record<string, unknown>) => string | undefined,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const headers = { "content-type": "application/json", "content-length": body.length };
    const req = request(target.url, { method: "POST", agent: target.agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        if (res.statusCode !== 200) return reject(new Error(`${target.name}: HTTP ${res.statusCode}`));
        const problem = accept(JSON.parse(Buffer.concat(chunks).toString()).response);
        if (problem) return reject(new Error(`${target.name}: ${problem}`));
        resolve();
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}

export type Send = (target: Target) => Promise<void>;

export async function saturation(target: Target, once: Send, seconds: number): Promise<number> {
  let done = 0;
  const end = Date.now() + seconds * 1000;
  const worker = async () => {
    while (Date.now() < end) {
      await once(target);
      done++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return done / ((performance.now() - t0) / 1000);
}

/** Open loop at `rate` req/s: latency counts from each request's scheduled start, so queueing shows. */
export async function fixedRate(target: Target, once: Send, rate: number, seconds: number) {
  const total = rate * seconds;
  const latencies: number[] = [];
  const start = performance.now();
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const scheduled = start + (i * 1000) / rate;
    const wait = scheduled - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    inFlight.push(once(target).then(() => void latencies.push(performance.now() - scheduled)));
  }
  await Promise.all(inFlight);
  const elapsed = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN;
  return { p50: at(0.5), p99: at(0.99), achieved: total / elapsed };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/** Brings up the cluster (if needed), rigger istiod and upstream istiod, runs `body`, and stops what it started. */
export async function withBothServers(revision: string, body: (targets: Target[]) => Promise<void>): Promise<void> {
  buildBinaries();
  const cluster = await up((line) => console.error(`bench: ${line}`));
  const namespace = `rigger-bench-${revision}`;
  const { rigger, upstream, stop } = await startIstiodPair(KUBECONFIG, namespace, revision);
  const targets: Target[] = [
    { name: "rigger", url: rigger.baseUrl, agent: new Agent({ keepAlive: true, maxSockets: CONCURRENCY, ca: rigger.caPem }) },
    {
      name: "upstream",
      url: upstream.baseUrl,
      agent: new Agent({ keepAlive: true, maxSockets: CONCURRENCY, ca: upstream.caPem }),
    },
  ];
  try {
    await body(targets);
  } finally {
    for (const t of targets) t.agent.destroy();
    await stop();
    kubectl(["delete", "namespace", namespace, "--wait=false"]);
    if (cluster.started) await down(() => {});
  }
}

export interface Scenario {
  name: string;
  once: Send;
}

/** Saturation throughput and fixed-rate latency for each scenario on both servers; prints the table. */
export async function compare(targets: Target[], scenarios: Scenario[], rates: number[], title: string): Promise<void> {
  const rows: [string, number, number][] = [];
  for (const scenario of scenarios) {
    const throughput: Record<string, number> = {};
    for (const t of targets) {
      await saturation(t, scenario.once, 1); // warm-up: JIT, connection pool
      throughput[t.name] = await saturation(t, scenario.once, SATURATION_SECONDS);
      console.error(`bench: ${scenario.name}: ${t.name} saturation ${(throughput[t.name] ?? 0).toFixed(0)} req/s`);
    }
    rows.push([
      `${scenario.name}: throughput at saturation (req/s)`,
      throughput.rigger ?? Number.NaN,
      throughput.upstream ?? Number.NaN,
    ]);
    for (const rate of rates) {
      const p50: Record<string, number[]> = { rigger: [], upstream: [] };
      const p99: Record<string, number[]> = { rigger: [], upstream: [] };
      for (let round = 0; round < ROUNDS; round++) {
        for (const t of targets) {
          const r = await fixedRate(t, scenario.once, rate, RATE_SECONDS);
          p50[t.name]?.push(r.p50);
          p99[t.name]?.push(r.p99);
          console.error(
            `bench: ${scenario.name}: ${t.name} @${rate} req/s round ${round + 1}: p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms (achieved ${r.achieved.toFixed(0)} req/s)`,
          );
        }
      }
      rows.push([`${scenario.name}: p50 latency at ${rate} req/s (ms)`, median(p50.rigger ?? []), median(p50.upstream ?? [])]);
      rows.push([`${scenario.name}: p99 latency at ${rate} req/s (ms)`, median(p99.rigger ?? []), median(p99.upstream ?? [])]);
    }
  }
  console.log(
    `\n${title}, HTTPS on 127.0.0.1: ${CONCURRENCY} connections for ${SATURATION_SECONDS}s at saturation; latency is the median of ${ROUNDS} rounds of ${RATE_SECONDS}s per rate, measured from each request's scheduled start`,
  );
  console.log("| metric | rigger | upstream istiod | rigger ÷ upstream |");
  console.log("|---|---|---|---|");
  const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(2));
  for (const [metric, ours, theirs] of rows)
    console.log(`| ${metric} | ${fmt(ours)} | ${fmt(theirs)} | ${(ours / theirs).toFixed(3)} |`);
}

/** The local cluster for a benchmark (started unless running) and a raw client for it. */
export async function benchCluster(): Promise<{ started: boolean; client: RawClient }> {
  buildBinaries();
  const cluster = await up((line) => console.error(`bench: ${line}`));
  const kc = new KubeConfig();
  kc.loadFromFile(KUBECONFIG);
  return { started: cluster.started, client: rawClient(kc) };
}
