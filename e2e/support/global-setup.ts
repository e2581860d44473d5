// Gives the e2e suite a cluster: the one KUBECONFIG points at, else the local one,
// started here (and stopped afterwards) unless `make cluster-up` already runs it.
import { existsSync } from "node:fs";
import type { TestProject } from "vitest/node";
import { stopDemoOperator } from "../cluster/demo.ts";
import { buildBinaries, down, kubectl, up } from "../cluster/local-cluster.ts";

declare module "vitest" {
  export interface ProvidedContext {
    kubeconfig: string;
    localCluster: boolean;
  }
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const external = process.env.KUBECONFIG;
  if (external) {
    if (!existsSync(external)) throw new Error(`KUBECONFIG=${external} does not exist`);
    console.log(`e2e: using the cluster in KUBECONFIG=${external}`);
    project.provide("kubeconfig", external);
    project.provide("localCluster", false);
    return undefined;
  }
  buildBinaries();
  const { kubeconfig, started } = await up((line) => console.log(`e2e: ${line}`));
  if (!started) await removeDemo();
  project.provide("kubeconfig", kubeconfig);
  project.provide("localCluster", true);
  // Quiet teardown: the summary reporter's closing line stays the run's last line.
  return started ? () => down(() => {}) : undefined;
}

/**
 * A running `make demo` would reconcile the tests' Istio resources and inject their pods:
 * stop its operator and delete its Istio resources (garbage collection removes the rest).
 */
async function removeDemo(): Promise<void> {
  const stopped = await stopDemoOperator();
  // The in-pod demo: the operator's Deployment (from manifests/install.yaml) on the real node.
  if (kubectl(["-n", "rigger-system", "get", "deployment", "-o", "name", "--ignore-not-found"]).includes("rigger-operator")) {
    kubectl(["-n", "rigger-system", "delete", "deployment", "rigger-operator", "--wait=true", "--timeout=60s"]);
    stopped.push("the rigger-operator Deployment");
  }
  if (stopped.length === 0) return;
  console.log(`e2e: stopped the demo (${stopped.join(", ")}) and deleted its Istio resources; run make demo again afterwards`);
  kubectl(["delete", "istiogateways.operator.rigger.dev", "--all", "-A", "--ignore-not-found", "--wait=false"]);
  kubectl(["delete", "namespace", "istio-ingress", "--ignore-not-found", "--wait=false"]);
  kubectl(["delete", "istios.operator.rigger.dev", "--all", "--ignore-not-found", "--wait=true", "--timeout=60s"]);
  kubectl(["delete", "namespace", "demo", "--ignore-not-found", "--wait=false"]);
  // Its webhooks point at the stopped istiod: wait until garbage collection has removed them.
  for (const kind of ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"])
    kubectl(["wait", "--for=delete", kind, "-l", "app.kubernetes.io/managed-by=rigger", "--timeout=60s"]);
}
