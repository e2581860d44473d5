// Traffic management on the real node, observed in real requests: a client pod calls a backend
// Service through both sidecars (upstream's proxyv2: pilot-agent and Envoy) configured by Rigger's
// istiod from DestinationRules and VirtualServices. Every test counts what the echo servers
// answered (their version, their pod name, the status), never what was configured.
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { droppedPackets } from "./cluster/network.ts";
import { reportMeasurements, waitFor } from "./support/kube.ts";
import {
  cleanUpMesh,
  echoCall,
  echoDeployment,
  envoyAdmin,
  injectedNamespace,
  installMesh,
  isReady,
  json,
  kubectl,
  podPids,
  waitForPods,
} from "./support/mesh-node.ts";

const SHOP = "shop";
const WEB = "web";
const HOST = `backend.${SHOP}.svc.cluster.local`;
const local = inject("localCluster");
const measured: Record<string, string> = {};
let client = { app: 0, proxy: 0 };
let vip = "";

interface Reply {
  code: string;
  version: string;
  hostname: string;
  headers: string[];
}

/** The echo client's output, one entry per request: status, the answering server's version and pod, response headers. */
function replies(output: string): Reply[] {
  const byIndex = new Map<string, Reply>();
  for (const line of output.split("\n")) {
    const m = /^\[(\d+)(?: body)?\] (\w+)=(.*)$/.exec(line);
    if (!m) continue;
    const [, index = "", key, value = ""] = m;
    const reply = byIndex.get(index) ?? { code: "", version: "", hostname: "", headers: [] };
    byIndex.set(index, reply);
    if (key === "StatusCode") reply.code = value;
    else if (key === "ServiceVersion") reply.version = value;
    else if (key === "Hostname") reply.hostname = value;
    else if (key === "ResponseHeader") reply.headers.push(value);
  }
  return [...byIndex.values()];
}

/**
 * `count` requests from the client pod to the backend's Service, as the echo client reports
 * them: up to 20 at once, or `qps` a second (one after the other when each takes less).
 */
function call(count: number, path = "/", extra: string[] = [], qps = 0): Reply[] {
  return replies(echoCall(client.app, `http://${vip}:80${path}`, ["--count", String(count), "--qps", String(qps), ...extra]));
}

function tally(list: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const k of list) counts[k] = (counts[k] ?? 0) + 1;
  return counts;
}

/** Parts of the client's Envoy configuration as JSON text ("" when absent), from its config dump. */
interface EnvoyView {
  cluster(name: string): string;
  /** The backend's virtual host on route configuration 80. */
  backendRoute(): string;
  endpoints(cluster: string): string;
}

function envoyView(): EnvoyView {
  type Config = Record<string, unknown> & { "@type": string };
  const dump = JSON.parse(envoyAdmin(client.proxy, "/config_dump?include_eds")) as { configs: Config[] };
  const of = (type: string) => dump.configs.find((c) => c["@type"].endsWith(`.${type}`)) ?? ({} as Config);
  const clusters = ((of("ClustersConfigDump").dynamic_active_clusters ?? []) as { cluster: { name: string } }[]).map(
    (c) => c.cluster,
  );
  const routes = ((of("RoutesConfigDump").dynamic_route_configs ?? []) as { route_config: { name: string } }[]).map(
    (r) => r.route_config as { name: string; virtual_hosts?: { name: string }[] },
  );
  const endpoints = ((of("EndpointsConfigDump").dynamic_endpoint_configs ?? []) as { endpoint_config: object }[]).map(
    (e) => e.endpoint_config as { cluster_name: string },
  );
  const text = (o: unknown) => (o ? JSON.stringify(o) : "");
  return {
    cluster: (name) => text(clusters.find((c) => c.name === name)),
    backendRoute: () => text(routes.find((r) => r.name === "80")?.virtual_hosts?.find((v) => v.name === `${HOST}:80`)),
    endpoints: (name) => text(endpoints.find((e) => e.cluster_name === name)),
  };
}

const BACKEND = `outbound|80||${HOST}`;

/** Applies Istio config and waits until the client's Envoy has it (`seen` on its configuration), timing it. */
async function applyAndWait(what: string, yaml: object[], seen: (envoy: EnvoyView) => boolean): Promise<void> {
  const t0 = Date.now();
  kubectl(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: yaml }));
  await waitFor(`the client's Envoy to have ${what}`, async () => (seen(envoyView()) ? true : undefined));
  measured[`${what}: applied → in the client's Envoy`] = `${((Date.now() - t0) / 1000).toFixed(1)} s`;
}

const destinationRule = (spec: object) => ({
  apiVersion: "networking.istio.io/v1",
  kind: "DestinationRule",
  metadata: { name: "backend", namespace: SHOP },
  spec: { host: "backend", ...spec },
});

const virtualService = (http: object[]) => ({
  apiVersion: "networking.istio.io/v1",
  kind: "VirtualService",
  metadata: { name: "backend", namespace: SHOP },
  spec: { hosts: ["backend"], http },
});

function backendPods(): { name: string; ip: string; version: string }[] {
  return json<{ items: { metadata: { name: string; labels: Record<string, string> }; status: { podIP: string } }[] }>([
    "-n",
    SHOP,
    "get",
    "pods",
    "-l",
    "app=backend",
  ]).items.map((p) => ({ name: p.metadata.name, ip: p.status.podIP, version: p.metadata.labels.version ?? "" }));
}

describe.runIf(local)("traffic management on the real node", () => {
  beforeAll(async () => {
    cleanUpMesh([SHOP, WEB]);
    await installMesh();
    injectedNamespace(SHOP);
    injectedNamespace(WEB);
    kubectl(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: "backend", namespace: SHOP },
        spec: { selector: { app: "backend" }, ports: [{ name: "http", port: 80, targetPort: 8080 }] },
      }),
    );
    for (const version of ["v1", "v2"])
      kubectl(
        ["apply", "-f", "-"],
        echoDeployment(`backend-${version}`, SHOP, ["--port=8080", `--version=${version}`], undefined, {
          app: "backend",
          version,
        }),
      );
    kubectl(["apply", "-f", "-"], echoDeployment("client", WEB, ["--port=8080"]));
    await waitForPods(SHOP, "app=backend", 2, isReady, "2 ready backend pods");
    const [pod] = await waitForPods(WEB, "app=client", 1, isReady, "the client pod Ready");
    if (!pod) throw new Error("no client pod");
    client = podPids(pod, "client");
    vip = json<{ spec: { clusterIP: string } }>(["-n", SHOP, "get", "service", "backend"]).spec.clusterIP;
    // Both backends in the client's Envoy before anything is measured.
    await waitFor("both backends in the client's Envoy", async () => {
      const clusters = envoyAdmin(client.proxy, "/clusters");
      return backendPods().every((p) => clusters.includes(`outbound|80||${HOST}::${p.ip}:8080::`)) ? true : undefined;
    });
  }, 400_000);

  afterAll(() => {
    reportMeasurements("traffic management", measured);
    cleanUpMesh([SHOP, WEB]);
  }, 200_000);

  test("subsets and a weighted VirtualService: 90/10 over 1,000 requests lands within 3 points", async () => {
    const v2 = backendPods().find((p) => p.version === "v2");
    await applyAndWait(
      "subsets v1, v2 and a 90/10 split",
      [
        destinationRule({
          subsets: [
            { name: "v1", labels: { version: "v1" } },
            { name: "v2", labels: { version: "v2" } },
          ],
        }),
        virtualService([
          {
            route: [
              { destination: { host: "backend", subset: "v1" }, weight: 90 },
              { destination: { host: "backend", subset: "v2" }, weight: 10 },
            ],
          },
        ]),
      ],
      (envoy) =>
        envoy.backendRoute().includes('"weight":90') && envoy.endpoints(`outbound|80|v2|${HOST}`).includes(`"${v2?.ip}"`),
    );
    const answers = call(1000);
    expect(answers).toHaveLength(1000);
    expect(tally(answers.map((r) => r.code))).toEqual({ "200": 1000 });
    const versions = tally(answers.map((r) => r.version));
    measured["90/10 split, 1,000 requests: v1 / v2"] = `${versions.v1 ?? 0} / ${versions.v2 ?? 0}`;
    expect((versions.v1 ?? 0) + (versions.v2 ?? 0)).toBe(1000);
    expect(versions.v2 ?? 0).toBeGreaterThanOrEqual(70);
    expect(versions.v2 ?? 0).toBeLessThanOrEqual(130);
  });

  test("a subset's endpoints are only the pods with its labels: all traffic to v2 reaches v2 only", async () => {
    await applyAndWait(
      "a route to subset v2 only",
      [virtualService([{ route: [{ destination: { host: "backend", subset: "v2" } }] }])],
      (envoy) => envoy.backendRoute().includes(`"cluster":"outbound|80|v2|${HOST}"`),
    );
    const answers = call(200);
    expect(tally(answers.map((r) => `${r.code} ${r.version}`))).toEqual({ "200 v2": 200 });
  });

  test("consistent hash by header, cookie and source IP: the same pod every time; without it, several", async () => {
    kubectl(["-n", SHOP, "delete", "virtualservice", "backend"]);
    kubectl(["-n", SHOP, "scale", "deployment", "backend-v1", "--replicas=2"]);
    await waitForPods(SHOP, "app=backend", 3, isReady, "3 ready backend pods");
    const pods = backendPods();
    await applyAndWait(
      "no consistent hash, 3 endpoints",
      [destinationRule({})],
      (envoy) =>
        !envoy.backendRoute().includes("hash_policy") &&
        !envoy.backendRoute().includes("v2") &&
        pods.every((p) => envoy.endpoints(BACKEND).includes(`"${p.ip}"`)),
    );
    const spread = new Set(call(30).map((r) => r.hostname));
    expect(spread.size).toBeGreaterThanOrEqual(2);

    const hashes: [string, object, string[], string][] = [
      ["header", { httpHeaderName: "x-user" }, ["-H", "x-user:alice"], '"header_name":"x-user"'],
      ["cookie", { httpCookie: { name: "session", ttl: "0s" } }, ["-H", "Cookie:session=abc123"], '"name":"session"'],
      ["source IP", { useSourceIp: true }, [], '"source_ip":true'],
    ];
    for (const [name, consistentHash, headers, policy] of hashes) {
      await applyAndWait(
        `consistent hash by ${name}`,
        [destinationRule({ trafficPolicy: { loadBalancer: { consistentHash } } })],
        (envoy) => envoy.cluster(BACKEND).includes('"lb_policy":"RING_HASH"') && envoy.backendRoute().includes(policy),
      );
      const hosts = tally(call(30, "/", headers).map((r) => r.hostname));
      measured[`consistent hash by ${name}: pods answering 30 requests`] = String(Object.keys(hosts).length);
      expect(Object.values(hosts)).toEqual([30]);
    }
    // Different users land on different pods: the hash is of the header, not a fixed choice.
    await applyAndWait(
      "consistent hash by header (again)",
      [destinationRule({ trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: "x-user" } } } })],
      (envoy) => envoy.backendRoute().includes('"header_name":"x-user"'),
    );
    const users = new Set<string>();
    for (let i = 0; i < 12; i++) users.add(call(1, "/", ["-H", `x-user:user-${i}`])[0]?.hostname ?? "");
    expect(users.size).toBeGreaterThanOrEqual(2);
  });

  test("connection pool: past maxConnections and http1MaxPendingRequests callers get 503 with Envoy's overflow header", async () => {
    await applyAndWait(
      "a connection pool of 1 connection and 1 pending request",
      [
        destinationRule({
          trafficPolicy: { connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1 } } },
        }),
      ],
      (envoy) => /"max_pending_requests":1[,}]/.test(envoy.cluster(BACKEND)),
    );
    // 12 calls at once (the echo client sends up to 20 in parallel), each held 1 s by the server:
    // one in flight, one waiting, the rest refused.
    const answers = call(12, "/?delay=1s", ["--timeout", "10s"]);
    const codes = tally(answers.map((r) => r.code));
    measured["12 concurrent calls, pool 1 + 1 pending: 200 / 503"] = `${codes["200"] ?? 0} / ${codes["503"] ?? 0}`;
    expect(codes["200"] ?? 0).toBeGreaterThanOrEqual(1);
    expect(codes["503"] ?? 0).toBeGreaterThanOrEqual(6);
    const refused = answers.filter((r) => r.code === "503");
    expect(refused.every((r) => r.headers.some((h) => /^x-envoy-overloaded:\s*true$/i.test(h)))).toBe(true);
  });

  test("outlier detection: a failing pod stops getting traffic and is tried again after the ejection time", async () => {
    // A backend pod whose server listens on another port than the Service's: every call to it fails (503).
    kubectl(
      ["apply", "-f", "-"],
      echoDeployment("backend-broken", SHOP, ["--port=8081", "--version=broken"], undefined, {
        app: "backend",
        version: "broken",
      }),
    );
    await waitForPods(SHOP, "app=backend", 4, isReady, "4 ready backend pods");
    const broken = backendPods().find((p) => p.version === "broken");
    const noRetries = virtualService([{ route: [{ destination: { host: "backend" } }], retries: { attempts: 0 } }]);
    await applyAndWait(
      "the broken pod, no retries, no outlier detection",
      [destinationRule({}), noRetries],
      (envoy) =>
        envoy.endpoints(BACKEND).includes(`"${broken?.ip}"`) &&
        !envoy.cluster(BACKEND).includes("outlier_detection") &&
        !envoy.backendRoute().includes("retry_policy"),
    );
    const before = tally(call(100, "/", [], 100).map((r) => r.code));
    measured["4 pods, 1 broken, no outlier detection: 200 / 503 of 100"] = `${before["200"] ?? 0} / ${before["503"] ?? 0}`;
    expect(before["503"] ?? 0).toBeGreaterThanOrEqual(5);

    await applyAndWait(
      "outlier detection (1 consecutive 5xx, ejected 5 s)",
      [
        destinationRule({
          trafficPolicy: {
            outlierDetection: { consecutive5xxErrors: 1, interval: "1s", baseEjectionTime: "5s", maxEjectionPercent: 100 },
          },
        }),
      ],
      (envoy) => envoy.cluster(BACKEND).includes("outlier_detection"),
    );
    // One after the other, so each outcome is known before the next call picks a pod.
    const during = tally(call(60, "/", [], 100).map((r) => r.code));
    measured["outlier detection: 200 / 503 of 60 (the first failure ejects)"] = `${during["200"] ?? 0} / ${during["503"] ?? 0}`;
    expect(during["503"] ?? 0).toBeLessThanOrEqual(1);
    expect(during["200"] ?? 0).toBeGreaterThanOrEqual(59);
    // Ejected for 5 s (Envoy checks every 1 s): afterwards the pod is tried, fails, and is ejected again.
    await new Promise((r) => setTimeout(r, 7_000));
    const after = tally(call(60, "/", [], 100).map((r) => r.code));
    measured["after the ejection time: 200 / 503 of 60"] = `${after["200"] ?? 0} / ${after["503"] ?? 0}`;
    expect(after["503"] ?? 0).toBe(1);
    kubectl(["-n", SHOP, "delete", "deployment", "backend-broken", "--wait=true"]);
  });

  test("TLS modes: ISTIO_MUTUAL shows the client's identity to the server, DISABLE sends plaintext", async () => {
    const identity = new RegExp(`X-Forwarded-Client-Cert:.*URI=spiffe://cluster.local/ns/${WEB}/sa/default`, "i");
    kubectl(["-n", SHOP, "delete", "virtualservice", "backend", "--ignore-not-found"]);
    await applyAndWait(
      "tls ISTIO_MUTUAL",
      [destinationRule({ trafficPolicy: { tls: { mode: "ISTIO_MUTUAL" } } })],
      (envoy) => envoy.cluster(BACKEND).includes("transport_socket") && !envoy.cluster(BACKEND).includes("tlsMode-disabled"),
    );
    expect(echoCall(client.app, `http://${vip}:80/`)).toMatch(identity);
    await applyAndWait(
      "tls DISABLE",
      [destinationRule({ trafficPolicy: { tls: { mode: "DISABLE" } } })],
      (envoy) => envoy.cluster(BACKEND) !== "" && !envoy.cluster(BACKEND).includes("transport_socket"),
    );
    const plain = echoCall(client.app, `http://${vip}:80/`);
    expect(plain).toMatch(/StatusCode=200/);
    expect(plain).not.toMatch(/X-Forwarded-Client-Cert/i);
  });

  test("no packet left the machine", () => {
    expect(droppedPackets()).toBe(0);
  });
});
