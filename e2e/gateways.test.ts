// Gateways on the real cluster (operator in --local mode, revisions as real istiod processes):
// an IstioGateway becomes an injected router-mode Deployment with its Service, RoleBinding,
// PDB and HPA; the upstream Gateway API CRDs (from the sigs.k8s.io/gateway-api module),
// installed while the operator runs, bring GatewayClass istio, and Gateways of that class get
// <gateway>-istio objects and Accepted/Programmed/addresses; moving the revision tag both
// gateways use rolls them a pod at a time (sampled throughout: ready pods never drop below
// the wanted count); deleting either kind of gateway removes what it owned.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { type V1Pod, Watch } from "@kubernetes/client-node";
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import { binaries } from "./cluster/local-cluster.ts";
import { kubeClients, reportMeasurements, uniqueName, waitFor } from "./support/kube.ts";
import { type RunningOperator, startOperatorProcess, tailOf } from "./support/operator.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const controlPlaneNs = uniqueName("rigger-gw-cp");
const gatewayNs = uniqueName("rigger-gw");
const istioName = uniqueName("gwmesh");
const revisionA = `${istioName}-v1-27-8`;
const revisionB = `${istioName}-v1-27-9`;
const tagName = uniqueName("gw-stable");
const { core, apps, kc } = kubeClients();
let operator: RunningOperator;
const measured: Record<string, string> = {};

function kubectl(args: string[], input?: string) {
  return spawnSync(binaries.kubectl, ["--kubeconfig", inject("kubeconfig"), ...args], { input, encoding: "utf8" });
}

function ok(args: string[], input?: string): string {
  const result = kubectl(args, input);
  if (result.status !== 0) throw new Error(`kubectl ${args.join(" ")}: ${result.stderr}\n${tailOf(operator?.logFile ?? "")}`);
  return result.stdout;
}

function apply(yaml: string) {
  ok(["apply", "-f", "-"], yaml);
}

function jsonpath(resource: string[], path: string): string {
  return kubectl(["get", ...resource, "-o", `jsonpath=${path}`]).stdout;
}

/** A condition's field (reason, message, status, lastTransitionTime) of a namespaced object in the gateway namespace. */
function conditionField(resource: string, name: string, type: string, field: string): string {
  return jsonpath(["-n", gatewayNs, resource, name], `{.status.conditions[?(@.type=="${type}")].${field}}`);
}

async function waitForReason(resource: string, name: string, type: string, reason: string): Promise<void> {
  await waitFor(`${resource} ${name}: ${type} reason ${reason}`, async () =>
    conditionField(resource, name, type, "reason") === reason ? true : undefined,
  );
}

/** The mesh at `version`: RevisionBased, so a new version is a new revision beside the old. */
function istioAt(version: string) {
  apply(`apiVersion: operator.rigger.dev/v1alpha1
kind: Istio
metadata: {name: ${istioName}}
spec:
  version: ${version}
  namespace: ${controlPlaneNs}
  updateStrategy: {type: RevisionBased, inactiveRevisionDeletionGracePeriodSeconds: 600}
`);
}

function tagTo(revision: string) {
  apply(`apiVersion: operator.rigger.dev/v1alpha1
kind: IstioRevisionTag
metadata: {name: ${tagName}}
spec: {targetRef: {kind: IstioRevision, name: ${revision}}}
`);
}

const live = (p: V1Pod) => !p.metadata?.deletionTimestamp;
const ready = (p: V1Pod) => live(p) && (p.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");

beforeAll(async () => {
  ok(["apply", "-f", `${root}manifests/install.yaml`]);
  ok(["wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"]);
  // The Gateway API arrives while the operator runs (a reused cluster may have it from an earlier run).
  kubectl(["delete", "-f", binaries.gatewayApiCrds, "--ignore-not-found", "--wait=true", "--timeout=60s"]);
  operator = await startOperatorProcess("gateways", uniqueName("rigger-gw-lease"));
  await core.createNamespace({ body: { metadata: { name: gatewayNs } } });
  istioAt("1.27.8");
  ok(["wait", "--for=condition=Ready", "--timeout=90s", `istio/${istioName}`]);
  tagTo(revisionA);
  await waitFor("the tag to point at revision A", async () =>
    jsonpath(["istiorevisiontag", tagName], "{.status.istioRevision}") === revisionA ? true : undefined,
  );
});

afterAll(async () => {
  kubectl(["delete", "namespace", gatewayNs, "--wait=false"]);
  kubectl(["delete", "istiorevisiontag", tagName, "--ignore-not-found"]);
  kubectl(["delete", "istio", istioName, "--ignore-not-found", "--wait=true", "--timeout=60s"]);
  await operator?.stop();
  reportMeasurements("gateways", measured);
});

test("an IstioGateway: injected router-mode Deployment Available, LoadBalancer Service, RoleBinding, PDB, HPA", async () => {
  const started = Date.now();
  apply(`apiVersion: operator.rigger.dev/v1alpha1
kind: IstioGateway
metadata: {name: istio-ingressgateway, namespace: ${gatewayNs}}
spec:
  revision: ${tagName}
  replicas: 2
  autoscaling: {enabled: false}
---
apiVersion: operator.rigger.dev/v1alpha1
kind: IstioGateway
metadata: {name: istio-egressgateway, namespace: ${gatewayNs}}
spec: {type: egress, revision: ${tagName}}
`);
  ok(["-n", gatewayNs, "wait", "--for=condition=Ready", "--timeout=90s", "istiogateway/istio-ingressgateway"]);
  measured["IstioGateway apply → Ready (2 pods)"] = `${((Date.now() - started) / 1000).toFixed(1)} s`;
  const deployment = await apps.readNamespacedDeployment({ name: "istio-ingressgateway", namespace: gatewayNs });
  expect(deployment.status?.availableReplicas).toBe(2);
  expect(deployment.spec?.strategy?.rollingUpdate).toEqual({ maxUnavailable: 0, maxSurge: 1 });
  const pods = (await core.listNamespacedPod({ namespace: gatewayNs, labelSelector: "istio=ingressgateway" })).items.filter(live);
  expect(pods).toHaveLength(2);
  for (const pod of pods) {
    // Injected by revision A through the tag, with the gateway template.
    expect(pod.metadata?.annotations?.["istio.io/rev"]).toBe(revisionA);
    expect(pod.spec?.initContainers ?? []).toEqual([]);
    const proxy = pod.spec?.containers.find((c) => c.name === "istio-proxy");
    expect(proxy?.image).toBe("docker.io/istio/proxyv2:1.27.8");
    expect(proxy?.args?.slice(0, 2)).toEqual(["proxy", "router"]);
    expect(proxy?.env?.find((e) => e.name === "CA_ADDR")?.value).toBe(`istiod-${revisionA}.${controlPlaneNs}.svc:15012`);
  }
  const service = await core.readNamespacedService({ name: "istio-ingressgateway", namespace: gatewayNs });
  expect(service.spec?.type).toBe("LoadBalancer");
  expect(service.spec?.ports?.map((p) => `${p.name}:${p.port}`)).toEqual(["status-port:15021", "http2:80", "https:443"]);
  expect(service.spec?.selector).toEqual({ app: "istio-ingressgateway", istio: "ingressgateway" });
  expect(jsonpath(["-n", gatewayNs, "rolebinding", "istio-ingressgateway"], "{.roleRef.name}")).toBe("rigger-gateway-secrets");
  expect(jsonpath(["-n", gatewayNs, "pdb", "istio-ingressgateway"], "{.spec.minAvailable}")).toBe("1");
  expect(kubectl(["-n", gatewayNs, "get", "hpa", "istio-ingressgateway"]).status).not.toBe(0);
  const status = JSON.parse(ok(["-n", gatewayNs, "get", "istiogateway", "istio-ingressgateway", "-o", "json"])).status;
  expect(status).toMatchObject({
    state: "Healthy",
    revision: revisionA,
    replicas: 2,
    readyReplicas: 2,
    addresses: [{ type: "Hostname", value: `istio-ingressgateway.${gatewayNs}.svc.cluster.local` }],
  });
  // The egress gateway: ClusterIP, autoscaled (the HPA holds its replicas).
  ok(["-n", gatewayNs, "wait", "--for=condition=Ready", "--timeout=60s", "istiogateway/istio-egressgateway"]);
  expect(jsonpath(["-n", gatewayNs, "service", "istio-egressgateway"], "{.spec.type}")).toBe("ClusterIP");
  expect(jsonpath(["-n", gatewayNs, "hpa", "istio-egressgateway"], "{.spec.maxReplicas}")).toBe("5");
});

test("bad input: an unknown revision is named in the status; impossible autoscaling is refused at apply", async () => {
  apply(`apiVersion: operator.rigger.dev/v1alpha1
kind: IstioGateway
metadata: {name: lost, namespace: ${gatewayNs}}
spec: {revision: no-such-revision}
`);
  await waitForReason("istiogateway", "lost", "Reconciled", "RevisionNotFound");
  expect(conditionField("istiogateway", "lost", "Reconciled", "message")).toBe(
    "no IstioRevision or IstioRevisionTag named no-such-revision",
  );
  expect(kubectl(["-n", gatewayNs, "get", "deployment", "lost"]).status).not.toBe(0);
  ok(["-n", gatewayNs, "delete", "istiogateway", "lost"]);
  // Objects the apiserver refuses: the status names the object and the reason, and nothing is applied.
  apply(`apiVersion: operator.rigger.dev/v1alpha1
kind: IstioGateway
metadata: {name: clash, namespace: ${gatewayNs}}
spec: {revision: ${tagName}, labels: {team: "not a label value!"}}
`);
  await waitForReason("istiogateway", "clash", "Reconciled", "Invalid");
  const message = conditionField("istiogateway", "clash", "Reconciled", "message");
  expect(message).toContain('Deployment clash: Deployment.apps "clash" is invalid');
  expect(message).toContain('Invalid value: "not a label value!"');
  for (const kind of ["serviceaccount", "rolebinding", "deployment", "service"])
    expect(kubectl(["-n", gatewayNs, "get", kind, "clash"]).status, `${kind} clash`).not.toBe(0);
  ok(["-n", gatewayNs, "delete", "istiogateway", "clash"]);

  const refused = kubectl(
    ["apply", "-f", "-"],
    `apiVersion: operator.rigger.dev/v1alpha1
kind: IstioGateway
metadata: {name: upside-down, namespace: ${gatewayNs}}
spec: {autoscaling: {minReplicas: 5, maxReplicas: 2}}
`,
  );
  expect(refused.status).not.toBe(0);
  expect(refused.stderr).toContain("autoscaling.minReplicas must not exceed maxReplicas");
  const twice = kubectl(
    ["apply", "-f", "-"],
    `apiVersion: operator.rigger.dev/v1alpha1
kind: IstioGateway
metadata: {name: twice, namespace: ${gatewayNs}}
spec: {service: {ports: [{name: http, port: 80}, {name: http-again, port: 80}]}}
`,
  );
  expect(twice.status).not.toBe(0);
  expect(twice.stderr).toContain("service ports must have distinct port numbers");
});

test("Gateway API CRDs installed while the operator runs → GatewayClass istio; a Gateway gets <name>-istio and its status", async () => {
  let started = Date.now();
  ok(["apply", "--server-side", "-f", binaries.gatewayApiCrds]);
  ok(["wait", "--for=condition=Established", "--timeout=60s", "crd", "gateways.gateway.networking.k8s.io"]);
  await waitFor("GatewayClass istio", async () => (kubectl(["get", "gatewayclass", "istio"]).status === 0 ? true : undefined));
  ok(["wait", "--for=condition=Accepted", "--timeout=30s", "gatewayclass/istio"]);
  measured["Gateway API CRDs applied → GatewayClass istio Accepted"] = `${((Date.now() - started) / 1000).toFixed(1)} s`;
  expect(jsonpath(["gatewayclass", "istio"], "{.spec.controllerName}")).toBe("istio.io/gateway-controller");

  started = Date.now();
  apply(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: edge
  namespace: ${gatewayNs}
  labels: {istio.io/rev: ${tagName}}
spec:
  gatewayClassName: istio
  listeners:
  - {name: http, port: 80, protocol: HTTP}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: internal
  namespace: ${gatewayNs}
  labels: {istio.io/rev: ${tagName}}
  annotations: {gateway.istio.io/name-override: front-door, networking.istio.io/service-type: ClusterIP}
spec:
  gatewayClassName: istio
  listeners:
  - {name: http, port: 8080, protocol: HTTP}
`);
  ok(["-n", gatewayNs, "wait", "--for=condition=Accepted", "--timeout=30s", "gateway/edge"]);
  await waitFor("deployment edge-istio available", async () =>
    jsonpath(["-n", gatewayNs, "deployment", "edge-istio"], "{.status.availableReplicas}") === "1" ? true : undefined,
  );
  measured["Gateway apply → edge-istio Deployment available"] = `${((Date.now() - started) / 1000).toFixed(1)} s`;
  for (const kind of ["serviceaccount", "deployment", "service"]) {
    const obj = JSON.parse(ok(["-n", gatewayNs, "get", kind, "edge-istio", "-o", "json"]));
    expect(obj.metadata.labels["gateway.networking.k8s.io/gateway-name"]).toBe("edge");
    expect(obj.metadata.ownerReferences).toMatchObject([{ kind: "Gateway", name: "edge" }]);
  }
  expect(jsonpath(["-n", gatewayNs, "deployment", "edge-istio"], "{.metadata.labels.gateway\\.istio\\.io/managed}")).toBe(
    "istio.io-gateway-controller",
  );
  expect(jsonpath(["-n", gatewayNs, "service", "edge-istio"], "{.spec.type}")).toBe("LoadBalancer");

  // No load balancer on this cluster: AddressNotAssigned, with the Service's hostname meanwhile.
  await waitForReason("gateway", "edge", "Programmed", "AddressNotAssigned");
  expect(jsonpath(["-n", gatewayNs, "gateway", "edge"], "{.status.addresses[0].value}")).toBe(
    `edge-istio.${gatewayNs}.svc.cluster.local`,
  );
  // A load balancer assigns an address (written as a cloud controller would; nothing dials it).
  ok([
    "-n",
    gatewayNs,
    "patch",
    "service",
    "edge-istio",
    "--subresource=status",
    "--type=merge",
    "-p",
    '{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.10"}]}}}',
  ]);
  ok(["-n", gatewayNs, "wait", "--for=condition=Programmed", "--timeout=30s", "gateway/edge"]);
  expect(JSON.parse(ok(["-n", gatewayNs, "get", "gateway", "edge", "-o", "json"])).status.addresses).toEqual([
    { type: "IPAddress", value: "192.0.2.10" },
  ]);

  // Listener status: route kinds, conditions, and an HTTPRoute counted once it names the listener.
  expect(jsonpath(["-n", gatewayNs, "gateway", "edge"], "{.status.listeners[0].supportedKinds[*].kind}")).toBe(
    "HTTPRoute GRPCRoute",
  );
  apply(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop, namespace: ${gatewayNs}}
spec:
  parentRefs: [{name: edge, sectionName: http}]
`);
  await waitFor("edge's listener http to count the HTTPRoute", async () =>
    jsonpath(["-n", gatewayNs, "gateway", "edge"], "{.status.listeners[0].attachedRoutes}") === "1" ? true : undefined,
  );

  // A Service type the apiserver refuses: Programmed=False Invalid, naming it; nothing deployed.
  apply(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: odd
  namespace: ${gatewayNs}
  labels: {istio.io/rev: ${tagName}}
  annotations: {networking.istio.io/service-type: Bogus}
spec:
  gatewayClassName: istio
  listeners: [{name: http, port: 80, protocol: HTTP}]
`);
  await waitForReason("gateway", "odd", "Programmed", "Invalid");
  expect(conditionField("gateway", "odd", "Programmed", "message")).toContain(
    'Service odd-istio: Service "odd-istio" is invalid: spec.type: Unsupported value: "Bogus"',
  );
  expect(kubectl(["-n", gatewayNs, "get", "deployment", "odd-istio"]).status).not.toBe(0);
  ok(["-n", gatewayNs, "delete", "gateway", "odd"]);

  // name-override and service-type: front-door, ClusterIP, Programmed with the Service's hostname.
  ok(["-n", gatewayNs, "wait", "--for=condition=Programmed", "--timeout=30s", "gateway/internal"]);
  expect(jsonpath(["-n", gatewayNs, "service", "front-door"], "{.spec.type}")).toBe("ClusterIP");
  expect(kubectl(["-n", gatewayNs, "get", "deployment", "front-door"]).status).toBe(0);
  expect(jsonpath(["-n", gatewayNs, "gateway", "internal"], "{.status.addresses[0]}")).toBe(
    JSON.stringify({ type: "Hostname", value: `front-door.${gatewayNs}.svc.cluster.local` }),
  );
});

test("moving the tag rolls both gateways a pod at a time: ready pods never below the wanted count", async () => {
  istioAt("1.27.9");
  ok(["wait", "--for=condition=Ready", "--timeout=90s", `istiorevision/${revisionB}`]);

  // Every pod event of both gateways, from a watch: after each one, count what is ready.
  const sample = { events: 0, minReadyIngress: Number.POSITIVE_INFINITY, maxIngress: 0, minReadyEdge: Number.POSITIVE_INFINITY };
  const pods = new Map<string, V1Pod>();
  const count = (selector: (p: V1Pod) => boolean, filter: (p: V1Pod) => boolean) =>
    [...pods.values()].filter((p) => selector(p) && filter(p)).length;
  const isIngress = (p: V1Pod) => p.metadata?.labels?.istio === "ingressgateway";
  const isEdge = (p: V1Pod) => p.metadata?.labels?.["gateway.networking.k8s.io/gateway-name"] === "edge";
  const watch = await new Watch(kc).watch(
    `/api/v1/namespaces/${gatewayNs}/pods`,
    {},
    (type: string, pod: V1Pod) => {
      const name = pod.metadata?.name ?? "";
      if (type === "DELETED") pods.delete(name);
      else pods.set(name, pod);
      sample.events++;
      sample.minReadyIngress = Math.min(sample.minReadyIngress, count(isIngress, ready));
      sample.maxIngress = Math.max(sample.maxIngress, count(isIngress, live));
      sample.minReadyEdge = Math.min(sample.minReadyEdge, count(isEdge, ready));
    },
    () => {},
  );
  // The watch starts with an ADDED event per existing pod: wait until both gateways are all there.
  await waitFor("the watch to have seen the gateways' pods", async () =>
    count(isIngress, ready) === 2 && count(isEdge, ready) === 1 ? true : undefined,
  );
  sample.minReadyIngress = 2;
  sample.minReadyEdge = 1;

  const readySince = () => conditionField("istiogateway", "istio-ingressgateway", "Ready", "lastTransitionTime");
  const readyBefore = readySince();
  const moved = Date.now();
  tagTo(revisionB);
  const onB = (pods: V1Pod[], annotation: string) =>
    pods.length > 0 && pods.every((p) => p.metadata?.annotations?.[annotation] === revisionB);
  await waitFor(
    "every ingress gateway pod on revision B, and the rollout finished",
    async () => {
      const pods = (await core.listNamespacedPod({ namespace: gatewayNs, labelSelector: "istio=ingressgateway" })).items;
      const status = (await apps.readNamespacedDeployment({ name: "istio-ingressgateway", namespace: gatewayNs })).status;
      return pods.length === 2 && onB(pods, "istio.io/rev") && status?.updatedReplicas === 2 && status?.availableReplicas === 2
        ? true
        : undefined;
    },
    { timeoutMs: 90_000, intervalMs: 100 },
  );
  measured["tag move → IstioGateway rolled to B (2 pods)"] = `${((Date.now() - moved) / 1000).toFixed(1)} s`;
  await waitFor(
    "the Gateway API gateway's pod on revision B",
    async () => {
      const pods = (
        await core.listNamespacedPod({ namespace: gatewayNs, labelSelector: "gateway.networking.k8s.io/gateway-name=edge" })
      ).items;
      return pods.length === 1 && onB(pods, "istio.io/rev") ? true : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  );
  measured["tag move → edge-istio rolled to B"] = `${((Date.now() - moved) / 1000).toFixed(1)} s`;
  watch.abort();
  measured["rollout, every pod event watched"] =
    `${sample.events} events; fewest ready ingress pods ${sample.minReadyIngress} of 2, most ingress pods ${sample.maxIngress}; fewest ready edge pods ${sample.minReadyEdge} of 1`;
  expect(sample.minReadyIngress).toBe(2);
  expect(sample.maxIngress).toBe(3); // surge: a new pod before an old one goes
  expect(sample.minReadyEdge).toBe(1);
  // The new pods were injected by B's control plane.
  const pod = (await core.listNamespacedPod({ namespace: gatewayNs, labelSelector: "istio=ingressgateway" })).items.find(live);
  expect(pod?.spec?.containers.find((c) => c.name === "istio-proxy")?.image).toBe("docker.io/istio/proxyv2:1.27.9");
  expect(jsonpath(["-n", gatewayNs, "istiogateway", "istio-ingressgateway"], "{.status.revision}")).toBe(revisionB);
  // The IstioGateway stayed Ready through the roll, and said what it did.
  expect(readySince()).toBe(readyBefore);
  const events = ok([
    "-n",
    gatewayNs,
    "get",
    "events",
    "--field-selector",
    "involvedObject.kind=IstioGateway,involvedObject.name=istio-ingressgateway",
    "-o",
    "jsonpath={range .items[*]}{.reason}: {.message}{'\\n'}{end}",
  ]);
  expect(events).toContain(`RevisionChanged: rolling from ${revisionA} to ${revisionB}, one pod at a time`);
  expect(events).not.toContain("NotAvailable");
});

test("deleting an IstioGateway or a Gateway removes everything it owned", async () => {
  const started = Date.now();
  ok(["-n", gatewayNs, "delete", "istiogateway", "istio-ingressgateway", "istio-egressgateway"]);
  ok(["-n", gatewayNs, "delete", "gateway", "edge", "internal"]);
  for (const name of ["istio-ingressgateway", "istio-egressgateway", "edge-istio", "front-door"]) {
    ok(["-n", gatewayNs, "wait", "--for=delete", "--timeout=60s", "deployment", name]);
    ok(["-n", gatewayNs, "wait", "--for=delete", "--timeout=60s", "service", name]);
    ok(["-n", gatewayNs, "wait", "--for=delete", "--timeout=60s", "serviceaccount", name]);
  }
  measured["delete gateways → owned objects gone"] = `${((Date.now() - started) / 1000).toFixed(1)} s`;
  const left = ok(["-n", gatewayNs, "get", "rolebinding,pdb,hpa,pods", "-o", "name"]).trim();
  await waitFor("pods gone too", async () =>
    ok(["-n", gatewayNs, "get", "rolebinding,pdb,hpa,pods", "-o", "name"]).trim() === "" ? true : undefined,
  );
  expect(left.split("\n").filter((l) => /rolebinding|poddisruptionbudget|horizontalpodautoscaler/.test(l))).toEqual([]);
});
