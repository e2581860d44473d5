// Runs `rigger istiod` as a child process on 127.0.0.1 with its own serving certificate,
// for e2e tests that point webhook configurations at it by URL.
import { type ChildProcess, spawn } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createCertificateAuthority, issueCertificate } from "../../pki/certificates.ts";

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

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
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
  const ca = await createCertificateAuthority("rigger-e2e-istiod-ca", 1);
  const serving = await issueCertificate(ca, {
    commonName: "istiod",
    ipAddresses: ["127.0.0.1"],
    usages: ["server"],
    validDays: 1,
  });
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
      "--log-level=warn",
    ],
    { stdio: ["ignore", "inherit", "inherit"] },
  );
  const baseUrl = `https://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  while (!(await ready(baseUrl, ca.certPem))) {
    if (child.exitCode !== null) throw new Error(`rigger istiod exited with ${child.exitCode} before it was ready`);
    if (Date.now() > deadline) throw new Error("rigger istiod was not ready within 15s");
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    baseUrl,
    caPem: ca.certPem,
    caBundle: Buffer.from(ca.certPem).toString("base64"),
    port,
    process: child,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

function ready(baseUrl: string, ca: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(`${baseUrl}/ready`, { ca, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}
