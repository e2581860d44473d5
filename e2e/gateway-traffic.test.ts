// Traffic entering the mesh through a gateway on the real node: an IstioGateway's pod (upstream's
// proxyv2 in router mode, configured by Rigger's istiod), Istio Gateways selecting it and
// VirtualServices bound to them. A client on this machine (curl on the node, outside the mesh)
// calls the gateway pod's port; every test counts what came back (status codes, which backend
// version answered, redirect locations), never what was configured.
import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { runOnRealNode } from "./cluster/local-cluster.ts";
import { droppedPackets } from "./cluster/network.ts";
import { reportMeasurements } from "./support/kube.ts";
import {
  applyService,
  applyUntil as applyUntilSteady,
  cleanUpMesh,
  echoDeployment,
  injectedNamespace,
  installMesh,
  isReady,
  json,
  kubectl,
  waitForPods,
} from "./support/mesh-node.ts";

const APP = "gwt-app";
const OTHER = "gwt-other";
const EDGE = "gwt-edge";
const local = inject("localCluster");
const measured: Record<string, string> = {};
let gatewayIp = "";

interface Answer {
  code: number;
  version?: string;
  location?: string;
}

/** One request from the node to the gateway pod's port 80 with `host` as Host. */
function call(host: string, path: string, headers: string[] = []): Answer {
  const out = execFileSync(
    "curl",
    [
      "-s",
      "--max-time",
      "5",
      "-H",
      `Host: ${host}`,
      ...headers.flatMap((h) => ["-H", h]),
      "-D",
      "-",
      "-o",
      "-",
      `http://${gatewayIp}:80${path}`,
    ],
    { encoding: "utf8" },
  );
  const code = Number(/^HTTP\/[\d.]+ (\d+)/m.exec(out)?.[1] ?? 0);
  return {
    code,
    version: /ServiceVersion=(\S+)/.exec(out)?.[1],
    location: /^location: (\S+)/im.exec(out)?.[1],
  };
}

/** What `count` requests got: status codes and versions, counted. */
function tally(host: string, path: string, count = 10, headers: string[] = []): Record<string, number> {
  const seen: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const a = call(host, path, headers);
    const key = a.version ? `${a.code} ${a.version}` : String(a.code);
    seen[key] = (seen[key] ?? 0) + 1;
  }
  return seen;
}

/** Applies objects and waits until `observed` holds steadily; records how long the change took to show. */
async function applyUntil(what: string, objects: object[], observed: () => boolean): Promise<void> {
  const seconds = await applyUntilSteady(what, objects, observed);
  measured[`${what}: applied → first observed`] = `${seconds.toFixed(1)} s`;
}

const gateway = (name: string, namespace: string, servers: object[]) => ({
  apiVersion: "networking.istio.io/v1",
  kind: "Gateway",
  metadata: { name, namespace },
  spec: { selector: { istio: "ingressgateway" }, servers },
});

const virtualService = (name: string, namespace: string, spec: object) => ({
  apiVersion: "networking.istio.io/v1",
  kind: "VirtualService",
  metadata: { name, namespace },
  spec,
});

const only = (seen: Record<string, number>, key: string) => Object.keys(seen).join(",") === key;

describe.runIf(local)("traffic through an ingress gateway on the real node", () => {
  beforeAll(async () => {
    cleanUpMesh([APP, OTHER, EDGE]);
    await installMesh();
    injectedNamespace(APP);
    injectedNamespace(OTHER);
    kubectl(["apply", "-f", "-"], echoDeployment("backend", APP, ["--port=8080", "--version=v1"]));
    applyService("backend", APP, { app: "backend" }, [{ name: "http", port: 80, targetPort: 8080 }]);
    kubectl(["apply", "-f", "-"], echoDeployment("other", OTHER, ["--port=8080", "--version=v2"]));
    applyService("other", OTHER, { app: "other" }, [{ name: "http", port: 80, targetPort: 8080 }]);
    runOnRealNode(EDGE);
    kubectl(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "operator.rigger.dev/v1alpha1",
        kind: "IstioGateway",
        metadata: { name: "istio-ingressgateway", namespace: EDGE },
        // Images are imported, never pulled (`image: auto` would be pulled Always).
        spec: { replicas: 1, autoscaling: { enabled: false }, imagePullPolicy: "IfNotPresent" },
      }),
    );
    await waitForPods(APP, "app=backend", 1, isReady, "the backend Ready");
    await waitForPods(OTHER, "app=other", 1, isReady, "the other backend Ready");
    const [pod] = await waitForPods(EDGE, "istio=ingressgateway", 1, isReady, "the gateway pod Ready");
    if (!pod) throw new Error("no gateway pod");
    gatewayIp = json<{ status: { podIP: string } }>(["-n", EDGE, "get", "pod", pod.metadata.name]).status.podIP;
  }, 400_000);

  afterAll(() => {
    reportMeasurements("gateway traffic", measured);
    cleanUpMesh([APP, OTHER, EDGE]);
  }, 200_000);

  test("an HTTP server and a VirtualService bound to its Gateway: requests by Host reach the backends; other hosts 404", async () => {
    await applyUntil(
      "a Gateway on port 80 for shop.example.com and its VirtualService",
      [
        gateway("web-gw", APP, [{ port: { number: 80, name: "http", protocol: "HTTP" }, hosts: ["shop.example.com"] }]),
        virtualService("shop", APP, {
          hosts: ["shop.example.com"],
          gateways: ["web-gw"],
          http: [
            { match: [{ uri: { prefix: "/api" } }], route: [{ destination: { host: "backend" } }] },
            { match: [{ uri: { exact: "/old" } }], redirect: { uri: "/new" } },
            { route: [{ destination: { host: `other.${OTHER}.svc.cluster.local` } }] },
          ],
        }),
      ],
      () => only(tally("shop.example.com", "/api/items", 3), "200 v1"),
    );
    const seen = {
      api: tally("shop.example.com", "/api/items"),
      rest: tally("shop.example.com", "/elsewhere"),
      unknownHost: tally("nobody.example.com", "/api/items"),
    };
    const redirect = call("shop.example.com", "/old");
    measured["Host shop.example.com: /api, /elsewhere; Host nobody.example.com"] = JSON.stringify(seen);
    expect(seen).toEqual({ api: { "200 v1": 10 }, rest: { "200 v2": 10 }, unknownHost: { "404": 10 } });
    expect(redirect).toEqual({ code: 301, location: "http://shop.example.com/new", version: undefined });
  });

  test("httpsRedirect: a server's hosts answer with a redirect to https, routes or not", async () => {
    await applyUntil(
      "a Gateway server with httpsRedirect",
      [
        gateway("redirect-gw", EDGE, [
          {
            port: { number: 80, name: "http-secure", protocol: "HTTP" },
            hosts: ["secure.example.com"],
            tls: { httpsRedirect: true },
          },
        ]),
      ],
      () => call("secure.example.com", "/x").code === 301,
    );
    const answer = call("secure.example.com", "/account?id=1");
    measured["httpsRedirect: secure.example.com/account?id=1"] = JSON.stringify(answer);
    expect(answer).toEqual({ code: 301, location: "https://secure.example.com/account?id=1", version: undefined });
    // The other Gateway's host on the same port is untouched.
    expect(call("shop.example.com", "/api/1")).toEqual({ code: 200, version: "v1", location: undefined });
  });

  test("a VirtualService of another namespace binds <namespace>/<name>; a match naming the gateway applies there; weights split", async () => {
    await applyUntil(
      "a VirtualService in gwt-other bound to gwt-app/web-gw",
      [
        gateway("web-gw", APP, [
          { port: { number: 80, name: "http", protocol: "HTTP" }, hosts: ["shop.example.com", `${OTHER}/*.other.example.com`] },
        ]),
        virtualService("other", OTHER, {
          hosts: ["app.other.example.com"],
          gateways: [`${APP}/web-gw`, "mesh"],
          http: [
            {
              match: [{ headers: { "x-canary": { exact: "yes" } }, gateways: [`${APP}/web-gw`] }],
              route: [{ destination: { host: `backend.${APP}.svc.cluster.local` } }],
            },
            {
              route: [
                { destination: { host: `backend.${APP}.svc.cluster.local` }, weight: 80 },
                { destination: { host: "other" }, weight: 20 },
              ],
            },
          ],
        }),
      ],
      () => call("app.other.example.com", "/", ["x-canary: yes"]).version === "v1",
    );
    const canary = tally("app.other.example.com", "/", 10, ["x-canary: yes"]);
    const split = tally("app.other.example.com", "/", 200);
    measured["app.other.example.com: x-canary: yes; 200 calls at 80/20"] = JSON.stringify({ canary, split });
    expect(canary).toEqual({ "200 v1": 10 });
    expect((split["200 v1"] ?? 0) + (split["200 v2"] ?? 0)).toBe(200);
    // 80/20 of 200: 40 expected on v2; well within 20..60 unless the split is not applied.
    expect(split["200 v2"] ?? 0).toBeGreaterThanOrEqual(20);
    expect(split["200 v2"] ?? 0).toBeLessThanOrEqual(60);
    // A host the server does not take (the VirtualService's namespace only gets *.other.example.com).
    expect(tally("app.else.example.com", "/", 3)).toEqual({ "404": 3 });
  });

  test("no packet left the machine", () => {
    expect(droppedPackets()).toBe(0);
  });
});
