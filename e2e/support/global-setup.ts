// Gives the e2e suite a cluster: the one KUBECONFIG points at, else the local one,
// started here (and stopped afterwards) unless `make cluster-up` already runs it.
import { existsSync } from "node:fs";
import type { TestProject } from "vitest/node";
import { buildBinaries, down, up } from "../cluster/local-cluster.ts";

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
  project.provide("kubeconfig", kubeconfig);
  project.provide("localCluster", true);
  // Quiet teardown: the summary reporter's closing line stays the run's last line.
  return started ? () => down(() => {}) : undefined;
}
