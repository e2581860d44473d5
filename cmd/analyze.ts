// `rigger analyze`: finds configuration that is valid but does nothing or conflicts (a subset no
// DestinationRule defines, a Gateway selecting no pod, two VirtualServices claiming one host),
// over files, a cluster, or both, as istioctl analyze does. The checks are analysis/analyze.ts,
// shared with istiod's status controller.
import { parseArgs } from "node:util";
import { stringify } from "yaml";
import { type AnalysisMessage, type AnalysisResource, analyze, formatMessage } from "../analysis/analyze.ts";
import { readCluster } from "../analysis/cluster.ts";
import { defaultIngressResources } from "../analysis/defaults.ts";
import { documentationUrl, LEVEL_ORDER, type Level } from "../analysis/messages.ts";
import { readFiles } from "../analysis/read.ts";
import { rawClient } from "../kube/raw-client.ts";
import { kindKey } from "../xds/generate/from-objects.ts";
import { kubeConfig } from "./table.ts";

export const usage = `usage: rigger analyze [-f FILE|DIR|-]... [--kubeconfig FILE] [-n NAMESPACE | -A]
                     [-o log|yaml|json] [--failure-threshold Error|Warning|Info]
                     [--output-threshold Error|Warning|Info] [--istio-namespace NS]

Finds Istio configuration that is valid but will not work as meant, with istioctl analyze's
message codes (IST0101 ReferencedResourceNotFound, ...). Without --kubeconfig only the files
are analyzed (with a default istio-ingressgateway, as istioctl analyze --use-kube=false);
with it, the cluster's objects are read and the files are analyzed as if applied over them.

Messages about objects of the namespace (-n, default "default"; -A every namespace) are
printed. Exit status: 0 clean, 79 when a message is at or above --failure-threshold (default
Error; log output only, as istioctl), 65 when some file could not be parsed, 2 when the
cluster could not be read.
`;

const RUNTIME_KINDS = ["Service.core", "Pod.core", "Namespace.core", "Secret.core"];
const EXIT_FOUND_ISSUES = 79;
const EXIT_DATA_ERROR = 65;
const EXIT_CLUSTER = 2;

function level(value: string | undefined, flag: string, fallback: Level): Level {
  if (value === undefined) return fallback;
  const match = (["Error", "Warning", "Info"] as Level[]).find((l) => l.toLowerCase() === value.toLowerCase());
  if (!match) throw new Error(`--${flag} ${value}: must be one of Error, Warning, Info`);
  return match;
}

/** What istioctl's JSON and YAML outputs hold for one message. */
function structured(m: AnalysisMessage) {
  return {
    code: m.code,
    documentationUrl: `${documentationUrl(m.code)}?ref=istioctl-analyze`,
    level: m.level,
    message: m.message,
    origin: m.origin,
    ...(m.reference ? { reference: m.reference } : {}),
  };
}

export async function runAnalyze(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      filename: { type: "string", short: "f", multiple: true },
      kubeconfig: { type: "string" },
      namespace: { type: "string", short: "n" },
      "all-namespaces": { type: "boolean", short: "A" },
      output: { type: "string", short: "o" },
      "failure-threshold": { type: "string" },
      "output-threshold": { type: "string" },
      "istio-namespace": { type: "string", short: "i" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(usage);
    return 0;
  }
  const output = (values.output ?? "log").toLowerCase();
  if (!["log", "yaml", "json"].includes(output)) throw new Error(`-o ${values.output}: must be log, yaml or json`);
  const failureThreshold = level(values["failure-threshold"], "failure-threshold", "Error");
  const outputThreshold = level(values["output-threshold"], "output-threshold", "Info");
  const files = [...(values.filename ?? []), ...positionals];
  const namespace = values["all-namespaces"] ? undefined : (values.namespace ?? "default");
  const istioNamespace = values["istio-namespace"] ?? "istio-system";
  if (files.length === 0 && !values.kubeconfig)
    throw new Error(`nothing to analyze: give files (-f) and/or a cluster (--kubeconfig)\n\n${usage}`);

  const read = readFiles(files, namespace ?? "default");
  for (const e of read.errors) process.stderr.write(`${e}\n`);
  let resources: AnalysisResource[] = read.resources;
  let target = files.join(", ");
  if (values.kubeconfig) {
    let cluster: Awaited<ReturnType<typeof readCluster>>;
    try {
      cluster = await readCluster(rawClient(kubeConfig(values.kubeconfig)));
    } catch (err) {
      process.stderr.write(`rigger analyze: cannot read the cluster: ${err instanceof Error ? err.message : String(err)}\n`);
      return EXIT_CLUSTER;
    }
    for (const note of cluster.notes) process.stderr.write(`note: ${note}\n`);
    // The files as if applied: a file's object replaces the cluster's of the same kind, namespace and name.
    const key = (r: AnalysisResource) => `${kindKey(r.object)}/${r.object.metadata?.namespace ?? ""}/${r.object.metadata?.name}`;
    const fromFiles = new Set(read.resources.map(key));
    resources = [...cluster.resources.filter((r) => !fromFiles.has(key(r))), ...read.resources];
    target = namespace ? `namespace: ${namespace}` : "all namespaces";
  } else resources = [...resources, ...defaultIngressResources(istioNamespace)];
  if (read.skipped.size > 0) {
    const kinds = [...read.skipped].map(([k, n]) => `${k} ${n}`).join(", ");
    process.stderr.write(
      `skipped ${[...read.skipped.values()].reduce((a, b) => a + b, 0)} object(s) of kinds no check reads (${kinds})\n`,
    );
  }

  // From files alone, a check needing Services, Pods, Namespaces or Secrets runs only when the
  // files hold some (istioctl never reads those kinds from files and skips such checks).
  const runtimeKinds = values.kubeconfig
    ? undefined
    : new Set(read.resources.map((r) => kindKey(r.object)).filter((k) => RUNTIME_KINDS.includes(k)));
  const all = analyze(resources, { namespace, controlPlaneNamespace: istioNamespace, runtimeKinds });
  const shown = all.filter((m) => LEVEL_ORDER[m.level] <= LEVEL_ORDER[outputThreshold]);
  if (output === "json") process.stdout.write(`${JSON.stringify(shown.map(structured), null, 2)}\n`);
  else if (output === "yaml") process.stdout.write(stringify(shown.map(structured)));
  else if (shown.length > 0) process.stdout.write(`${shown.map(formatMessage).join("\n")}\n`);
  else if (read.errors.length === 0) process.stderr.write(`\u2714 No validation issues found when analyzing ${target}.\n`);
  else
    process.stderr.write(
      `No validation issues found when analyzing ${target} (but ${read.errors.length} document(s) could not be parsed).\n`,
    );

  if (output !== "log") return 0;
  if (all.some((m) => LEVEL_ORDER[m.level] <= LEVEL_ORDER[failureThreshold])) {
    process.stderr.write(`Analyzers found issues when analyzing ${target}.\n`);
    return EXIT_FOUND_ISSUES;
  }
  return read.errors.length > 0 ? EXIT_DATA_ERROR : 0;
}
