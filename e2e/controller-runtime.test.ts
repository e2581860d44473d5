// The controller runtime against the real apiserver. Leader election: two candidates, one leader; when the leader
// stops, the other takes over; when a leader dies without releasing, the other waits for
// the lease to expire and then takes over.
import { KubeConfig } from "@kubernetes/client-node";
import { describe, expect, inject, test } from "vitest";
import { LeaderElector } from "../kube/leader-election.ts";
import { WorkQueue } from "../kube/queue.ts";
import { microTime, rawClient } from "../kube/raw-client.ts";
import { Watcher } from "../kube/watcher.ts";
import { uniqueName, waitFor } from "./support/kube.ts";

const kc = new KubeConfig();
kc.loadFromFile(inject("kubeconfig"));
const client = rawClient(kc);

function candidate(name: string, identity: string, events: string[]) {
  return new LeaderElector({
    client,
    namespace: "default",
    name,
    identity,
    leaseDurationSeconds: 2,
    renewDeadlineMs: 1500,
    retryPeriodMs: 200,
    onStartedLeading: () => events.push(`${identity} leads`),
    onStoppedLeading: () => events.push(`${identity} stops`),
  });
}

test("MicroTime has six fractional digits", () => {
  expect(microTime(new Date("2026-01-02T03:04:05.678Z"))).toBe("2026-01-02T03:04:05.678000Z");
});

test("one of two candidates leads; when it stops, the other takes over", async () => {
  const lease = uniqueName("rigger-le");
  const events: string[] = [];
  const a = candidate(lease, "a", events);
  const b = candidate(lease, "b", events);
  a.start();
  await waitFor("a to lead", async () => (a.isLeader ? true : undefined), { timeoutMs: 10_000 });
  b.start();
  await new Promise((r) => setTimeout(r, 800)); // several of b's attempts while a renews
  expect(b.isLeader).toBe(false);
  await a.stop();
  await waitFor("b to take over", async () => (b.isLeader ? true : undefined), { timeoutMs: 10_000 });
  expect(a.isLeader).toBe(false);
  await b.stop();
  expect(events).toEqual(["a leads", "a stops", "b leads", "b stops"]);
  await client.delete(`/apis/coordination.k8s.io/v1/namespaces/default/leases/${lease}`);
});

test("a leader that vanishes without releasing is replaced once the lease expires", async () => {
  const lease = uniqueName("rigger-le");
  const events: string[] = [];
  const now = new Date();
  // A lease held by a process that is gone: renewed now, never again.
  await client.create("/apis/coordination.k8s.io/v1/namespaces/default/leases", {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: { name: lease, namespace: "default" },
    spec: {
      holderIdentity: "ghost",
      leaseDurationSeconds: 2,
      acquireTime: microTime(now),
      renewTime: microTime(now),
      leaseTransitions: 0,
    },
  });
  const b = candidate(lease, "b", events);
  b.start();
  await new Promise((r) => setTimeout(r, 600));
  expect(b.isLeader).toBe(false); // the ghost's lease has not expired yet
  await waitFor("b to take over the expired lease", async () => (b.isLeader ? true : undefined), { timeoutMs: 10_000 });
  const stored = await client.get<{ spec: { holderIdentity: string; leaseTransitions: number } }>(
    `/apis/coordination.k8s.io/v1/namespaces/default/leases/${lease}`,
  );
  expect(stored.spec).toMatchObject({ holderIdentity: "b", leaseTransitions: 1 });
  await b.stop();
  await client.delete(`/apis/coordination.k8s.io/v1/namespaces/default/leases/${lease}`);
});

test("the raw client applies server-side as its field manager and reports API errors by status", async () => {
  const name = uniqueName("rigger-ssa");
  const path = `/api/v1/namespaces/default/configmaps/${name}`;
  const configMap = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name, namespace: "default" },
    data: { mesh: "trustDomain: cluster.local\n" },
  };
  const applied = await client.apply<{
    data: Record<string, string>;
    metadata: { managedFields: { manager: string; operation: string }[] };
  }>(path, configMap, "rigger-operator");
  expect(applied.data).toEqual({ mesh: "trustDomain: cluster.local\n" });
  expect(applied.metadata.managedFields.map((f) => [f.manager, f.operation])).toEqual([["rigger-operator", "Apply"]]);
  // Applying the same object again changes nothing.
  const again = await client.apply<{ metadata: { resourceVersion: string } }>(path, configMap, "rigger-operator");
  const read = await client.get<{ metadata: { resourceVersion: string } }>(path);
  expect(again.metadata.resourceVersion).toBe(read.metadata.resourceVersion);
  await client.delete(path);
  const missing = await client.get(path).catch((err: { status?: number; reason?: string }) => err);
  expect(missing).toMatchObject({ status: 404, reason: "NotFound" });
});

describe("Watcher", () => {
  test("hands over keys from the list and from watches that the server keeps closing, and resyncs", async () => {
    const namespace = uniqueName("rigger-watch");
    await client.create("/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } });
    const cm = (name: string, value: string) => ({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name, namespace, labels: { app: "watched" } },
      data: { value },
    });
    const base = `/api/v1/namespaces/${namespace}/configmaps`;
    await client.create(base, cm("before", "1"));
    const keys: string[] = [];
    const queue = new WorkQueue();
    const watcher = new Watcher({
      kc,
      path: base,
      labelSelector: "app=watched",
      watchTimeoutSeconds: 1, // the server ends every watch after a second: resumption is exercised
      resyncIntervalMs: 1500,
      onKey: (key) => {
        keys.push(key);
        queue.add(key);
      },
    });
    try {
      await watcher.start();
      expect(keys).toEqual([`${namespace}/before`]);
      await client.create(base, cm("during", "1"));
      await new Promise((r) => setTimeout(r, 1200)); // across a watch restart
      await client.replace(`${base}/before`, { ...(await client.get<object>(`${base}/before`)), data: { value: "2" } });
      await new Promise((r) => setTimeout(r, 1200));
      await client.delete(`${base}/during`);
      await waitFor(
        "the delete to be seen",
        async () => (keys.filter((k) => k === `${namespace}/during`).length >= 2 ? true : undefined),
        {
          timeoutMs: 10_000,
        },
      );
      expect(keys.filter((k) => k === `${namespace}/before`).length).toBeGreaterThanOrEqual(2); // list + update
      await waitFor("a resync relist", async () => (watcher.lists >= 2 ? true : undefined), { timeoutMs: 10_000 });
      // However many events arrived, the queue holds each key at most once.
      expect(queue.depth).toBeLessThanOrEqual(2);
    } finally {
      watcher.stop();
      queue.shutdown();
      await client.delete(`/api/v1/namespaces/${namespace}`);
    }
  });
});

/**
 * A TCP proxy on 127.0.0.1 in front of the apiserver that can go silent: freeze() stops
 * forwarding on every open connection (both ends stay open, nothing is closed or reset);
 * connections made afterwards are forwarded again.
 */
async function freezableProxy(target: URL) {
  const { createServer, connect } = await import("node:net");
  const open: { client: import("node:net").Socket; upstream: import("node:net").Socket }[] = [];
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
    open.push({ client, upstream });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as import("node:net").AddressInfo).port;
  return {
    port,
    connections: () => open.length,
    freeze() {
      for (const { client, upstream } of open.splice(0)) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
        // Held open, silent, until the test ends.
        frozen.push(client, upstream);
      }
    },
    close() {
      for (const s of [...frozen, ...open.flatMap((c) => [c.client, c.upstream])]) s.destroy();
      server.close();
    },
  };
}
const frozen: import("node:net").Socket[] = [];

test("a watch whose connection goes silent is noticed and re-established within 60 s", async () => {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error("no cluster");
  const proxy = await freezableProxy(new URL(cluster.server));
  const viaProxy = new KubeConfig();
  viaProxy.loadFromString(kc.exportConfig());
  viaProxy.clusters = viaProxy.clusters.map((c) => ({ ...c, server: `https://127.0.0.1:${proxy.port}` }));
  const namespace = uniqueName("silent");
  await client.create("/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } });
  const base = `/api/v1/namespaces/${namespace}/configmaps`;
  const seen = new Map<string, number>();
  const errors: string[] = [];
  // Production settings: the watch's own timeout (40-50 s) decides when silence means a dead connection.
  const watcher = new Watcher({
    kc: viaProxy,
    path: base,
    onKey: (key) => seen.set(key, Date.now()),
    onError: (err) => errors.push(err.message),
  });
  try {
    await watcher.start();
    await new Promise((r) => setTimeout(r, 500));
    proxy.freeze();
    const frozenAt = Date.now();
    await client.create(base, { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "after-freeze", namespace } });
    const at = await waitFor(
      "the watcher to see the ConfigMap created after the freeze",
      async () => seen.get(`${namespace}/after-freeze`),
      {
        timeoutMs: 90_000,
      },
    );
    expect(at - frozenAt).toBeLessThan(60_000);
    expect(errors.join("\n")).toMatch(/nothing received for \d+ s/);
  } finally {
    watcher.stop();
    proxy.close();
    await client.delete(`/api/v1/namespaces/${namespace}`);
  }
}, 120_000);

test("the shared cache: one stream per collection and selector, reads answered from its store", async () => {
  const { SharedCache, cachedReads } = await import("../kube/cache.ts");
  const namespace = uniqueName("cache");
  await client.create("/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } });
  const base = `/api/v1/namespaces/${namespace}/configmaps`;
  await client.create(base, { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a", namespace }, data: { v: "1" } });
  const cache = new SharedCache(kc);
  const seen: string[] = [];
  const first = cache.informer({ path: "/api/v1/configmaps" });
  first.subscribe((key) => seen.push(key));
  const second = cache.informer({ path: "/api/v1/configmaps" });
  const selected = cache.informer({ path: "/api/v1/configmaps", labelSelector: "app=x" });
  let requests = 0;
  const counting = {
    ...client,
    get: <T>(path: string, accept?: string) => {
      requests++;
      return client.get<T>(path, accept);
    },
  };
  const reads = cachedReads(counting, cache);
  try {
    expect(second).toBe(first);
    await cache.start();
    expect(cache.streams).toBe(2); // the unselected and the selected one
    expect(seen).toContain(`${namespace}/a`);
    const got = await reads.get<{ data: { v: string } }>(`${base}/a`);
    expect(got.data.v).toBe("1");
    got.data.v = "changed"; // a copy: the store is not changed through it
    expect((await reads.get<{ data: { v: string } }>(`${base}/a`)).data.v).toBe("1");
    await expect(reads.get(`${base}/missing`)).rejects.toMatchObject({ status: 404 });
    expect(requests).toBe(0);
    // Not a single object (a list with a selector): to the apiserver.
    await reads.get(`${base}?labelSelector=app%3Dx`);
    expect(requests).toBe(1);
    // A write shows up in the store once its watch event arrives.
    await client.replace(`${base}/a`, { ...(await client.get<object>(`${base}/a`)), data: { v: "2" } });
    await waitFor("the cache to see the update", async () =>
      (await reads.get<{ data: { v: string } }>(`${base}/a`)).data.v === "2" ? true : undefined,
    );
    expect(selected.size).toBe(0);
  } finally {
    cache.stop();
    await client.delete(`/api/v1/namespaces/${namespace}`);
  }
});
