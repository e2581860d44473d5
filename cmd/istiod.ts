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
import type { KeyAlgorithm } from "../pki/certificates.ts";
import { defaultSettings, settingsFromFiles } from "../webhooks/inject/settings.ts";
import { startAdmissionServer } from "../webhooks/server.ts";

export const usage = `usage: rigger istiod [flags]

Serves POST /inject (sidecar injection) and /validate (config validation), /ready and
/metrics over HTTPS.

Against a cluster (default): the kubeconfig from --kubeconfig, else the pod's service account.
  --namespace NS           the control plane's namespace (default $POD_NAMESPACE or istio-system)
  --extra-san NAME         another DNS name or IP for the serving certificate (repeatable)
  --exit-with-parent       exit when the parent process goes away (local control planes)
  --parent-pid N           with --exit-with-parent: the parent's PID, checked from the first moment
  --grpc-port N            the mesh CA's and xDS's gRPC port, TLS (default 15012)
  --plaintext-xds-port N   also serve xDS in plaintext, unauthenticated, on N (upstream's 15010);
                           off by default: anyone reaching it reads any proxy's config
  --ca-key-type TYPE       key of a self-signed root created here: ecdsa-p256 (default), rsa-2048, rsa-4096
  --workload-cert-ttl D    default workload certificate lifetime (default 24h; units s, m, h, d)
  --max-workload-cert-ttl D  longest lifetime a caller may ask for (default 90d)
  --root-check-interval D  how often a self-signed root's remaining life is checked (default 1h; 0 never)
  --root-grace-percentile N  re-sign the root when less than N% of its life is left (default 20)
  --serving-cert-ttl D     lifetime of its own serving certificate (default 30d)
  --serving-cert-renew-fraction F  renew it after this fraction of its lifetime (default 0.5)
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
      "parent-pid": { type: "string" },
      "grpc-port": { type: "string", default: "15012" },
      "plaintext-xds-port": { type: "string" },
      "ca-key-type": { type: "string", default: "ecdsa-p256" },
      "workload-cert-ttl": { type: "string", default: "24h" },
      "max-workload-cert-ttl": { type: "string", default: "90d" },
      "root-check-interval": { type: "string", default: "1h" },
      "root-grace-percentile": { type: "string", default: "20" },
      "serving-cert-ttl": { type: "string", default: "30d" },
      "serving-cert-renew-fraction": { type: "string", default: "0.5" },
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
  const port = portNumber("--port", values.port);
  const grpcPort = portNumber("--grpc-port", values["grpc-port"]);
  const plaintextXdsPort =
    values["plaintext-xds-port"] === undefined ? undefined : portNumber("--plaintext-xds-port", values["plaintext-xds-port"]);
  const keyTypes: Record<string, KeyAlgorithm> = { "ecdsa-p256": "ECDSA-P256", "rsa-2048": "RSA-2048", "rsa-4096": "RSA-4096" };
  const caKeyAlgorithm = keyTypes[values["ca-key-type"]];
  if (!caKeyAlgorithm)
    throw new Error(`--ca-key-type ${values["ca-key-type"]} is not one of ${Object.keys(keyTypes).join(", ")}`);
  const renewFraction = Number(values["serving-cert-renew-fraction"]);
  if (!(renewFraction > 0 && renewFraction < 1))
    throw new Error(`--serving-cert-renew-fraction ${values["serving-cert-renew-fraction"]} must be between 0 and 1`);
  const grace = Number(values["root-grace-percentile"]);
  if (!(grace > 0 && grace < 100))
    throw new Error(`--root-grace-percentile ${values["root-grace-percentile"]} must be between 0 and 100`);
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
      // The parent's PID as it told us: if it died before this code ran, process.ppid is already 1.
      const parent = values["parent-pid"] ? Number(values["parent-pid"]) : process.ppid;
      const check = () => process.ppid !== parent && done();
      check();
      setInterval(check, 500).unref();
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
      grpcPort,
      plaintextXdsPort,
      caKeyAlgorithm,
      workloadCertTtlSeconds: seconds("--workload-cert-ttl", values["workload-cert-ttl"]),
      maxWorkloadCertTtlSeconds: seconds("--max-workload-cert-ttl", values["max-workload-cert-ttl"]),
      rootCheckIntervalMs: seconds("--root-check-interval", values["root-check-interval"]) * 1000,
      rootGracePeriodPercentile: grace,
      servingCertValidDays: seconds("--serving-cert-ttl", values["serving-cert-ttl"]) / 86400,
      servingCertRenewFraction: renewFraction,
    });
    const controlPlane = await Promise.race([starting, stop.then(() => undefined)]);
    if (!controlPlane || stopRequested) process.exit(0);
    close = controlPlane.close;
  }

  await stop;
  await close();
  return 0;
}

function portNumber(flag: string, value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`${flag} ${value} is not a port number`);
  return port;
}

/** "90s", "15m", "24h", "90d" (or a bare number of seconds) in seconds. */
export function seconds(flag: string, value: string): number {
  const match = /^(\d+)([smhd]?)$/.exec(value.trim());
  if (!match) throw new Error(`${flag} ${value} is not a duration like 90s, 15m, 24h or 90d`);
  const unit = { "": 1, s: 1, m: 60, h: 3600, d: 86400 }[match[2] as "" | "s" | "m" | "h" | "d"];
  return Number(match[1]) * unit;
}
