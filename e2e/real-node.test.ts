// The path a user takes, all in pods on the local cluster's real node (containerd + runc):
// install manifest with the locally built rigger image → operator pods Running, one leader →
// the sample Istio → istiod Running and Ready behind its Service, webhooks called by the
// apiserver through that Service → an injected echo app whose istio-init really ran
// istio-iptables in the pod's network namespace and whose istio-proxy runs pilot-agent and
// Envoy, with a workload certificate from Rigger's CA for the pod's ServiceAccount.
// Then Rigger's istiod serves that Envoy its configuration over xDS, so the pod becomes Ready.
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { versions } from "../versions.ts";
import { binaries, CLUSTER_DIR, LOCAL_ISTIO_VALUES, runOnRealNode } from "./cluster/local-cluster.ts";
import { droppedPackets } from "./cluster/network.ts";
import { findProcesses } from "./cluster/processes.ts";
import { nodePaths, REAL_NODE_NAME } from "./cluster/real-node.ts";
import { reportMeasurements, waitFor } from "./support/kube.ts";
import {
  CONTROL_PLANE_NS,
  cleanUpMesh,
  containerPid,
  echoCall,
  echoCallStatus,
  echoDeployment,
  envoyAdmin,
  isReady,
  json,
  kubectl,
  OPERATOR_NS,
  type Pod,
  podsOf,
  riggerCli,
  waitForPods,
  whyNot,
} from "./support/mesh-node.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const APP_NS = "echo";
const CLIENT_NS = "client";
let clientPid: number | undefined;
const measured: Record<string, string> = {};
const local = inject("localCluster");

/** Children of a host PID, by their command name. */
function childCommands(pid: number): string[] {
  const stat = (p: number) => readFileSync(`/proc/${p}/stat`, "utf8");
  const parentOf = (p: number) =>
    Number(
      stat(p)
        .slice(stat(p).lastIndexOf(")") + 2)
        .split(" ")[1],
    );
  return findProcesses((p) => parentOf(p) === pid).map((p) => readFileSync(`/proc/${p}/comm`, "utf8").trim());
}

const cleanUp = () => cleanUpMesh([APP_NS, CLIENT_NS]);

describe.runIf(local)("on the local cluster's real node", () => {
  beforeAll(() => cleanUp(), 200_000);
  afterAll(() => {
    reportMeasurements("real node", measured);
    cleanUp();
  }, 200_000);

  test("the node is a real kubelet on containerd, with the images imported", () => {
    const node = json<{ status: { nodeInfo: { containerRuntimeVersion: string; kubeletVersion: string } } }>([
      "get",
      "node",
      REAL_NODE_NAME,
    ]);
    expect(node.status.nodeInfo.containerRuntimeVersion).toBe(`containerd://${versions.containerd}`);
    expect(node.status.nodeInfo.kubeletVersion).toBe(`v${versions.kubernetes}`);
    const images = execFileSync(
      binaries.ctr,
      ["--address", nodePaths(CLUSTER_DIR).containerdSocket, "-n", "k8s.io", "images", "ls", "-q"],
      {
        encoding: "utf8",
      },
    );
    for (const name of [
      "docker.io/library/rigger:0.1.0",
      `localhost/istio/proxyv2:${versions.istio}`,
      `localhost/istio/app:${versions.istio}`,
    ]) {
      expect(images).toContain(name);
    }
  });

  test("install manifest → operator pods Running on the real node, one leader", async () => {
    runOnRealNode(OPERATOR_NS);
    const t0 = Date.now();
    kubectl(["apply", "-f", join(ROOT, "manifests/install.yaml")]);
    const pods = await waitForPods(OPERATOR_NS, "app.kubernetes.io/name=rigger-operator", 2, isReady, "2 ready operator pods");
    measured["install.yaml applied → 2 operator pods Ready"] = `${((Date.now() - t0) / 1000).toFixed(1)} s`;
    for (const pod of pods) expect(pod.spec.nodeName).toBe(REAL_NODE_NAME);
    const holder = await waitFor("the operator's Lease to have a holder", async () => {
      const lease = json<{ spec: { holderIdentity?: string } }>(["-n", OPERATOR_NS, "get", "lease", "rigger-operator"]);
      return lease.spec.holderIdentity || undefined;
    });
    const leaders = pods.filter((p) => holder.startsWith(`${p.metadata.name}-`));
    expect(leaders).toHaveLength(1);
  });

  test("the sample Istio → istiod Running and Ready behind its Service; webhooks call that Service", async () => {
    runOnRealNode(CONTROL_PLANE_NS);
    const t0 = Date.now();
    // The sample, then the local cluster's values: the proxyv2 built here (values.global.hub).
    kubectl(["apply", "-f", join(ROOT, "manifests/samples/istio.yaml")]);
    kubectl(["patch", "istio", "default", "--type=merge", "-p", JSON.stringify({ spec: { values: LOCAL_ISTIO_VALUES } })]);
    kubectl(["wait", "--for=condition=Ready", "--timeout=150s", "istio/default"]);
    measured["Istio applied → Ready (istiod pod Ready)"] = `${((Date.now() - t0) / 1000).toFixed(1)} s`;
    const [istiod] = await waitForPods(CONTROL_PLANE_NS, "app=istiod", 1, isReady, "a ready istiod pod");
    expect(istiod?.spec.nodeName).toBe(REAL_NODE_NAME);
    const endpoints = json<{ items: { endpoints: { addresses: string[]; conditions: { ready: boolean } }[] }[] }>([
      "-n",
      CONTROL_PLANE_NS,
      "get",
      "endpointslices",
      "-l",
      "kubernetes.io/service-name=istiod",
    ]);
    const ready = endpoints.items.flatMap((s) => s.endpoints).filter((e) => e.conditions.ready);
    expect(ready.length).toBeGreaterThanOrEqual(1);
    const mwc = json<{
      webhooks: { clientConfig: { service?: { name: string; namespace: string }; url?: string; caBundle?: string } }[];
    }>(["get", "mutatingwebhookconfiguration", "istio-sidecar-injector"]);
    for (const webhook of mwc.webhooks) {
      expect(webhook.clientConfig.url).toBeUndefined();
      expect(webhook.clientConfig.service).toMatchObject({ name: "istiod", namespace: CONTROL_PLANE_NS });
      expect(webhook.clientConfig.caBundle).toBeTruthy();
    }
  });

  let appPod: Pod | undefined;

  test("an echo app in an injected namespace: injected through the Service-called webhook, istio-init ran, istio-proxy runs", async () => {
    runOnRealNode(APP_NS);
    kubectl(["label", "namespace", APP_NS, "istio-injection=enabled", "--overwrite"]);
    kubectl(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: "echo", namespace: APP_NS },
        spec: {
          selector: { app: "echo" },
          ports: [
            { name: "http", port: 80, targetPort: 8080 },
            { name: "grpc", port: 7070 },
            { name: "tcp", port: 9090 },
          ],
        },
      }),
    );
    const t0 = Date.now();
    kubectl(
      ["apply", "-f", "-"],
      // The agent also writes the certificate it got to the pod's istio-envoy volume, so this
      // test can read it from the node.
      echoDeployment("echo", APP_NS, ["--port=8080", "--grpc=7070", "--tcp=9090"], {
        "proxy.istio.io/config": '{"proxyMetadata":{"OUTPUT_CERTS":"/etc/istio/proxy"}}',
      }),
    );
    const started = (p: Pod) => p.status.containerStatuses?.find((c) => c.name === "istio-proxy")?.state?.running !== undefined;
    const [pod] = await waitForPods(APP_NS, "app=echo", 1, started, "the echo pod's istio-proxy running");
    measured["echo Deployment applied → istio-proxy running"] = `${((Date.now() - t0) / 1000).toFixed(1)} s`;
    appPod = pod;
    expect(pod?.spec.nodeName).toBe(REAL_NODE_NAME);
    expect(pod?.metadata.annotations?.["istio.io/rev"]).toBe("default");
    expect(pod?.spec.initContainers?.map((c) => c.name)).toContain("istio-init");
    expect(pod?.spec.containers.map((c) => c.name)).toEqual(["echo", "istio-proxy"]);

    // istio-init ran to completion.
    const init = pod?.status.initContainerStatuses?.find((c) => c.name === "istio-init");
    expect(init?.state?.terminated?.exitCode).toBe(0);
    // ... and left Istio's chains in the pod's network namespace (read from the node).
    const app = pod?.status.containerStatuses?.find((c) => c.name === "echo");
    const rules = execFileSync("nsenter", ["-t", String(containerPid(app?.containerID)), "-n", "iptables-save", "-t", "nat"], {
      encoding: "utf8",
    });
    for (const chain of ["ISTIO_INBOUND", "ISTIO_IN_REDIRECT", "ISTIO_OUTPUT", "ISTIO_REDIRECT"]) {
      expect(rules).toContain(`:${chain} `);
    }
    expect(rules).toMatch(/-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001/);
    expect(rules).toMatch(/-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006/);

    // istio-proxy: pilot-agent is the container's first process, Envoy its child.
    const proxy = pod?.status.containerStatuses?.find((c) => c.name === "istio-proxy");
    const agentPid = containerPid(proxy?.containerID);
    expect(readFileSync(`/proc/${agentPid}/comm`, "utf8").trim()).toBe("pilot-agent");
    const children = await waitFor("Envoy started by pilot-agent", async () => {
      const names = childCommands(agentPid);
      return names.includes("envoy") ? names : undefined;
    });
    expect(children).toContain("envoy");
  });

  test("pilot-agent got a workload certificate from Rigger's CA for the pod's ServiceAccount", async () => {
    const pod = appPod;
    if (!pod) throw new Error("no echo pod (the previous test failed)");
    const certDir = join(
      nodePaths(CLUSTER_DIR).kubeletRoot,
      "pods",
      pod.metadata.uid,
      "volumes",
      "kubernetes.io~empty-dir",
      "istio-envoy",
    );
    const chainPem = await waitFor("the agent's cert-chain.pem", async () => {
      const file = join(certDir, "cert-chain.pem");
      return existsSync(file) && readFileSync(file, "utf8").includes("END CERTIFICATE") ? readFileSync(file, "utf8") : undefined;
    });
    const leaf = new X509Certificate(chainPem);
    const sa = pod.spec.serviceAccountName ?? "default";
    expect(leaf.subjectAltName).toBe(`URI:spiffe://cluster.local/ns/${APP_NS}/sa/${sa}`);
    const rootPem = json<{ data: { "root-cert.pem": string } }>(["-n", APP_NS, "get", "configmap", "istio-ca-root-cert"]).data[
      "root-cert.pem"
    ];
    const root = new X509Certificate(rootPem);
    // The chain verifies against the root every namespace gets: leaf (→ intermediates) → root.
    const chain = chainPem
      .split(/(?<=-----END CERTIFICATE-----)\s*/)
      .filter((p) => p.includes("BEGIN"))
      .map((p) => new X509Certificate(p));
    for (let i = 0; i + 1 < chain.length; i++) expect(chain[i]?.verify(chain[i + 1]?.publicKey ?? root.publicKey)).toBe(true);
    expect(chain.at(-1)?.verify(root.publicKey)).toBe(true);
    expect(leaf.validToDate.getTime()).toBeGreaterThan(Date.now());
  });

  test("Envoy gets its configuration from Rigger's istiod (xDS): the injected pod becomes Ready, nothing rejected", async () => {
    const pod = appPod;
    if (!pod) throw new Error("no echo pod (the previous test failed)");
    const t0 = Date.now();
    const ready = await waitForPods(
      APP_NS,
      "app=echo",
      1,
      isReady,
      "the echo pod Ready (istio-proxy's readiness needs CDS and LDS)",
    );
    measured["echo pod running → Ready (first xDS push accepted)"] = `${((Date.now() - t0) / 1000).toFixed(1)} s`;
    expect(ready[0]?.status.containerStatuses?.find((c) => c.name === "istio-proxy")?.ready).toBe(true);
    // Envoy's own counters, read from its admin port inside the pod's network namespace.
    const proxy = ready[0]?.status.containerStatuses?.find((c) => c.name === "istio-proxy");
    const stats = envoyAdmin(containerPid(proxy?.containerID), "/stats");
    const counter = (name: string) => Number(new RegExp(`^${name.replace(/\./g, "\\.")}: (\\d+)$`, "m").exec(stats)?.[1] ?? "-1");
    expect(counter("cluster_manager.cds.update_success")).toBeGreaterThanOrEqual(1);
    expect(counter("listener_manager.lds.update_success")).toBeGreaterThanOrEqual(1);
    expect(counter("cluster_manager.cds.update_rejected")).toBe(0);
    expect(counter("listener_manager.lds.update_rejected")).toBe(0);
    // The Service's clusters, with the pod itself as the endpoint (EDS from its EndpointSlice).
    const clusters = envoyAdmin(containerPid(proxy?.containerID), "/clusters");
    const ip = json<{ status: { podIP: string } }>(["-n", APP_NS, "get", "pod", pod.metadata.name]).status.podIP;
    expect(clusters).toContain(`outbound|80||echo.${APP_NS}.svc.cluster.local::${ip}:8080::`);
    expect(clusters).toContain(`outbound|7070||echo.${APP_NS}.svc.cluster.local::${ip}:7070::`);
    expect(clusters).toContain(`outbound|9090||echo.${APP_NS}.svc.cluster.local::${ip}:9090::`);
  });

  test("a client pod in another namespace calls echo by its Service over HTTP, gRPC and TCP through both sidecars, with mutual TLS", async () => {
    runOnRealNode(CLIENT_NS);
    kubectl(["label", "namespace", CLIENT_NS, "istio-injection=enabled", "--overwrite"]);
    kubectl(["apply", "-f", "-"], echoDeployment("client", CLIENT_NS, ["--port=8080"]));
    const [client] = await waitForPods(CLIENT_NS, "app=client", 1, isReady, "the client pod Ready");
    clientPid = containerPid(client?.status.containerStatuses?.find((c) => c.name === "client")?.containerID);
    const vip = json<{ spec: { clusterIP: string } }>(["-n", APP_NS, "get", "service", "echo"]).spec.clusterIP;

    // HTTP: the echo server saw the client's SPIFFE identity in the header its sidecar adds
    // (x-forwarded-client-cert), which it can only have from a mutual TLS handshake.
    const http = echoCall(clientPid, `http://${vip}:80/`);
    expect(http).toMatch(/StatusCode=200/);
    expect(http).toMatch(/Hostname=echo-/);
    expect(http).toMatch(new RegExp(`X-Forwarded-Client-Cert:.*URI=spiffe://cluster.local/ns/${CLIENT_NS}/sa/default`, "i"));
    // gRPC and TCP reach the same pod through the sidecars too.
    expect(echoCall(clientPid, `grpc://${vip}:7070`)).toMatch(/StatusCode=200/);
    expect(echoCall(clientPid, `tcp://${vip}:9090`)).toMatch(/Hostname=echo-/);

    // gRPC went through both sidecars with mutual TLS as well (the same header, on the gRPC request).
    expect(echoCall(clientPid, `grpc://${vip}:7070`)).toMatch(
      new RegExp(`X-Forwarded-Client-Cert:.*URI=spiffe://cluster.local/ns/${CLIENT_NS}/sa/default`, "i"),
    );
  });

  test("PeerAuthentication: STRICT refuses a plaintext client from outside the mesh, PERMISSIVE lets it in; mesh clients work under both", async () => {
    if (!appPod || !clientPid) throw new Error("no echo or client pod (an earlier test failed)");
    const podIp = json<{ status: { podIP: string } }>(["-n", APP_NS, "get", "pod", appPod.metadata.name]).status.podIP;
    const vip = json<{ spec: { clusterIP: string } }>(["-n", APP_NS, "get", "service", "echo"]).spec.clusterIP;
    // From the node itself: not in the mesh, plaintext, straight to the pod.
    const outside = () => echoCallStatus(undefined, `http://${podIp}:8080/`);
    expect(outside()).toBe("ok");
    kubectl(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "security.istio.io/v1",
        kind: "PeerAuthentication",
        metadata: { name: "default", namespace: APP_NS },
        spec: { mtls: { mode: "STRICT" } },
      }),
    );
    const t0 = Date.now();
    await waitFor("STRICT refusing the plaintext client", async () => (outside() === "refused" ? true : undefined), {
      timeoutMs: 30_000,
    });
    measured["PeerAuthentication STRICT applied → plaintext refused"] = `${((Date.now() - t0) / 1000).toFixed(1)} s`;
    expect(echoCall(clientPid, `http://${vip}:80/`)).toMatch(/StatusCode=200/);
    kubectl(["-n", APP_NS, "delete", "peerauthentication", "default"]);
    await waitFor("PERMISSIVE again", async () => (outside() === "ok" ? true : undefined), { timeoutMs: 30_000 });
  });

  test("scaling echo up and down reaches the client's Envoy: new endpoints get traffic, removed ones none", async () => {
    if (!clientPid) throw new Error("no client pod (an earlier test failed)");
    const pid = clientPid;
    const vip = json<{ spec: { clusterIP: string } }>(["-n", APP_NS, "get", "service", "echo"]).spec.clusterIP;
    /** The echo pods that answered `calls` HTTP calls from the client, by hostname. */
    const answeredBy = (calls: number) => {
      const seen = new Map<string, number>();
      for (let i = 0; i < calls; i++) {
        const host = /Hostname=(\S+)/.exec(echoCall(pid, `http://${vip}:80/`))?.[1] ?? "none";
        seen.set(host, (seen.get(host) ?? 0) + 1);
      }
      return seen;
    };
    /** The endpoints of echo's port-80 cluster in the client's Envoy (its admin /clusters). */
    const clientEndpoints = () =>
      new Set(
        [
          ...envoyAdmin(pid, "/clusters").matchAll(
            new RegExp(`^outbound\\|80\\|\\|echo\\.${APP_NS}\\.svc\\.cluster\\.local::([\\d.]+):8080::`, "gm"),
          ),
        ].map((m) => m[1]),
      );
    const readyIps = () =>
      new Set(
        podsOf(APP_NS, "app=echo")
          .filter(isReady)
          .map((p) => json<{ status: { podIP: string } }>(["-n", APP_NS, "get", "pod", p.metadata.name]).status.podIP),
      );
    const sameSet = (a: Set<string | undefined>, b: Set<string>) => a.size === b.size && [...b].every((x) => a.has(x));

    kubectl(["-n", APP_NS, "scale", "deployment", "echo", "--replicas=3"]);
    const up = await waitForPods(APP_NS, "app=echo", 3, isReady, "3 ready echo pods");
    const t0 = Date.now();
    await waitFor(
      "the client's Envoy to list the 3 echo pods",
      async () => (sameSet(clientEndpoints(), readyIps()) ? true : undefined),
      {
        timeoutMs: 30_000,
      },
    );
    measured["echo scaled 1 → 3: all Ready → endpoints in the client's Envoy"] = `${((Date.now() - t0) / 1000).toFixed(1)} s`;
    // Round robin over 3 endpoints: 30 calls reach every pod.
    const spread = answeredBy(30);
    expect([...spread.keys()].sort()).toEqual(up.map((p) => p.metadata.name).sort());

    kubectl(["-n", APP_NS, "scale", "deployment", "echo", "--replicas=1"]);
    const t1 = Date.now();
    // The two pods that go stop being ready endpoints as soon as they start terminating.
    await waitFor("the client's Envoy to list one echo endpoint", async () => (clientEndpoints().size === 1 ? true : undefined));
    measured["echo scaled 3 → 1 → the client's Envoy down to 1 endpoint"] = `${((Date.now() - t1) / 1000).toFixed(1)} s`;
    const remaining = await waitFor(
      "one echo pod left",
      async () => {
        const pods = podsOf(APP_NS, "app=echo");
        return pods.length === 1 && isReady(pods[0] as Pod) ? pods[0] : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    expect(sameSet(clientEndpoints(), readyIps())).toBe(true);
    // Every call now lands on the pod that is left.
    expect([...answeredBy(20).entries()]).toEqual([[remaining.metadata.name, 20]]);
  });

  test("ServiceEntries reach a pod through the client's Envoy: a TCP entry with static endpoints, an HTTP entry over a WorkloadEntry with mutual TLS", async () => {
    if (!clientPid) throw new Error("no client pod (an earlier test failed)");
    const pid = clientPid;
    const [echo] = podsOf(APP_NS, "app=echo").filter(isReady);
    const podIp = json<{ status: { podIP: string } }>(["-n", APP_NS, "get", "pod", echo?.metadata.name ?? ""]).status.podIP;
    const entries = [
      {
        apiVersion: "networking.istio.io/v1",
        kind: "ServiceEntry",
        metadata: { name: "ledger", namespace: APP_NS },
        spec: {
          hosts: ["ledger.mesh.test"],
          addresses: ["240.240.0.10"],
          location: "MESH_INTERNAL",
          resolution: "STATIC",
          ports: [{ number: 9090, name: "tcp", protocol: "TCP" }],
          endpoints: [{ address: podIp }],
        },
      },
      {
        apiVersion: "networking.istio.io/v1",
        kind: "ServiceEntry",
        metadata: { name: "legacy", namespace: APP_NS },
        spec: {
          hosts: ["legacy.mesh.test"],
          addresses: ["240.240.0.11"],
          location: "MESH_INTERNAL",
          resolution: "STATIC",
          ports: [{ number: 8080, name: "http", protocol: "HTTP" }],
          workloadSelector: { labels: { app: "legacy-vm" } },
        },
      },
      // A "VM" that is the echo pod: it has a sidecar, so clients send it mutual TLS.
      {
        apiVersion: "networking.istio.io/v1",
        kind: "WorkloadEntry",
        metadata: { name: "legacy-vm-1", namespace: APP_NS },
        spec: { address: podIp, labels: { app: "legacy-vm", "security.istio.io/tlsMode": "istio" }, serviceAccount: "default" },
      },
    ];
    const t0 = Date.now();
    kubectl(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: entries }));
    // Calls go out only once the client's Envoy has the entries' listeners and route: before
    // that its passthrough would send them towards 240.240.0.0/16, which the network guard drops.
    await waitFor("the client's Envoy to have the ServiceEntries' listeners and route", async () => {
      const dump = envoyAdmin(pid, "/config_dump?resource=dynamic_route_configs");
      const listeners = envoyAdmin(pid, "/listeners");
      return listeners.includes("240.240.0.10_9090") && listeners.includes("0.0.0.0_8080") && dump.includes("legacy.mesh.test")
        ? true
        : undefined;
    });
    measured["ServiceEntries applied → listeners and route in the client's Envoy"] = `${((Date.now() - t0) / 1000).toFixed(1)} s`;
    expect(echoCall(pid, "tcp://240.240.0.10:9090")).toMatch(new RegExp(`Hostname=${echo?.metadata.name}`));
    const http = echoCall(pid, "http://240.240.0.11:8080/");
    expect(http).toMatch(/StatusCode=200/);
    expect(http).toMatch(new RegExp(`X-Forwarded-Client-Cert:.*URI=spiffe://cluster.local/ns/${CLIENT_NS}/sa/default`, "i"));
    // The clusters, with the pod as the endpoint (from the static endpoint and the WorkloadEntry).
    const clusters = envoyAdmin(pid, "/clusters");
    expect(clusters).toContain(`outbound|9090||ledger.mesh.test::${podIp}:9090::`);
    expect(clusters).toContain(`outbound|8080||legacy.mesh.test::${podIp}:8080::`);
    kubectl(["delete", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: entries }));
  });

  test("no proxy rejected any configuration over the whole suite (istiod's pilot_total_xds_rejects)", () => {
    const metrics = kubectl(["get", "--raw", `/api/v1/namespaces/${CONTROL_PLANE_NS}/services/https:istiod:443/proxy/metrics`]);
    // The pushes happened (the counter exists) and none was rejected.
    expect(metrics).toMatch(/^pilot_xds_pushes\{type="cds"\} [1-9]/m);
    const rejects = [...metrics.matchAll(/^pilot_total_xds_rejects\{[^}]*\} (\d+)/gm)].map((m) => Number(m[1]));
    expect(rejects.reduce((a, b) => a + b, 0)).toBe(0);
  });

  test("rigger proxy-status and proxy-config show the proxies in sync and what istiod sends them", async () => {
    if (!appPod) throw new Error("no echo pod (an earlier test failed)");
    // In sync once the last push is acknowledged (a push may be in flight at any moment).
    const status = await waitFor("the echo proxy SYNCED on CDS, LDS, EDS and RDS", async () => {
      const out = riggerCli(["proxy-status"]);
      const row = out.split("\n").find((line) => line.startsWith(`${appPod?.metadata.name}.${APP_NS} `));
      return row?.split(/\s+/).slice(2, 6).join(" ") === "SYNCED SYNCED SYNCED SYNCED" ? out : undefined;
    });
    expect(status).toMatch(new RegExp(`^client-\\S+\\.${CLIENT_NS} `, "m"));
    const clusters = riggerCli(["proxy-config", "cluster", `${appPod.metadata.name}.${APP_NS}`]);
    expect(clusters).toMatch(new RegExp(`echo\\.${APP_NS}\\.svc\\.cluster\\.local\\s+80\\s+-\\s+outbound\\s+EDS`));
    expect(clusters).toMatch(/\s8080\s+-\s+inbound\s+ORIGINAL_DST/);
  });

  test("an image that was not imported fails to pull at once, on this machine, and says why", async () => {
    const image = "docker.io/library/not-imported:1.0";
    kubectl(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "missing-image", namespace: APP_NS, labels: { app: "missing-image" } },
        spec: { containers: [{ name: "app", image }] },
      }),
    );
    const message = await waitFor("the kubelet's pull failure", async () => {
      const [pod] = podsOf(APP_NS, "app=missing-image");
      const waiting = pod?.status.containerStatuses?.find((c) => c.name === "app")?.state?.waiting;
      return waiting?.reason === "ErrImagePull" || waiting?.reason === "ImagePullBackOff" ? whyNot(APP_NS, pod) : undefined;
    });
    expect(message).toContain(image);
    // The registry containerd was told to use for every host: a closed port on loopback.
    expect(message).toContain("127.0.0.1:9");
  });

  test("istiod's liveness probe (/healthz over HTTPS) answered the kubelet throughout: no restart", () => {
    const [istiod] = podsOf(CONTROL_PLANE_NS, "app=istiod");
    const discovery = istiod?.spec.containers.find((c) => c.name === "discovery");
    expect(discovery?.livenessProbe?.httpGet).toMatchObject({ path: "/healthz", port: 15017, scheme: "HTTPS" });
    // initialDelay 10 s, period 10 s, 3 failures: a probe that failed for this file's minutes would have restarted it.
    expect(istiod?.status.containerStatuses?.find((c) => c.name === "discovery")?.restartCount).toBe(0);
  });

  test("no packet left the machine", () => {
    expect(droppedPackets()).toBe(0);
  });
});
