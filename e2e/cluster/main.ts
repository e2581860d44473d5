// `node e2e/cluster/main.ts up|down|status`: what `make cluster-up`, `cluster-down` and `cluster-status` run.
import { ClusterError, down, KUBECONFIG, kubectl, status, up } from "./local-cluster.ts";

async function main(command: string | undefined): Promise<number> {
  switch (command) {
    case "up":
      await up();
      console.log(`try: kubectl --kubeconfig ${KUBECONFIG} get nodes`);
      return 0;
    case "down":
      await down();
      return 0;
    case "status": {
      const s = await status();
      if (s.components.length === 0) {
        console.log("no local cluster is running (start one with: make cluster-up)");
        return 1;
      }
      for (const c of s.components) {
        console.log(
          `${c.name.padEnd(24)} pid ${String(c.pid).padEnd(8)} ${c.running ? "running" : "NOT RUNNING"}  log: ${c.log}`,
        );
      }
      console.log(`kube-apiserver /readyz: ${s.apiserverReady ? "ok" : "not ready"}`);
      if (s.apiserverReady) console.log(kubectl(["get", "nodes", "-o", "wide"]).trimEnd());
      console.log(`kubeconfig: ${s.kubeconfig}`);
      return s.apiserverReady && s.components.every((c) => c.running) ? 0 : 1;
    }
    default:
      console.error("usage: node e2e/cluster/main.ts up|down|status");
      return 2;
  }
}

try {
  process.exitCode = await main(process.argv[2]);
} catch (err) {
  console.error(err instanceof ClusterError ? `cluster: ${err.message}` : err);
  process.exitCode = 1;
}
