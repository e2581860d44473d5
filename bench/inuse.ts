// `make bench-inuse`: what 10,000 pods cost the operator. InUse is computed from a
// metadata-only watch of unfinished pods, keeping one short string per pod. This starts the
// local cluster (if needed), the operator in --local mode with one Istio, reads the operator's
// memory, creates 10,000 pods that refer to the revision (never scheduled, no webhook on their
// namespace), waits until the revision's InUse counts them all, and reads the memory again.
// Prints a table; asserts nothing; deletes what it created.

import { down, KUBECONFIG, kubectl, ROOT } from "../e2e/cluster/local-cluster.ts";
import { startOperatorProcess } from "../e2e/support/operator.ts";
import { benchCluster } from "./load.ts";

const PODS = Number(process.env.BENCH_PODS ?? 10_000);
const RUN = Math.random().toString(16).slice(2, 8);

async function main() {
  const { started, client } = await benchCluster();
  kubectl(["apply", "-f", `${ROOT}/manifests/install.yaml`]);
  kubectl(["wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"]);
  const istio = `bench-${RUN}`;
  const podsNs = `rigger-bench-pods-${RUN}`;
  const operator = await startOperatorProcess(`bench-${RUN}`, `rigger-bench-${RUN}`, 15, KUBECONFIG);
  try {
    kubectl(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "operator.rigger.dev/v1alpha1",
        kind: "Istio",
        metadata: { name: istio },
        spec: { namespace: `rigger-bench-cp-${RUN}` },
      }),
    );
    kubectl(["wait", "--for=condition=Ready", "--timeout=120s", `istio/${istio}`]);
    await new Promise((r) => setTimeout(r, 5000));
    const mib = async () => (await operator.metric("process_resident_memory_bytes")) / 2 ** 20;
    const heap = async () => (await operator.metric("nodejs_heap_size_used_bytes")) / 2 ** 20;
    const before = { rss: await mib(), heap: await heap() };
    kubectl(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: podsNs } }));
    const t0 = Date.now();
    let next = 0;
    const create = async () => {
      while (next < PODS) {
        const i = next++;
        await client.create(`/api/v1/namespaces/${podsNs}/pods`, {
          apiVersion: "v1",
          kind: "Pod",
          metadata: {
            name: `p-${i}`,
            labels: { app: "bench", "pod-template-hash": "5d8f7c9b6" },
            annotations: { "istio.io/rev": istio, "sidecar.istio.io/status": '{"containers":["istio-proxy"]}' },
          },
          // A scheduler that does not exist: the pods stay Pending, costing the scheduler and KWOK nothing.
          spec: { schedulerName: "none", containers: [{ name: "app", image: "example/app:1" }] },
        });
      }
    };
    await Promise.all(Array.from({ length: 16 }, create));
    const created = (Date.now() - t0) / 1000;
    console.error(`bench: ${PODS} pods created in ${created.toFixed(0)} s`);
    const counted = await (async () => {
      const deadline = Date.now() + 300_000;
      while (Date.now() < deadline) {
        const rev = await client.get<{ status?: { conditions?: { type: string; message: string }[] } }>(
          `/apis/operator.rigger.dev/v1alpha1/istiorevisions/${istio}`,
        );
        const message = rev.status?.conditions?.find((c) => c.type === "InUse")?.message ?? "";
        if (message.includes(`${PODS} pod(s)`)) return message;
        await new Promise((r) => setTimeout(r, 1000));
      }
      throw new Error("the revision's InUse never counted every pod");
    })();
    await new Promise((r) => setTimeout(r, 10_000));
    const after = { rss: await mib(), heap: await heap() };
    console.log(`\nOperator memory with ${PODS} pods referring to a revision (metadata-only pod watch), one Istio, --local mode`);
    console.log("| | RSS (MiB) | JS heap used (MiB) |");
    console.log("|---|---|---|");
    console.log(`| before the pods | ${before.rss.toFixed(0)} | ${before.heap.toFixed(0)} |`);
    console.log(`| with ${PODS} pods | ${after.rss.toFixed(0)} | ${after.heap.toFixed(0)} |`);
    console.log(`| difference | ${(after.rss - before.rss).toFixed(0)} | ${(after.heap - before.heap).toFixed(0)} |`);
    console.log(`\nInUse: ${counted.slice(0, 120)}…`);
  } finally {
    kubectl(["delete", "istio", istio, "--ignore-not-found", "--wait=false"]);
    kubectl(["delete", "namespace", podsNs, "--ignore-not-found", "--wait=false"]);
    await operator.stop();
    if (started) await down(() => {});
  }
}

await main();
