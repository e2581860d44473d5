// The controller runtime against the real apiserver. Leader election: two candidates, one leader; when the leader
// stops, the other takes over; when a leader dies without releasing, the other waits for
// the lease to expire and then takes over.
import { KubeConfig } from "@kubernetes/client-node";
import { describe, expect, inject, test } from "vitest";
import { LeaderElector } from "../controllers/runtime/leader-election.ts";
import { WorkQueue } from "../controllers/runtime/queue.ts";
import { microTime, rawClient } from "../controllers/runtime/raw-client.ts";
import { Watcher } from "../controllers/runtime/watcher.ts";
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
