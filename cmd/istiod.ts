// `rigger istiod`: the control plane process of one revision. Two ways to run it:
// - against a cluster (the default, in a pod or beside the operator in --local mode): its
//   own CA and serving certificate, settings from its ConfigMaps, caBundle and failurePolicy
//   kept on its webhook configurations (istiod/control-plane.ts);
// - with --tls-cert/--tls-key: a standalone admission server with files for certificate and
//   settings, nothing read from or written to a cluster (tests, benchmarks).
import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { KubeConfig } from "@kubernetes/client-node";
import { startControlPlane } from "../istiod/control-plane.ts";
import { defaultSettings, settingsFromFiles } from "../webhooks/inject/settings.ts";
import { startAdmissionServer } from "../webhooks/server.ts";

export const usage = `usage: rigger istiod [flags]

Serves POST /inject (sidecar injection) and /validate (config validation), /ready and
/metrics over HTTPS.

Against a cluster (default): the kubeconfig from --kubeconfig, else the pod's service account.
  --namespace NS           the control plane's namespace (default $POD_NAMESPACE or istio-system)
  --extra-san NAME         another DNS name or IP for the serving certificate (repeatable)
  --exit-with-parent       exit when the parent process goes away (local control planes)
Standalone: --tls-cert FILE --tls-key FILE (settings from files or built-in defaults).
Both:
  --host ADDR              listen address (default 0.0.0.0)
  --port N                 listen port (default 15017, as istiod)
  --injection-config DIR   directory with 'config' and 'values' instead of the ConfigMaps
  --mesh-config FILE       mesh config file
  --revision REV           this control plane's revision
  --native-sidecars        inject native sidecars unless a pod says otherwise
  --log-level LEVEL        trace, debug, info, warn, error (default info)
`;

export async function runIstiod(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      host: { type: "string", default: "0.0.0.0" },
      port: { type: "string", default: "15017" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      kubeconfig: { type: "string" },
      namespace: { type: "string" },
      "extra-san": { type: "string", multiple: true, default: [] },
      "exit-with-parent": { type: "boolean", default: false },
      "injection-config": { type: "string" },
      "mesh-config": { type: "string" },
      revision: { type: "string", default: "" },
      "native-sidecars": { type: "boolean", default: false },
      "log-level": { type: "string", default: "info" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(usage);
    return 0;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port ${values.port} is not a port number`);
  if (Boolean(values["tls-cert"]) !== Boolean(values["tls-key"]))
    throw new Error(`--tls-cert and --tls-key go together\n\n${usage}`);
  if (values["injection-config"] && !existsSync(values["injection-config"]))
    throw new Error(`--injection-config ${values["injection-config"]} does not exist`);

  // Watch for the end from the start: a local control plane whose operator dies while it is
  // still starting must exit too.
  let stopRequested = false;
  const stop = new Promise<void>((resolve) => {
    const done = () => {
      stopRequested = true;
      resolve();
    };
    process.once("SIGTERM", done);
    process.once("SIGINT", done);
    if (values["exit-with-parent"]) {
      const parent = process.ppid;
      setInterval(() => process.ppid !== parent && done(), 500).unref();
    }
  });
  void stop.then(() => {
    // Whatever still holds the event loop (keep-alive connections, a startup retry) gets 5 s.
    setTimeout(() => process.exit(0), 5000).unref();
  });

  let close: () => Promise<void>;
  if (values["tls-cert"] && values["tls-key"]) {
    const options = { revision: values.revision, nativeSidecars: values["native-sidecars"] };
    const settings = values["injection-config"]
      ? settingsFromFiles(values["injection-config"], values["mesh-config"], options)
      : defaultSettings(options);
    const server = await startAdmissionServer({
      host: values.host,
      port,
      tls: { certFile: values["tls-cert"], keyFile: values["tls-key"] },
      injection: () => settings,
      logLevel: values["log-level"],
    });
    close = server.close;
  } else {
    const kc = new KubeConfig();
    if (values.kubeconfig) kc.loadFromFile(values.kubeconfig);
    else kc.loadFromDefault();
    if (!kc.getCurrentCluster())
      throw new Error("no cluster: pass --kubeconfig, run in a pod, or use --tls-cert/--tls-key for a standalone server");
    const starting = startControlPlane({
      kc,
      namespace: values.namespace || process.env.POD_NAMESPACE || "istio-system",
      revision: values.revision,
      host: values.host,
      port,
      extraSans: values["extra-san"],
      nativeSidecars: values["native-sidecars"],
      logLevel: values["log-level"],
      injectionConfigDir: values["injection-config"],
      meshConfigFile: values["mesh-config"],
    });
    const controlPlane = await Promise.race([starting, stop.then(() => undefined)]);
    if (!controlPlane || stopRequested) process.exit(0);
    close = controlPlane.close;
  }

  await stop;
  await close();
  return 0;
}
