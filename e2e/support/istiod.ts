// Runs `rigger istiod` as a child process on 127.0.0.1 with its own serving certificate,
// for e2e tests that point webhook configurations at it by URL.
import { type ChildProcess, spawn } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loopbackServingCertificate } from "../../pki/certificates.ts";
import { freePort, httpsStatus, stopChild, waitUntilServing } from "./child.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
const settings = join(root, "webhooks/inject/testdata/settings");

export interface RunningIstiod {
  /** https://127.0.0.1:<port> */
  baseUrl: string;
  caBundle: string;
  caPem: string;
  port: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** Starts `rigger istiod --revision <revision>` with the pinned release's injection settings. */
export async function startRiggerIstiod(revision: string): Promise<RunningIstiod> {
  const dir = mkdtempSync(join(tmpdir(), `rigger-istiod-${revision || "default"}-`));
  const inject = join(dir, "inject");
  mkdirSync(inject);
  copyFileSync(join(settings, "inject-config.yaml"), join(inject, "config"));
  // The revision is part of the values, as the chart renders it per revision.
  const values = JSON.parse(readFileSync(join(settings, "values.json"), "utf8"));
  values.revision = revision;
  writeFileSync(join(inject, "values"), JSON.stringify(values));
  const serving = await loopbackServingCertificate("rigger-istiod");
  writeFileSync(join(dir, "tls.crt"), serving.certPem);
  writeFileSync(join(dir, "tls.key"), serving.keyPem, { mode: 0o600 });
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      join(root, "cmd/rigger.ts"),
      "istiod",
      "--host=127.0.0.1",
      `--port=${port}`,
      `--tls-cert=${join(dir, "tls.crt")}`,
      `--tls-key=${join(dir, "tls.key")}`,
      `--injection-config=${inject}`,
      `--mesh-config=${join(settings, "mesh.yaml")}`,
      `--revision=${revision}`,
      "--log-level=error",
    ],
    { stdio: ["ignore", "inherit", "inherit"] },
  );
  const baseUrl = `https://127.0.0.1:${port}`;
  await waitUntilServing(
    "rigger istiod",
    child,
    async () => (await httpsStatus(`${baseUrl}/ready`, serving.caPem)) === 200,
    15_000,
  );
  return {
    baseUrl,
    caPem: serving.caPem,
    caBundle: Buffer.from(serving.caPem).toString("base64"),
    port,
    process: child,
    stop: () => stopChild(child),
  };
}
