// Runs upstream istiod (pilot-discovery, the pinned release built by build.sh) out of
// cluster against the test cluster, serving its injection webhook on 127.0.0.1. Its
// injection config is the pinned release's own (istioctl manifest generate), read from
// ./var/lib/istio/inject in its working directory, as istiod does.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, openSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { KubeConfig } from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import { ApiError, rawClient } from "../../kube/raw-client.ts";
import { loopbackServingCertificate } from "../../pki/certificates.ts";
import { versions } from "../../versions.ts";
import { freePort, httpsStatus, stopChild, waitUntilServing } from "./child.ts";
import { type RunningIstiod, startRiggerIstiod } from "./istiod.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
const bin = join(root, ".cache/bin", `istio-${versions.istio}`);

export interface UpstreamIstiod {
  baseUrl: string;
  /** The secure gRPC address (xDS and the CA, 15012 in a pod), 127.0.0.1:<port>. */
  grpcAddress: string;
  /** The plaintext xDS address (15010 in a pod), 127.0.0.1:<port>. */
  plaintextAddress: string;
  caPem: string;
  log: string;
  process: ChildProcess;
  /** The pinned release's injection settings, as upstream reads them. */
  files: { config: string; values: string; mesh: string };
  stop(): Promise<void>;
}

/** The pinned release's istio-sidecar-injector `config`/`values` and istio `mesh`. */
export function upstreamInjectionFiles(revision: string): { config: string; values: string; mesh: string } {
  const manifest = execFileSync(
    join(bin, "istioctl"),
    ["manifest", "generate", "--set", "profile=default", "--set", "hub=docker.io/istio", "--set", `tag=${versions.istio}`],
    { encoding: "utf8", maxBuffer: 64 << 20 },
  );
  const files = { config: "", values: "", mesh: "" };
  for (const doc of parseAllDocuments(manifest)) {
    const o = doc.toJS() as { kind?: string; metadata?: { name?: string }; data?: Record<string, string> } | null;
    if (o?.kind !== "ConfigMap" || !o.data) continue;
    if (o.metadata?.name === "istio") files.mesh = o.data.mesh ?? "";
    if (o.metadata?.name === "istio-sidecar-injector") {
      files.config = o.data.config ?? "";
      files.values = JSON.stringify({ ...JSON.parse(o.data.values ?? "{}"), revision });
    }
  }
  return files;
}

export interface UpstreamOptions {
  /** A plugged-in CA: files written to ./etc/cacerts (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem). */
  cacerts?: Record<string, string>;
}

export async function startUpstreamIstiod(
  kubeconfig: string,
  namespace: string,
  revision: string,
  options: UpstreamOptions = {},
): Promise<UpstreamIstiod> {
  const dir = mkdtempSync(join(tmpdir(), "upstream-istiod-"));
  if (options.cacerts) {
    mkdirSync(join(dir, "etc/cacerts"), { recursive: true });
    for (const [file, content] of Object.entries(options.cacerts))
      writeFileSync(join(dir, "etc/cacerts", file), content, { mode: 0o600 });
  }
  const files = upstreamInjectionFiles(revision);
  mkdirSync(join(dir, "var/lib/istio/inject"), { recursive: true });
  writeFileSync(join(dir, "var/lib/istio/inject/config"), files.config);
  writeFileSync(join(dir, "var/lib/istio/inject/values"), files.values);
  writeFileSync(join(dir, "mesh"), files.mesh);
  const serving = await loopbackServingCertificate("upstream-istiod");
  writeFileSync(join(dir, "tls.crt"), serving.certPem);
  writeFileSync(join(dir, "tls.key"), serving.keyPem, { mode: 0o600 });
  writeFileSync(join(dir, "ca.crt"), serving.caPem);
  const [https, http, grpc, secureGrpc, monitoring, ctrlz] = await Promise.all([1, 2, 3, 4, 5, 6].map(() => freePort()));
  const log = join(dir, "pilot-discovery.log");
  const out = openSync(log, "a");
  const child = spawn(
    join(bin, "pilot-discovery"),
    [
      "discovery",
      `--kubeconfig=${kubeconfig}`,
      `--meshConfig=${join(dir, "mesh")}`,
      `--httpsAddr=127.0.0.1:${https}`,
      `--httpAddr=127.0.0.1:${http}`,
      `--grpcAddr=127.0.0.1:${grpc}`,
      `--secureGRPCAddr=127.0.0.1:${secureGrpc}`,
      `--monitoringAddr=127.0.0.1:${monitoring}`,
      "--ctrlz_address=127.0.0.1",
      `--ctrlz_port=${ctrlz}`,
      `--tlsCertFile=${join(dir, "tls.crt")}`,
      `--tlsKeyFile=${join(dir, "tls.key")}`,
      `--caCertFile=${join(dir, "ca.crt")}`,
      "--profile=false",
    ],
    {
      cwd: dir,
      stdio: ["ignore", out, out],
      env: {
        ...process.env,
        POD_NAMESPACE: namespace,
        REVISION: revision,
        ENABLE_NATIVE_SIDECARS: "false",
        ISTIOD_CUSTOM_HOST: "127.0.0.1",
        // Names no webhook configuration has, so its caBundle patcher leaves the test's alone.
        INJECTION_WEBHOOK_CONFIG_NAME: "rigger-parity-none",
        VALIDATION_WEBHOOK_CONFIG_NAME: "rigger-parity-none",
      },
    },
  );
  const baseUrl = `https://127.0.0.1:${https}`;
  // Any HTTP answer to /inject means the webhook server is up.
  const answers = async () => (await httpsStatus(`${baseUrl}/inject`, serving.caPem, "POST", "{}")) !== undefined;
  await waitUntilServing("pilot-discovery", child, answers, 60_000, `; log: ${log}`);
  return {
    baseUrl,
    grpcAddress: `127.0.0.1:${secureGrpc}`,
    plaintextAddress: `127.0.0.1:${grpc}`,
    caPem: serving.caPem,
    log,
    process: child,
    files,
    stop: () => stopChild(child),
  };
}

/** Rigger's and upstream's istiod side by side for the same revision, upstream's in `namespace` (created if missing). */
export async function startIstiodPair(
  kubeconfig: string,
  namespace: string,
  revision: string,
): Promise<{ rigger: RunningIstiod; upstream: UpstreamIstiod; stop(): Promise<void> }> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  await rawClient(kc)
    .create("/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } })
    .catch((err: unknown) => {
      if (!(err instanceof ApiError && err.status === 409)) throw err;
    });
  const [rigger, upstream] = await Promise.all([
    startRiggerIstiod(revision),
    startUpstreamIstiod(kubeconfig, namespace, revision),
  ]);
  return { rigger, upstream, stop: async () => void (await Promise.all([rigger.stop(), upstream.stop()])) };
}
