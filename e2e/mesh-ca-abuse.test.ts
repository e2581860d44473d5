// The mesh CA under abuse: 5,000 garbage-token certificate requests per second for 10 s
// (from a separate process, e2e/support/ca-flood.ts) against `rigger istiod` on the real
// cluster, while a real workload renews its certificate twice a second with its
// ServiceAccount token. Observed: every renewal succeeds within its 5 s deadline, the
// server's memory stops growing (it levels off within seconds, whatever the volume), and the
// garbage is refused (UNAUTHENTICATED; RESOURCE_EXHAUSTED once the TokenReview queue is full;
// a reset stream past 256 concurrent streams a connection), never queued without bound.
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import { rawClient } from "../kube/raw-client.ts";
import { caClient, csrPem, serviceAccountToken } from "./support/ca-client.ts";
import { type ClusterIstiod, startClusterIstiod } from "./support/cluster-istiod.ts";
import { kubeClients, uniqueName, waitFor } from "./support/kube.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const namespace = uniqueName("rigger-ca-abuse");
const appNs = uniqueName("rigger-ca-abuse-app");
const { kc, core } = kubeClients();
const client = rawClient(kc);
let istiod: ClusterIstiod | undefined;

const rssMiB = (pid: number) => {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmRSS:\s+(\d+) kB/m);
  return Number(line?.[1] ?? 0) / 1024;
};

beforeAll(async () => {
  for (const name of [namespace, appNs]) await core.createNamespace({ body: { metadata: { name } } });
  await core.createNamespacedServiceAccount({ namespace: appNs, body: { metadata: { name: "web" } } });
  istiod = await startClusterIstiod(inject("kubeconfig"), namespace);
});

afterAll(async () => {
  await istiod?.stop();
  for (const name of [namespace, appNs]) await core.deleteNamespace({ name }).catch(() => undefined);
});

test("5,000 garbage requests a second for 10 s: a real workload still renews within its deadline, memory stays bounded", async () => {
  const server = istiod as ClusterIstiod;
  const pid = server.process.pid as number;
  const rootPem = await waitFor("istio-ca-root-cert", async () => {
    const cm = await core.readNamespacedConfigMap({ name: "istio-ca-root-cert", namespace: appNs }).catch(() => undefined);
    return cm?.data?.["root-cert.pem"];
  });
  const rootFile = join(server.dir, "root.pem");
  writeFileSync(rootFile, rootPem);
  const address = `127.0.0.1:${server.grpcPort}`;
  const serverName = `istiod.${namespace}.svc`;
  const workload = caClient(address, rootPem, serverName);
  const token = await serviceAccountToken(client, appNs, "web");
  const csr = await csrPem();
  // Warm: the first renewal reviews the token (and fills the cache a proxy renewing would hit).
  expect(await workload.createCertificate(csr, token, 3600, 5_000)).toHaveLength(2);
  const rssBefore = rssMiB(pid);

  const flood = spawn(process.execPath, [join(root, "e2e/support/ca-flood.ts"), address, rootFile, "5000", "10", serverName], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let floodOut = "";
  flood.stdout.on("data", (chunk) => {
    floodOut += chunk;
  });
  const floodDone = new Promise<void>((resolve) => flood.on("exit", () => resolve()));

  const renewals: { ms: number; ok: boolean; error?: string }[] = [];
  const rss: number[] = [];
  const started = Date.now();
  while (Date.now() - started < 10_000) {
    const t0 = Date.now();
    const outcome = await workload.createCertificate(csr, token, 3600, 5_000).then(
      (chain) => ({ ok: chain.length === 2 }),
      (err: Error) => ({ ok: false, error: err.message }),
    );
    renewals.push({ ms: Date.now() - t0, ...outcome });
    rss.push(rssMiB(pid));
    await new Promise((r) => setTimeout(r, Math.max(0, 500 - (Date.now() - t0))));
  }
  await floodDone;
  workload.close();
  const report = JSON.parse(floodOut.trim().split("\n").at(-1) ?? "{}") as {
    sent: number;
    rate: number;
    codes: Record<string, number>;
  };
  const slowest = Math.max(...renewals.map((r) => r.ms));
  const rssPeak = Math.max(...rss);
  const third = Math.floor((rss.length * 2) / 3);
  const [early, late] = [Math.max(...rss.slice(0, third)), Math.max(...rss.slice(third))];
  console.log(
    `ca abuse: flood ${report.sent} requests at ${report.rate}/s, answers ${JSON.stringify(report.codes)}; ` +
      `${renewals.length} renewals, slowest ${slowest} ms; istiod RSS ${rssBefore.toFixed(0)} MiB before, ` +
      `${early.toFixed(0)} MiB at most in the first 2/3, ${late.toFixed(0)} MiB at most in the last 1/3`,
  );

  expect(report.rate, "the flood reached its rate").toBeGreaterThanOrEqual(4_500);
  expect(renewals.filter((r) => !r.ok)).toEqual([]);
  // Served throughout the 10 s flood: at least one renewal a second (each waits for the last).
  expect(renewals.length).toBeGreaterThanOrEqual(10);
  expect(slowest).toBeLessThan(5_000);
  // Garbage gets refusals, never certificates.
  expect(report.codes.OK ?? 0).toBe(0);
  // Of the calls the flood saw through (its own client shares the 2 cores, so at 5,000/s it does
  // not hear back about every call within its wait), at least 80% were refused outright
  // (UNAUTHENTICATED, RESOURCE_EXHAUSTED, or the stream reset past max_concurrent_streams) rather
  // than left to time out; and it heard back about most of them. A CA that queued garbage would
  // time out nearly all of it; measured on fresh-clone runs: 92.5% and 92.2%, and 87.5% with
  // another process compiling beside it.
  const answered = Object.values(report.codes).reduce((n, c) => n + c, 0);
  const refused = (report.codes.UNAUTHENTICATED ?? 0) + (report.codes.RESOURCE_EXHAUSTED ?? 0) + (report.codes.RESET ?? 0);
  expect(answered).toBeGreaterThan(report.sent * 0.5);
  expect(refused).toBeGreaterThan(answered * 0.8);
  // Bounded: the queues, the streams per connection and the review cache have fixed sizes, so
  // memory levels off (measured: +230 MiB in the first seconds, then flat; 100,000 requests in
  // 20 s end where 25,000 did) instead of growing with the flood.
  expect(late).toBeLessThan(early * 1.15);
  expect(rssPeak).toBeLessThan(700);
}, 90_000);
