// `rigger istiod`: the control plane process of one revision. For now it serves the
// sidecar injection webhook; validation and the CA join it in later features.
import { parseArgs } from "node:util";
import { defaultSettings, settingsFromFiles } from "../webhooks/inject/settings.ts";
import { startAdmissionServer } from "../webhooks/server.ts";

export const usage = `usage: rigger istiod --tls-cert FILE --tls-key FILE [flags]

Serves POST /inject (the sidecar injection webhook), /ready and /metrics over HTTPS.
flags:
  --host ADDR              listen address (default 0.0.0.0)
  --port N                 listen port (default 15017, as istiod)
  --injection-config DIR   directory with 'config' and 'values' (default /var/lib/istio/inject when present)
  --mesh-config FILE       mesh config file (default /etc/istio/config/mesh when present)
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
  if (!values["tls-cert"] || !values["tls-key"]) throw new Error(`--tls-cert and --tls-key are required\n\n${usage}`);
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port ${values.port} is not a port number`);
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
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
  await server.close();
  return 0;
}
