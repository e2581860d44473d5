// `rigger operator`: reconciles Istio and IstioRevision resources into running control planes.
import { join } from "node:path";
import { parseArgs } from "node:util";
import { KubeConfig } from "@kubernetes/client-node";
import { startOperator } from "../controllers/operator.ts";
import packageJson from "../package.json" with { type: "json" };

export const usage = `usage: rigger operator [flags]

Reconciles Istio and IstioRevision resources into control planes. Leader-elected: run
two for availability; one reconciles.
  --kubeconfig FILE        cluster credentials (default: the pod's service account)
  --namespace NS           where the leader Lease lives (default $POD_NAMESPACE or rigger-system)
  --local                  run each revision's istiod as a local child process on 127.0.0.1
                           and point its webhooks at it by URL (needs --kubeconfig)
  --log-dir DIR            where --local writes each istiod's log (default .cache/operator)
  --image IMAGE            image of the istiod Deployments (default rigger:${packageJson.version})
  --health-addr HOST:PORT  HTTPS /healthz, /readyz, /metrics (default 127.0.0.1:8443; port 0 picks one)
  --identity ID            leader-election identity (default <host>-<pid>)
  --lease-duration SEC     leader lease duration (default 15)
  --lease-name NAME        the leader Lease (default rigger-operator)
  --log-level LEVEL        trace, debug, info, warn, error (default info)
`;

export async function runOperator(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      kubeconfig: { type: "string" },
      namespace: { type: "string" },
      local: { type: "boolean", default: false },
      "log-dir": { type: "string", default: join(process.cwd(), ".cache/operator") },
      image: { type: "string", default: `rigger:${packageJson.version}` },
      "health-addr": { type: "string", default: "127.0.0.1:8443" },
      identity: { type: "string" },
      "lease-duration": { type: "string", default: "15" },
      "lease-name": { type: "string", default: "rigger-operator" },
      "log-level": { type: "string", default: "info" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(usage);
    return 0;
  }
  if (values.local && !values.kubeconfig)
    throw new Error(`--local needs --kubeconfig (the local istiod processes use it)\n\n${usage}`);
  const match = /^(.*):(\d+)$/.exec(values["health-addr"]);
  if (!match) throw new Error(`--health-addr ${values["health-addr"]} is not HOST:PORT`);
  const leaseDuration = Number(values["lease-duration"]);
  if (!Number.isInteger(leaseDuration) || leaseDuration < 2)
    throw new Error(`--lease-duration ${values["lease-duration"]} must be a whole number of seconds, at least 2`);
  const kc = new KubeConfig();
  if (values.kubeconfig) kc.loadFromFile(values.kubeconfig);
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster()) throw new Error("no cluster: pass --kubeconfig or run in a pod");

  const operator = await startOperator({
    kc,
    namespace: values.namespace || process.env.POD_NAMESPACE || "rigger-system",
    image: values.image,
    local: values.local && values.kubeconfig ? { kubeconfigPath: values.kubeconfig, logDir: values["log-dir"] } : undefined,
    healthHost: match[1] ?? "127.0.0.1",
    healthPort: Number(match[2]),
    identity: values.identity,
    leaseDurationSeconds: leaseDuration,
    leaseName: values["lease-name"],
    logLevel: values["log-level"],
  });
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", () => resolve());
    process.once("SIGINT", () => resolve());
  });
  await operator.stop();
  return 0;
}
