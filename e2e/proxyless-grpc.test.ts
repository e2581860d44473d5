// Proxyless gRPC on the real node: pods injected with the grpc-agent template run pilot-agent
// without Envoy; the gRPC library in the app (Istio's echo, grpc-go) takes its listeners,
// routes, clusters and endpoints from Rigger's istiod through the agent. A client dials
// xds:///<service>:<port>; servers serve with xds.NewGRPCServer. Every test counts what the
// servers answered (their version), or which calls failed, never what was configured.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { droppedPackets } from "./cluster/network.ts";
import { reportMeasurements, waitFor } from "./support/kube.ts";
import {
  applyService,
  cleanUpMesh,
  containerPid,
  ECHO_CLIENT,
  echoDeployment,
  injectedNamespace,
  installMesh,
  isReady,
  kubectl,
  nodeScriptDeployment,
  untilSteady,
  waitForPods,
} from "./support/mesh-node.ts";

const NS = "grpc";
const HOST = `grpc-echo.${NS}.svc.cluster.local`;
const local = inject("localCluster");
const measured: Record<string, string> = {};
/** Asks for the grpc-agent template, and the app to start once the agent is up (as upstream documents). */
const GRPC_AGENT = {
  "inject.istio.io/templates": "grpc-agent",
  "proxy.istio.io/config": '{"holdApplicationUntilProxyStarts": true}',
};
/** The client's app container (its PID on the node) and its gRPC bootstrap, rewritten to be read from the node. */
let client = { pid: 0, bootstrap: "" };

interface Outcome {
  /** The answering servers' versions, one per successful call. */
  versions: string[];
  /**
   * Calls that failed (the echo client's "N/M requests had errors"), and its first error. The
   * client then prints no answers: `versions` is empty.
   */
  failed: number;
  error: string;
}

/**
 * `count` calls from the client pod to xds:///<target> with Istio's echo client (grpc-go), in
 * the client pod's network namespace, with the bootstrap the agent wrote there: the Unix socket
 * to the agent's xDS proxy and the certificate files are reached through /proc/<pid>/root.
 */
function grpcCalls(target: string, count: number, extra: string[] = []): Outcome {
  const run = spawnSync(
    "nsenter",
    ["-t", String(client.pid), "-n", ECHO_CLIENT, `xds:///${target}`, "--count", String(count), "--timeout", "5s", ...extra],
    { encoding: "utf8", timeout: 90_000, env: { ...process.env, GRPC_XDS_BOOTSTRAP: client.bootstrap } },
  );
  const versions = [...run.stdout.matchAll(/^\[\d+(?: body)?\] ServiceVersion=(.*)$/gm)].map((m) => m[1] ?? "");
  // Istio's log (stdout) carries the client's fatal error.
  const errors = /(\d+)\/(\d+) requests had errors; first error: (.*)/.exec(`${run.stdout}\n${run.stderr}`);
  if (run.status !== 0 && !errors)
    throw new Error(`echo client failed (${run.status}): ${`${run.stdout}\n${run.stderr}`.slice(-2000)}`);
  return { versions, failed: errors ? Number(errors[1]) : 0, error: errors?.[3] ?? "" };
}

function tally(list: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const k of list) counts[k] = (counts[k] ?? 0) + 1;
  return counts;
}

function apply(objects: object[]): void {
  kubectl(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }));
}

/**
 * Waits until calls (of 20, each time from a new client) come out as `expected` says three times
 * in a row (untilSteady), then 1 s more. Once is not enough: before the change reaches the
 * client, its round robin can send a quick burst of 20 calls all to the one server it connected
 * to first, which looks like a route to it. Caught that way (istiod's log of what it sent): a
 * header route "seen" 240 ms after apply, 40 ms before the push that carried it, and the next
 * 500 calls counted under the old, even split until that push reached them (338 of 500 to v1).
 */
async function until(what: string, target: string, expected: (o: Outcome) => boolean, extra: string[] = []): Promise<void> {
  let last: Outcome | undefined;
  const seconds = await untilSteady(what, () => {
    last = grpcCalls(target, 20, extra);
    return expected(last);
  }).catch((err: Error) => {
    throw new Error(`${err.message}; last: ${JSON.stringify(last)}`);
  });
  measured[`${what}: applied → observed`] = `${seconds.toFixed(1)} s`;
  await new Promise((resolve) => setTimeout(resolve, 1000));
}

const virtualService = (http: object[]) => ({
  apiVersion: "networking.istio.io/v1",
  kind: "VirtualService",
  metadata: { name: "grpc-echo", namespace: NS },
  spec: { hosts: ["grpc-echo"], http },
});

const destinationRule = (trafficPolicy?: object) => ({
  apiVersion: "networking.istio.io/v1",
  kind: "DestinationRule",
  metadata: { name: "grpc-echo", namespace: NS },
  spec: {
    host: "grpc-echo",
    ...(trafficPolicy ? { trafficPolicy } : {}),
    subsets: [
      { name: "v1", labels: { version: "v1" } },
      { name: "v2", labels: { version: "v2" } },
    ],
  },
});

describe.runIf(local)("proxyless gRPC on the real node", () => {
  beforeAll(async () => {
    cleanUpMesh([NS]);
    await installMesh();
    injectedNamespace(NS);
    for (const version of ["v1", "v2"]) {
      kubectl(
        ["apply", "-f", "-"],
        echoDeployment(
          `grpc-echo-${version}`,
          NS,
          ["--grpc=7070", "--xds-grpc-server=7070", "--port=8080", `--version=${version}`],
          GRPC_AGENT,
          { app: "grpc-echo", version },
        ),
      );
    }
    applyService("grpc-echo", NS, { app: "grpc-echo" }, [{ name: "grpc", port: 7070, targetPort: 7070 }]);
    // The client: the echo app too, for its process to hold the pod (calls come from the echo client).
    kubectl(["apply", "-f", "-"], echoDeployment("grpc-client", NS, ["--port=8080"], GRPC_AGENT));
    const [pod] = await waitForPods(NS, "app=grpc-client", 1, isReady, "the gRPC client pod Ready");
    await waitForPods(NS, "app=grpc-echo", 2, isReady, "two gRPC servers Ready");
    const id = pod?.status.containerStatuses?.find((c) => c.name === "grpc-client")?.containerID;
    const pid = containerPid(id);
    const root = `/proc/${pid}/root`;
    const written = await waitFor("the agent's gRPC bootstrap in the client pod", async () => {
      try {
        return readFileSync(`${root}/etc/istio/proxy/grpc-bootstrap.json`, "utf8");
      } catch {
        return undefined;
      }
    });
    const bootstrap = join(mkdtempSync(join(tmpdir(), "rigger-grpc-")), "bootstrap.json");
    writeFileSync(
      bootstrap,
      written
        .replaceAll("/etc/istio/proxy", `${root}/etc/istio/proxy`)
        .replaceAll("/var/lib/istio/data", `${root}/var/lib/istio/data`),
    );
    client = { pid, bootstrap };
  }, 600_000);

  afterAll(() => {
    reportMeasurements("proxyless gRPC", measured);
    // The operator left running would reconcile the next suites' Istio resources.
    cleanUpMesh([NS]);
  }, 200_000);

  test("the injected pods run pilot-agent without Envoy, which wrote the gRPC bootstrap asking for istiod's gRPC generator", () => {
    const spec = JSON.parse(kubectl(["-n", NS, "get", "pods", "-l", "app=grpc-client", "-o", "json"])).items[0].spec;
    expect(spec.initContainers ?? []).toEqual([]);
    const proxy = spec.containers.find((c: { name: string }) => c.name === "istio-proxy");
    const env = Object.fromEntries(proxy.env.map((e: { name: string; value?: string }) => [e.name, e.value]));
    expect(env).toMatchObject({ DISABLE_ENVOY: "true", ISTIO_META_GENERATOR: "grpc" });
    // No Envoy in the pod: nothing listens on Envoy's admin port.
    const admin = spawnSync(
      "nsenter",
      [
        "-t",
        String(client.pid),
        "-n",
        process.execPath,
        "-e",
        "fetch('http://127.0.0.1:15000/ready').then(() => process.exit(0))",
      ],
      { encoding: "utf8", timeout: 30_000 },
    );
    expect(admin.status).not.toBe(0);
    expect(admin.stderr).toContain("ECONNREFUSED");
    const bootstrap = JSON.parse(readFileSync(client.bootstrap, "utf8"));
    expect(bootstrap.node.metadata.GENERATOR).toBe("grpc");
    expect(bootstrap.xds_servers[0].server_uri).toContain("/etc/istio/proxy/XDS");
  });

  test("a call by xds:/// name reaches both servers, balanced by the gRPC library from Rigger's endpoints", async () => {
    // Each server serves once it has its own listener from istiod: until then the client's
    // gRPC library sends everything to the other.
    await until("calls answered by both servers", `${HOST}:7070`, (o) => o.failed === 0 && new Set(o.versions).size === 2);
    const versions = tally(grpcCalls(`${HOST}:7070`, 100).versions);
    measured["no routing rules, 100 calls: v1 / v2"] = `${versions.v1 ?? 0} / ${versions.v2 ?? 0}`;
    expect((versions.v1 ?? 0) + (versions.v2 ?? 0)).toBe(100);
    expect(versions.v1 ?? 0).toBeGreaterThan(20);
    expect(versions.v2 ?? 0).toBeGreaterThan(20);
    // The short name the client's namespace allows, as upstream resolves it.
    expect(grpcCalls("grpc-echo:7070", 10).versions).toHaveLength(10);
  });

  test("routing: a header match sends to v2, the rest splits 80/20 between the subsets", async () => {
    apply([
      destinationRule(),
      virtualService([
        { match: [{ headers: { "x-canary": { exact: "yes" } } }], route: [{ destination: { host: "grpc-echo", subset: "v2" } }] },
        {
          route: [
            { destination: { host: "grpc-echo", subset: "v1" }, weight: 80 },
            { destination: { host: "grpc-echo", subset: "v2" }, weight: 20 },
          ],
        },
      ]),
    ]);
    await until("the header route to v2", `${HOST}:7070`, (o) => tally(o.versions).v2 === 20, ["-H", "x-canary: yes"]);
    const calls = grpcCalls(`${HOST}:7070`, 500);
    const split = tally(calls.versions);
    measured["weights 80/20, 500 calls: v1 / v2"] =
      `${split.v1 ?? 0} / ${split.v2 ?? 0}${calls.failed ? ` (${calls.failed} failed: ${calls.error})` : ""}`;
    expect((split.v1 ?? 0) + (split.v2 ?? 0)).toBe(500);
    // 80 % of 500 is 400; a binomial's standard deviation here is about 9.
    expect(split.v1 ?? 0).toBeGreaterThan(360);
    expect(split.v1 ?? 0).toBeLessThan(440);
  });

  test("faults: an abort on half the calls fails about half, with the status the rule gives", async () => {
    apply([
      virtualService([
        {
          fault: { abort: { grpcStatus: "UNAVAILABLE", percentage: { value: 50 } } },
          route: [{ destination: { host: "grpc-echo", subset: "v1" } }],
        },
      ]),
    ]);
    await until("aborted calls", `${HOST}:7070`, (o) => o.failed > 0);
    const outcome = grpcCalls(`${HOST}:7070`, 200);
    measured["fault abort 50 %, 200 calls: failed"] = String(outcome.failed);
    // 50 % of 200 is 100; a binomial's standard deviation here is about 7.
    expect(outcome.failed).toBeGreaterThan(70);
    expect(outcome.failed).toBeLessThan(130);
    expect(outcome.error).toContain("code = Unavailable");
    // The other half reach v1 only, as the rule routes them.
    const answered = grpcCalls(`${HOST}:7070`, 1);
    expect(answered.failed === 1 || answered.versions[0] === "v1").toBe(true);
  });

  test("retries: a server failing two of every three attempts answers every call under the default policy, a third of them with retries off", async () => {
    kubectl(["-n", NS, "delete", "virtualservice", "grpc-echo", "--ignore-not-found"]);
    // A gRPC server in a few lines of Node (Rigger's image has it), outside the mesh: it answers
    // every third attempt and fails the others with UNAVAILABLE as a trailers-only response (one
    // a client may retry), logging each attempt.
    const server = [
      "let n = 0; const h2 = require('node:http2');",
      "const varint = (v) => { const b = []; while (v > 127) { b.push((v & 127) | 128); v >>>= 7; } b.push(v); return b; };",
      "const ok = (stream) => { const text = Buffer.from('ServiceVersion=flaky\\nStatusCode=200\\n'); const msg = Buffer.from([10, ...varint(text.length), ...text]);",
      " const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), msg]); frame.writeUInt32BE(msg.length, 1);",
      " stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });",
      " stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' })); stream.end(frame); };",
      // A call with x-delay-ms is answered after that long, never failed and not counted.
      "h2.createServer().on('stream', (stream, headers) => { stream.on('error', () => {}); stream.resume(); const delay = Number(headers['x-delay-ms'] ?? 0);",
      " if (delay > 0) { stream.on('end', () => setTimeout(() => { if (!stream.destroyed) ok(stream); }, delay)); return; }",
      " const i = ++n; stream.on('end', () => {",
      " if (i % 3 !== 0) { console.log('ATTEMPT ' + i + ' failed'); stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14', 'grpc-message': 'flaky' }, { endStream: true }); return; }",
      " console.log('ATTEMPT ' + i + ' answered'); ok(stream); }); }).listen(7070);",
    ].join("");
    kubectl(
      ["apply", "-f", "-"],
      nodeScriptDeployment("flaky", NS, server, { port: 7070, annotations: { "sidecar.istio.io/inject": "false" } }),
    );
    applyService("flaky", NS, { app: "flaky" }, [{ name: "grpc", port: 7070, targetPort: 7070 }]);
    await waitForPods(NS, "app=flaky", 1, isReady, "the flaky server Ready");
    // Attempts the server has logged (a moment allowed for the log to reach the node's file).
    const attempts = async () => {
      await new Promise((r) => setTimeout(r, 1000));
      return kubectl(["-n", NS, "logs", "deployment/flaky"])
        .split("\n")
        .filter((l) => l.startsWith("ATTEMPT")).length;
    };
    const target = `flaky.${NS}.svc.cluster.local:7070`;
    await until("the flaky server answering", target, (o) => o.versions.length > 0, ["--count", "1"]);
    // One call at a time (5 a second), so each call's attempts follow each other.
    const paced = ["--qps", "5", "--timeout", "30s"];
    let before = await attempts();
    const retried = grpcCalls(target, 30, paced);
    const retriedAttempts = (await attempts()) - before;
    measured["default retries (2, on unavailable): calls answered of 30, attempts the server saw"] =
      `${retried.versions.length}, ${retriedAttempts}`;
    expect(retried.failed).toBe(0);
    expect(retried.versions).toHaveLength(30);
    // Each call takes three attempts, but the first: it starts wherever the server's count is.
    expect(retriedAttempts).toBe(29 * 3 + (3 - (before % 3)));

    apply([
      {
        apiVersion: "networking.istio.io/v1",
        kind: "VirtualService",
        metadata: { name: "flaky", namespace: NS },
        spec: { hosts: ["flaky"], http: [{ retries: { attempts: 0 }, route: [{ destination: { host: "flaky" } }] }] },
      },
    ]);
    await until("retries off", target, (o) => o.failed > 0, paced);
    before = await attempts();
    const once = grpcCalls(target, 30, paced);
    const onceAttempts = (await attempts()) - before;
    measured["retries off: calls answered of 30, attempts the server saw"] = `${30 - once.failed}, ${onceAttempts}`;
    expect(onceAttempts).toBe(30);
    expect(once.failed).toBe(20);
    expect(once.error).toContain("flaky");
    kubectl(["-n", NS, "delete", "virtualservice", "flaky"]);
  });

  test("timeouts: a call the server answers after 1 s ends with DeadlineExceeded under a 300 ms route timeout (gRPC reads max_stream_duration), and is answered without one", async () => {
    const target = `flaky.${NS}.svc.cluster.local:7070`;
    const slow = ["-H", "x-delay-ms: 1000", "--timeout", "20s"];
    apply([
      {
        apiVersion: "networking.istio.io/v1",
        kind: "VirtualService",
        metadata: { name: "flaky", namespace: NS },
        spec: { hosts: ["flaky"], http: [{ timeout: "0.3s", route: [{ destination: { host: "flaky" } }] }] },
      },
    ]);
    await until("slow calls cut at 300 ms", target, (o) => o.failed === 20, slow);
    const cut = grpcCalls(target, 10, slow);
    expect(cut.failed).toBe(10);
    expect(cut.error).toContain("code = DeadlineExceeded");
    kubectl(["-n", NS, "delete", "virtualservice", "flaky"]);
    await until("slow calls answered", target, (o) => o.failed === 0, slow);
    const t0 = Date.now();
    const waited = grpcCalls(target, 5, slow);
    measured["server answering after 1 s, no route timeout: 5 calls answered in"] = `${Date.now() - t0} ms`;
    expect(waited.versions).toEqual(["flaky", "flaky", "flaky", "flaky", "flaky"]);
  });

  test("mTLS: under STRICT PeerAuthentication the servers refuse plaintext; a DestinationRule with ISTIO_MUTUAL reaches them with the agent's certificates", async () => {
    apply([
      {
        apiVersion: "security.istio.io/v1",
        kind: "PeerAuthentication",
        metadata: { name: "default", namespace: NS },
        spec: { mtls: { mode: "STRICT" } },
      },
      destinationRule(),
    ]);
    await until("plaintext refused", `${HOST}:7070`, (o) => o.failed === 20);
    const refused = grpcCalls(`${HOST}:7070`, 20);
    measured["STRICT, no client TLS: calls failed of 20"] = String(refused.failed);
    expect(refused.failed).toBe(20);
    apply([destinationRule({ tls: { mode: "ISTIO_MUTUAL" } })]);
    await until("mutual TLS calls answered", `${HOST}:7070`, (o) => o.failed === 0 && o.versions.length === 20);
    const versions = tally(grpcCalls(`${HOST}:7070`, 100).versions);
    measured["STRICT with ISTIO_MUTUAL, 100 calls: v1 / v2"] = `${versions.v1 ?? 0} / ${versions.v2 ?? 0}`;
    expect((versions.v1 ?? 0) + (versions.v2 ?? 0)).toBe(100);
    kubectl(["-n", NS, "delete", "peerauthentication", "default"]);
  });

  test("no packet left the machine", () => {
    expect(droppedPackets()).toBe(0);
  });
});
