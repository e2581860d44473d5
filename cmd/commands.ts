// The table of `rigger` subcommands. Each entry's run() gets the arguments after
// its name and returns the process exit code. A command's module is imported only
// when that command runs, so `rigger inject` does not load the operator's client.

import packageJson from "../package.json" with { type: "json" };
import { versions } from "../versions.ts";

export interface Command {
  name: string;
  summary: string;
  run(args: string[]): Promise<number>;
}

export const commands: Command[] = [
  {
    name: "analyze",
    summary: "find Istio config that is valid but will not work as meant (like istioctl analyze)",
    run: async (args) => (await import("./analyze.ts")).runAnalyze(args),
  },
  {
    name: "inject",
    summary: "inject the Istio sidecar into manifests offline (like istioctl kube-inject)",
    run: async (args) => (await import("./inject.ts")).runInject(args),
  },
  {
    name: "istiod",
    summary: "run the control plane: the injection and validation webhooks over HTTPS",
    run: async (args) => (await import("./istiod.ts")).runIstiod(args),
  },
  {
    name: "operator",
    summary: "run the operator: Istio and IstioRevision resources become running control planes",
    run: async (args) => (await import("./operator.ts")).runOperator(args),
  },
  {
    name: "proxy-config",
    summary: "show the clusters, listeners, routes or endpoints istiod sends one proxy (like istioctl proxy-config)",
    run: async (args) => (await import("./proxy.ts")).runProxyCommand("proxy-config", args),
  },
  {
    name: "proxy-status",
    summary: "show every connected proxy and whether its xDS is in sync (like istioctl proxy-status)",
    run: async (args) => (await import("./proxy.ts")).runProxyCommand("proxy-status", args),
  },
  {
    name: "tag",
    summary: "list revision tags, their revisions and the namespaces using them",
    run: async (args) => (await import("./tag.ts")).runTag(args),
  },
  {
    name: "validate",
    summary: "validate Istio config files offline (like istioctl validate)",
    run: async (args) => (await import("./validate.ts")).runValidate(args),
  },
  {
    name: "version",
    summary: "print Rigger's version and the Istio release it is compatible with",
    run: async () => {
      process.stdout.write(`rigger ${packageJson.version} (istio ${versions.istio} compatible)\n`);
      return 0;
    },
  },
];
