// `rigger inject -f FILE`: offline sidecar injection of manifests, like istioctl kube-inject.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { parseAllDocuments, stringify } from "yaml";
import { InjectionError, type InjectionSettings } from "../webhooks/inject/inject.ts";
import { defaultSettings, settingsFromCluster, settingsFromFiles } from "../webhooks/inject/settings.ts";
import { injectWorkload } from "../webhooks/inject/workloads.ts";

export const usage = `usage: rigger inject -f FILE|- [flags]

Injects the Istio sidecar into every Pod and workload template in FILE (multi-document
YAML) and prints the result. Settings come from, in order of preference:
  --injection-config DIR   a directory with the files 'config' and 'values' (ConfigMap istio-sidecar-injector)
  --kubeconfig FILE        the cluster's istio-sidecar-injector and istio ConfigMaps
  (neither)                built-in defaults of the pinned Istio release
flags:
  --mesh-config FILE       mesh config (ConfigMap istio, key mesh) to use with --injection-config
  --namespace NS           control plane namespace for --kubeconfig (default istio-system)
  --revision REV           control plane revision (default: the default revision)
  --native-sidecars        inject istio-proxy as a native sidecar (restartable init container)
`;

export async function runInject(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      filename: { type: "string", short: "f" },
      "injection-config": { type: "string" },
      "mesh-config": { type: "string" },
      kubeconfig: { type: "string" },
      namespace: { type: "string", default: "istio-system" },
      revision: { type: "string" },
      "native-sidecars": { type: "boolean", default: false },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(usage);
    return 0;
  }
  if (!values.filename) throw new Error(`-f FILE is required\n\n${usage}`);
  const options = { revision: values.revision, nativeSidecars: values["native-sidecars"] };
  let settings: InjectionSettings;
  if (values["injection-config"]) settings = settingsFromFiles(values["injection-config"], values["mesh-config"], options);
  else if (values.kubeconfig) {
    const { KubeConfig } = await import("@kubernetes/client-node");
    const kc = new KubeConfig();
    kc.loadFromFile(values.kubeconfig);
    settings = await settingsFromCluster(kc, values.namespace, options);
  } else settings = defaultSettings(options);

  const text = readFileSync(values.filename === "-" ? 0 : values.filename, "utf8");
  const docs = parseAllDocuments(text);
  const out: string[] = [];
  for (const [i, doc] of docs.entries()) {
    if (doc.errors.length > 0)
      throw new Error(`document ${i + 1} of ${values.filename} is not valid YAML: ${doc.errors[0]?.message}`);
    const object = doc.toJS();
    if (object === null || object === undefined) continue;
    try {
      const result = injectWorkload(object, settings);
      for (const warning of result.warnings) process.stderr.write(`${warning}\n`);
      out.push(stringify(result.object));
    } catch (err) {
      if (err instanceof InjectionError) throw new Error(`${describe(object, i)}: ${err.message}`);
      throw err;
    }
  }
  process.stdout.write(out.join("---\n"));
  return 0;
}

function describe(object: { kind?: string; metadata?: { name?: string } }, index: number): string {
  return `document ${index + 1} (${object.kind ?? "unknown kind"} ${object.metadata?.name ?? "unnamed"})`;
}
