// `make bench-ca`: the mesh CA under load, rigger and upstream istiod in the same run.
//   1. CreateCertificate over gRPC/TLS on 127.0.0.1 with 50 concurrent clients, each with its
//      own channel and ServiceAccount token, for an ECDSA P-256 and an RSA 2048 CA plugged into
//      both (cacerts); every request is authenticated by TokenReview, as in production.
//   2. A serving-certificate rotation of rigger istiod during 500 req/s of injection load
//      (keep-alive connections, every 10th request on a new one): failed requests counted.
// Prints tables; asserts nothing. Bounded in time; stops only what it started.
import { Agent, request } from "node:https";
import { down, KUBECONFIG, kubectl } from "../e2e/cluster/local-cluster.ts";
import { type CaClient, caClient, csrPem, serviceAccountToken } from "../e2e/support/ca-client.ts";
import { startClusterIstiod } from "../e2e/support/cluster-istiod.ts";
import { startUpstreamIstiod } from "../e2e/support/upstream-istiod.ts";
import { createCertificateAuthority, type KeyAlgorithm, signIntermediate } from "../pki/certificates.ts";
import { benchCluster, median } from "./load.ts";

const CLIENTS = 50;
/** Namespaces are per run: a previous run's may still be terminating. */
const RUN = Math.random().toString(16).slice(2, 8);

/** kubectl apply of a Namespace or ServiceAccount, so a rerun after an interrupted one works. */
function ensure(kind: "Namespace" | "ServiceAccount", name: string, namespace?: string): void {
  kubectl(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind, metadata: { name, namespace } }));
}
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** During the rotation run, every FRESH_EVERY-th injection request opens a new TLS connection. */
const FRESH_EVERY = Number(process.env.BENCH_FRESH_EVERY ?? 10);

interface Result {
  rate: number;
  p50: number;
  p99: number;
  errors: number;
}

/** 50 clients in closed loop for `seconds`: certificates per second and latency percentiles. */
async function load(clients: CaClient[], tokens: string[], csrs: string[], seconds: number): Promise<Result> {
  const latencies: number[] = [];
  let errors = 0;
  const end = Date.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    clients.map(async (client, i) => {
      let n = i;
      while (Date.now() < end) {
        const start = performance.now();
        try {
          await client.createCertificate(csrs[n++ % csrs.length] ?? "", tokens[i] ?? "", 3600);
          latencies.push(performance.now() - start);
        } catch {
          errors++;
        }
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN;
  return { rate: latencies.length / elapsed, p50: at(0.5), p99: at(0.99), errors };
}

async function benchAlgorithm(algorithm: KeyAlgorithm, tokens: string[], csrs: string[]) {
  const tag = algorithm.toLowerCase();
  const root = await createCertificateAuthority(`Bench Root ${algorithm}`, 30, algorithm);
  const signer = await signIntermediate(root, `Bench Intermediate ${algorithm}`, 20);
  const files = {
    "ca-cert.pem": signer.certPem,
    "ca-key.pem": signer.keyPem,
    "root-cert.pem": root.certPem,
    "cert-chain.pem": signer.certPem,
  };
  const riggerNs = `rigger-bench-ca-${tag}-${RUN}`;
  const upstreamNs = `upstream-bench-ca-${tag}-${RUN}`;
  for (const ns of [riggerNs, upstreamNs]) ensure("Namespace", ns);
  kubectl(
    ["apply", "-f", "-"],
    JSON.stringify({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "cacerts", namespace: riggerNs },
      data: Object.fromEntries(Object.entries(files).map(([k, v]) => [k, Buffer.from(v).toString("base64")])),
    }),
  );
  const rigger = await startClusterIstiod(KUBECONFIG, riggerNs);
  const upstream = await startUpstreamIstiod(KUBECONFIG, upstreamNs, "", { cacerts: files });
  const targets = [
    { name: "rigger", open: () => caClient(`127.0.0.1:${rigger.grpcPort}`, root.certPem, `istiod.${riggerNs}.svc`) },
    { name: "upstream", open: () => caClient(upstream.grpcAddress, upstream.caPem, "localhost") },
  ];
  const results: Record<string, Result[]> = { rigger: [], upstream: [] };
  try {
    for (const t of targets) {
      const clients = Array.from({ length: CLIENTS }, t.open);
      const first = await clients[0]?.createCertificate(csrs[0] ?? "", tokens[0] ?? "", 3600);
      if (!first || first.length < 2) throw new Error(`${t.name}: no certificate chain`);
      await load(clients, tokens, csrs, 2); // warm-up: JIT, channels, TLS sessions
      for (const c of clients) c.close();
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const t of targets) {
        const clients = Array.from({ length: CLIENTS }, t.open);
        const r = await load(clients, tokens, csrs, SECONDS);
        for (const c of clients) c.close();
        results[t.name]?.push(r);
        console.error(
          `bench: ${algorithm} ${t.name} round ${round + 1}: ${r.rate.toFixed(0)} certs/s, p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, errors ${r.errors}`,
        );
      }
    }
  } finally {
    await rigger.stop();
    await upstream.stop();
    for (const ns of [riggerNs, upstreamNs]) kubectl(["delete", "namespace", ns, "--wait=false"]);
  }
  const pick = (name: string, f: (r: Result) => number) => median((results[name] ?? []).map(f));
  return [
    [`${algorithm}: certificates/s (50 clients)`, pick("rigger", (r) => r.rate), pick("upstream", (r) => r.rate)],
    [`${algorithm}: p50 latency (ms)`, pick("rigger", (r) => r.p50), pick("upstream", (r) => r.p50)],
    [`${algorithm}: p99 latency (ms)`, pick("rigger", (r) => r.p99), pick("upstream", (r) => r.p99)],
    [`${algorithm}: failed requests`, pick("rigger", (r) => r.errors), pick("upstream", (r) => r.errors)],
  ] as [string, number, number][];
}

/** Injection at 500 req/s, a new TLS handshake per request, while the serving certificate is re-issued. */
async function rotationUnderLoad(): Promise<string> {
  const namespace = `rigger-bench-rotation-${RUN}`;
  ensure("Namespace", namespace);
  const rootA = await createCertificateAuthority("Rotation Root A", 30);
  const rootB = await createCertificateAuthority("Rotation Root B", 30);
  const secret = (roots: string[], signer: typeof rootA) => ({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "cacerts", namespace },
    data: Object.fromEntries(
      Object.entries({ "ca-cert.pem": signer.certPem, "ca-key.pem": signer.keyPem, "root-cert.pem": roots.join("\n") }).map(
        ([k, v]) => [k, Buffer.from(v).toString("base64")],
      ),
    ),
  });
  kubectl(["apply", "-f", "-"], JSON.stringify(secret([rootA.certPem, rootB.certPem], rootA)));
  const istiod = await startClusterIstiod(KUBECONFIG, namespace);
  // The client trusts both roots, as workloads do during a root change.
  const agent = new Agent({ keepAlive: true, maxSockets: 32, ca: [rootA.certPem, rootB.certPem] });
  // Every FRESH_EVERY-th request opens a new connection, so handshakes happen before and after the swap.
  const fresh = new Agent({ keepAlive: false, ca: [rootA.certPem, rootB.certPem], maxCachedSessions: 0 });
  const pod = JSON.stringify({
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: "bench",
      kind: { group: "", version: "v1", kind: "Pod" },
      resource: { group: "", version: "v1", resource: "pods" },
      namespace: "shop",
      operation: "CREATE",
      object: {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "p", namespace: "shop" },
        spec: { containers: [{ name: "app", image: "app:1" }] },
      },
    },
  });
  let handshakes = 0;
  const once = (i: number) =>
    new Promise<void>((resolve, reject) => {
      if (i % FRESH_EVERY === 0) handshakes++;
      const req = request(
        `https://127.0.0.1:${istiod.port}/inject`,
        {
          method: "POST",
          agent: i % FRESH_EVERY === 0 ? fresh : agent,
          servername: `istiod.${namespace}.svc`,
          headers: { "content-type": "application/json" },
        },
        (res) => {
          res.resume();
          res.on("end", () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
        },
      );
      req.on("error", reject);
      req.end(pod);
    });
  const rate = 500;
  const seconds = 10;
  let ok = 0;
  let failed = 0;
  const inFlight: Promise<void>[] = [];
  const start = performance.now();
  let rotatedAt = 0;
  const reasons = new Map<string, number>();
  const failedAt: number[] = [];
  for (let i = 0; i < rate * seconds; i++) {
    const scheduled = start + (i * 1000) / rate;
    const wait = scheduled - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    if (!rotatedAt && performance.now() - start > (seconds * 1000) / 2) {
      rotatedAt = performance.now() - start;
      // Sign with B from now on: the control plane re-issues its serving certificate and swaps it in.
      kubectl(["apply", "-f", "-"], JSON.stringify(secret([rootA.certPem, rootB.certPem], rootB)));
    }
    inFlight.push(
      once(i).then(
        () => void ok++,
        (err: Error) => {
          failed++;
          reasons.set(err.message, (reasons.get(err.message) ?? 0) + 1);
          failedAt.push((performance.now() - start) / 1000);
        },
      ),
    );
  }
  await Promise.all(inFlight);
  const elapsed = (performance.now() - start) / 1000;
  const swapped = (await import("node:fs")).readFileSync(istiod.logFile, "utf8").includes("serving certificate re-issued");
  await istiod.stop();
  kubectl(["delete", "namespace", namespace, "--wait=false"]);
  if (reasons.size > 0)
    console.error(
      `bench: failures: ${JSON.stringify(Object.fromEntries(reasons))}, between ${Math.min(...failedAt).toFixed(1)} s and ${Math.max(...failedAt).toFixed(1)} s`,
    );
  return `Serving-certificate rotation under injection load: ${ok + failed} requests at ${((ok + failed) / elapsed).toFixed(0)} req/s (keep-alive connections, ${handshakes} requests on new TLS connections), rotation at ${(rotatedAt / 1000).toFixed(1)} s (certificate swapped: ${swapped ? "yes" : "NO"}): ${failed} failed.`;
}

async function main() {
  const { started, client } = await benchCluster();
  const clientNs = `rigger-bench-ca-clients-${RUN}`;
  ensure("Namespace", clientNs);
  try {
    const tokens: string[] = [];
    for (let i = 0; i < CLIENTS; i++) {
      ensure("ServiceAccount", `client-${i}`, clientNs);
      tokens.push(await serviceAccountToken(client, clientNs, `client-${i}`));
    }
    const csrs = await Promise.all(Array.from({ length: 100 }, (_, i) => csrPem(`spiffe://cluster.local/ns/x/sa/${i}`)));
    const rows = [...(await benchAlgorithm("ECDSA-P256", tokens, csrs)), ...(await benchAlgorithm("RSA-2048", tokens, csrs))];
    const rotation = await rotationUnderLoad();
    console.log(
      `\nMesh CA, gRPC over TLS on 127.0.0.1: ${CLIENTS} clients (own channel and token each) in closed loop, ${SECONDS}s, median of ${ROUNDS} rounds; TokenReview per request`,
    );
    console.log("| metric | rigger | upstream istiod | rigger ÷ upstream |");
    console.log("|---|---|---|---|");
    const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(1));
    for (const [metric, ours, theirs] of rows)
      console.log(`| ${metric} | ${fmt(ours)} | ${fmt(theirs)} | ${theirs ? (ours / theirs).toFixed(2) : "–"} |`);
    console.log(`\n${rotation}`);
  } finally {
    kubectl(["delete", "namespace", clientNs, "--wait=false"]);
    if (started) await down(() => {});
  }
}

await main();
