// The table of `rigger` subcommands. Each entry's run() gets the arguments after
// its name and returns the process exit code.

import packageJson from "../package.json" with { type: "json" };
import { versions } from "../versions.ts";
import { runInject } from "./inject.ts";
import { runIstiod } from "./istiod.ts";
import { runOperator } from "./operator.ts";
import { runTag } from "./tag.ts";
import { runValidate } from "./validate.ts";

export interface Command {
  name: string;
  summary: string;
  run(args: string[]): Promise<number>;
}

export const commands: Command[] = [
  { name: "inject", summary: "inject the Istio sidecar into manifests offline (like istioctl kube-inject)", run: runInject },
  { name: "istiod", summary: "run the control plane: the injection and validation webhooks over HTTPS", run: runIstiod },
  {
    name: "operator",
    summary: "run the operator: Istio and IstioRevision resources become running control planes",
    run: runOperator,
  },
  { name: "tag", summary: "list revision tags, their revisions and the namespaces using them", run: runTag },
  { name: "validate", summary: "validate Istio config files offline (like istioctl validate)", run: runValidate },
  {
    name: "version",
    summary: "print Rigger's version and the Istio release it is compatible with",
    run: async () => {
      process.stdout.write(`rigger ${packageJson.version} (istio ${versions.istio} compatible)\n`);
      return 0;
    },
  },
];
