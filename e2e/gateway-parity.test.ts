// Parity with upstream for the Gateway API's automated deployment: the pinned release's
// istiod (pilot-discovery, revision "parity") runs against the cluster and deploys a Gateway
// labelled istio.io/rev=parity the way it does in production; Rigger renders the same Gateway
// (in another namespace, nothing deploys it there) and the apiserver defaults Rigger's objects
// in a dry run. The two sets are compared field by field; the only differences allowed are
// listed below with their reasons. Then the status upstream writes for the Gateway (with an
// HTTPRoute attached) is compared with the one Rigger computes for it.
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import { listenerStatuses, programmedStatus, type ServiceState } from "../controllers/gateways/gateway-status.ts";
import { type Gateway, renderKubeGateway } from "../controllers/gateways/kube-gateway.ts";
import { objectPath } from "../kube/apply.ts";
import { rawClient } from "../kube/raw-client.ts";
import { versions } from "../versions.ts";
import { httpRouteParentStatuses } from "../xds/generate/gateway-api.ts";
import { binaries } from "./cluster/local-cluster.ts";
import { kubeClients, uniqueName, waitFor } from "./support/kube.ts";
import { startUpstreamIstiod, type UpstreamIstiod } from "./support/upstream-istiod.ts";

const REVISION = "parity";
const controlPlaneNs = uniqueName("rigger-gwparity-cp");
const upstreamNs = uniqueName("rigger-gwparity-up");
const riggerNs = uniqueName("rigger-gwparity-rg");
const { kc } = kubeClients();
const client = rawClient(kc);
let upstream: UpstreamIstiod | undefined;

// biome-ignore lint/suspicious/noExplicitAny: Kubernetes objects as plain JSON
type Json = any;

function kubectl(args: string[], input?: string) {
  return spawnSync(binaries.kubectl, ["--kubeconfig", inject("kubeconfig"), ...args], { input, encoding: "utf8" });
}

function ok(args: string[], input?: string): string {
  const result = kubectl(args, input);
  if (result.status !== 0) throw new Error(`kubectl ${args.join(" ")}: ${result.stderr}`);
  return result.stdout;
}

function gatewayYaml(namespace: string, revision: string): string {
  return `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: edge
  namespace: ${namespace}
  labels: {istio.io/rev: ${revision}}
spec:
  gatewayClassName: istio
  infrastructure:
    labels: {team: payments}
    annotations: {example.com/owner: payments}
  listeners:
  - {name: http, port: 80, protocol: HTTP}
  - {name: grpc, port: 9000, protocol: HTTP}
  - {name: tcp, port: 9100, protocol: TCP}
`;
}

/** What both sides' objects are compared as: no server bookkeeping, no namespace, no generated values. */
function normalize(obj: Json): Json {
  const out = JSON.parse(JSON.stringify(obj).replaceAll(upstreamNs, "NS").replaceAll(riggerNs, "NS"));
  const m = out.metadata;
  for (const f of ["uid", "resourceVersion", "creationTimestamp", "managedFields", "generation", "namespace"]) delete m[f];
  for (const ref of m.ownerReferences ?? []) delete ref.uid;
  delete m.annotations?.["deployment.kubernetes.io/revision"];
  if (m.annotations && Object.keys(m.annotations).length === 0) delete m.annotations;
  delete out.status;
  if (out.kind === "Service") {
    for (const f of ["clusterIP", "clusterIPs", "healthCheckNodePort"]) delete out.spec[f];
    for (const p of out.spec.ports ?? []) delete p.nodePort;
  }
  if (out.kind === "ServiceAccount") delete out.secrets;
  return out;
}

/** Differences Rigger intends, applied to upstream's objects before comparing. */
const INTENDED: { kind: string; why: string; apply: (upstream: Json) => void }[] = [
  {
    kind: "Deployment",
    why: "a revision change rolls the gateway a pod at a time, never below the wanted count (istio#59959)",
    apply: (d) => {
      d.spec.strategy = { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } };
    },
  },
];

beforeAll(async () => {
  ok(["apply", "--server-side", "-f", binaries.gatewayApiCrds]);
  ok(["wait", "--for=condition=Established", "--timeout=60s", "crd", "gateways.gateway.networking.k8s.io"]);
  for (const name of [controlPlaneNs, upstreamNs, riggerNs])
    await client.create("/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name } });
  // The class both implementations serve (the operator creates it; no operator runs in this file).
  ok(
    ["apply", "-f", "-"],
    `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: istio}
spec: {controllerName: istio.io/gateway-controller}
`,
  );
  upstream = await startUpstreamIstiod(inject("kubeconfig"), controlPlaneNs, REVISION);
});

afterAll(async () => {
  await upstream?.stop();
  for (const name of [controlPlaneNs, upstreamNs, riggerNs]) kubectl(["delete", "namespace", name, "--wait=false"]);
});

test("a Gateway's ServiceAccount, Deployment and Service match what upstream istiod deploys", async () => {
  ok(["apply", "-f", "-"], gatewayYaml(upstreamNs, REVISION));
  const kinds = [
    ["ServiceAccount", "/api/v1", "serviceaccounts"],
    ["Deployment", "/apis/apps/v1", "deployments"],
    ["Service", "/api/v1", "services"],
  ] as const;
  const theirs = new Map<string, Json>();
  for (const [kind, prefix, resource] of kinds) {
    const obj = await waitFor(
      `upstream istiod to deploy ${kind} edge-istio (log: ${upstream?.log})`,
      () => client.get<Json>(`${prefix}/namespaces/${upstreamNs}/${resource}/edge-istio`).catch(() => undefined),
      { timeoutMs: 90_000 },
    );
    theirs.set(kind, obj);
  }

  // The same Gateway where no controller deploys it; Rigger's objects through the apiserver's defaulting (dry run).
  ok(["apply", "-f", "-"], gatewayYaml(riggerNs, "nobody-serves-this"));
  const gateway = await client.get<Gateway>(`/apis/gateway.networking.k8s.io/v1/namespaces/${riggerNs}/gateways/edge`);
  gateway.metadata.labels = { ...gateway.metadata.labels, "istio.io/rev": REVISION };
  const rendered = renderKubeGateway(gateway, {
    proxyImage: `docker.io/istio/proxyv2:${versions.istio}`,
    // Upstream's CA_ADDR names values.global.istioNamespace, which the release's values set to istio-system.
    istioNamespace: "istio-system",
    istiodService: `istiod-${REVISION}`,
    revision: REVISION,
    trustDomain: "cluster.local",
  });
  const differences: string[] = [];
  for (const obj of rendered) {
    const path = objectPath(obj as Json).replace(/\/[^/]+$/, "");
    const ours = normalize(await client.create<Json>(`${path}?dryRun=All`, obj));
    const expected = normalize(theirs.get(obj.kind as string));
    for (const d of INTENDED.filter((e) => e.kind === obj.kind)) {
      d.apply(expected);
      differences.push(`${obj.kind}: ${d.why}`);
    }
    expect.soft(ours, `${obj.kind} edge-istio`).toEqual(expected);
  }
  console.log(
    `gateway parity: 3 objects equal to upstream's after ${differences.length} intended difference(s):\n  ${differences.join("\n  ")}`,
  );
});

test("the Gateway's status says what upstream's says: Accepted, Programmed, listeners with kinds, routes and conditions", async () => {
  ok(
    ["apply", "-f", "-"],
    `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop, namespace: ${upstreamNs}}
spec:
  parentRefs: [{name: edge, sectionName: http}]
`,
  );
  const path = `/apis/gateway.networking.k8s.io/v1/namespaces/${upstreamNs}/gateways/edge`;
  const words = (c: Json) => ({ type: c.type, status: c.status, reason: c.reason, message: c.message });
  // Both sides read the same objects at one moment: upstream's status as it stands, and Rigger's
  // computed from the Gateway, its Service and the route. Upstream writes its status in more than
  // one update, so this waits (bounded) until it has settled on the answer Rigger gives; the
  // assertions below then show any difference that remains.
  const read = async () => {
    const gateway = await client.get<Json>(path);
    const service = await client.get<ServiceState>(`/api/v1/namespaces/${upstreamNs}/services/edge-istio`);
    const route = await client.get<Json>(`/apis/gateway.networking.k8s.io/v1/namespaces/${upstreamNs}/httproutes/shop`);
    const programmed = programmedStatus(service, gateway.spec.listeners);
    const ours = listenerStatuses({ name: "edge", namespace: upstreamNs }, gateway.spec.listeners, [
      { ...route, kind: "HTTPRoute" },
    ]);
    const upstreamStatus = gateway.status ?? {};
    const expected = {
      conditions: [{ type: "Accepted", status: "True", reason: "Accepted", message: "Resource accepted" }, programmed.condition],
      listeners: ours.map((l) => ({ ...l, conditions: l.conditions.map(words) })),
    };
    const actual = {
      conditions: (upstreamStatus.conditions ?? []).map(words),
      listeners: (upstreamStatus.listeners ?? []).map((l: Json) => ({ ...l, conditions: l.conditions.map(words) })),
    };
    return { upstreamStatus, programmed, expected, actual };
  };
  await waitFor(
    `upstream istiod to count the HTTPRoute on listener http (log: ${upstream?.log})`,
    async () => {
      const g = await client.get<Json>(path);
      return g.status?.listeners?.find((l: Json) => l.name === "http")?.attachedRoutes === 1 ? g : undefined;
    },
    { timeoutMs: 60_000 },
  );
  let seen = await read();
  for (let i = 0; i < 40 && JSON.stringify(seen.actual) !== JSON.stringify(seen.expected); i++) {
    await new Promise((r) => setTimeout(r, 250));
    seen = await read();
  }
  const { upstreamStatus, programmed } = seen;
  expect(seen.expected.conditions).toEqual(seen.actual.conditions);
  expect(seen.expected.listeners).toEqual(seen.actual.listeners);
  // Intended: upstream leaves status.addresses empty while the load balancer is pending; Rigger
  // reports the Service's cluster hostname meanwhile (what the gateway is reachable at in-cluster).
  expect(upstreamStatus.addresses ?? []).toEqual([]);
  expect(programmed.addresses).toEqual([{ type: "Hostname", value: `edge-istio.${upstreamNs}.svc.cluster.local` }]);
});

test("HTTPRoutes' status says what upstream's says: Accepted and ResolvedRefs, reasons and messages", async () => {
  const routes = {
    "all-listeners": "parentRefs: [{name: edge}]\n  rules: [{backendRefs: [{name: edge-istio, port: 80}]}]",
    "bad-section": "parentRefs: [{name: edge, sectionName: nope}]",
    "missing-backend": "parentRefs: [{name: edge, sectionName: http}]\n  rules: [{backendRefs: [{name: nope, port: 80}]}]",
    "other-namespace":
      "parentRefs: [{name: edge, sectionName: http}]\n  rules: [{backendRefs: [{name: kube-dns, namespace: kube-system, port: 53}]}]",
    "two-bad-rules":
      "parentRefs: [{name: edge, sectionName: http}]\n  rules: [{backendRefs: [{name: first-missing, port: 80}]}, {backendRefs: [{name: second-missing, port: 80}]}]",
    "extension-filter":
      "parentRefs: [{name: edge, sectionName: http}]\n  rules: [{filters: [{type: ExtensionRef, extensionRef: {group: example.com, kind: Plugin, name: p}}], backendRefs: [{name: edge-istio, port: 80}]}]",
  };
  for (const [name, spec] of Object.entries(routes))
    ok(
      ["apply", "-f", "-"],
      `apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: ${name}, namespace: ${upstreamNs}, labels: {istio.io/rev: ${REVISION}}}\nspec:\n  ${spec}\n`,
    );
  const words = (c: Json) => `${c.type}=${c.status} ${c.reason}: ${c.message}`;
  const gateway = await client.get<Json>(`/apis/gateway.networking.k8s.io/v1/namespaces/${upstreamNs}/gateways/edge`);
  const compare = async () => {
    const out: Record<string, { upstream: string[]; rigger: string[] }> = {};
    for (const name of Object.keys(routes)) {
      const route = await client.get<Json>(`/apis/gateway.networking.k8s.io/v1/namespaces/${upstreamNs}/httproutes/${name}`);
      const services = new Set<string>();
      for (const rule of route.spec.rules ?? [])
        for (const b of rule.backendRefs ?? []) {
          const ns = b.namespace ?? upstreamNs;
          if (await client.get(`/api/v1/namespaces/${ns}/services/${b.name}`).catch(() => undefined))
            services.add(`${ns}/${b.name}`);
        }
      const ours = httpRouteParentStatuses(
        { gateways: [gateway], httpRoutes: [route], services, domainSuffix: "cluster.local" },
        route,
      );
      const theirs = (route.status?.parents ?? []).filter((p: Json) => p.controllerName === "istio.io/gateway-controller");
      out[name] = {
        upstream: theirs.flatMap((p: Json) =>
          (p.conditions ?? []).filter((c: Json) => c.type !== "ResolvedWaypoints").map(words),
        ),
        rigger: ours.flatMap((p) => p.conditions.map(words)),
      };
    }
    return out;
  };
  // Upstream (revision "parity") writes status only for routes of its revision (the label), each
  // in its own time: wait (bounded) until it has one for every route.
  let seen = await compare();
  for (let i = 0; i < 120 && Object.values(seen).some((s) => s.upstream.length < 2); i++) {
    await new Promise((r) => setTimeout(r, 250));
    seen = await compare();
  }
  for (const [name, s] of Object.entries(seen)) expect.soft(s.rigger, `HTTPRoute ${name}`).toEqual(s.upstream);
  console.log(
    `route status parity:\n${Object.entries(seen)
      .map(([n, s]) => `  ${n}: ${s.upstream.join(" | ")}`)
      .join("\n")}`,
  );
});
