// The Gateway API controller, tested by the writes it makes (in-memory client): the `istio`
// GatewayClass while the CRDs exist, a Gateway's objects and status, nothing when converged,
// other classes left alone, a Gateway without a revision told why, and routes counted per
// listener from the route watches.
import { describe, expect, test } from "vitest";
import { REVISIONS_PATH } from "../../api/operator.ts";
import { RecordingClient } from "../../kube/recording-client.ts";
import { gatewayApiController } from "./gateway-api-controller.ts";

const API = "/apis/gateway.networking.k8s.io/v1";
const CRD = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gatewayclasses.gateway.networking.k8s.io";
const GATEWAY = `${API}/namespaces/edge/gateways/web`;

interface Status {
  conditions?: { type: string; status: string; reason: string; message: string }[];
  listeners?: { name: string; attachedRoutes: number }[];
  addresses?: { type: string; value: string }[];
}

function cluster(options: { crd?: boolean; revision?: boolean; className?: string } = {}) {
  const client = new RecordingClient();
  if (options.crd ?? true) client.put(CRD, { kind: "CustomResourceDefinition", metadata: { name: "gatewayclasses" } });
  if (options.revision ?? true)
    client.put(`${REVISIONS_PATH}/default`, {
      apiVersion: "operator.rigger.dev/v1alpha1",
      kind: "IstioRevision",
      metadata: { name: "default", uid: "uid-default" },
      spec: { namespace: "istio-system", version: "1.27.9", values: {} },
    });
  client.put(GATEWAY, {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "Gateway",
    metadata: { name: "web", namespace: "edge", uid: "uid-web", generation: 1 },
    spec: {
      gatewayClassName: options.className ?? "istio",
      listeners: [
        { name: "http", port: 80, protocol: "HTTP" },
        { name: "other", port: 8080, protocol: "HTTP", hostname: "other.example.test" },
      ],
    },
  });
  return client;
}

const statusOf = (client: RecordingClient, path = GATEWAY) => (client.objects.get(path) as { status?: Status }).status;
const conditionOf = (status: Status | undefined, type: string) => status?.conditions?.find((c) => c.type === type);

describe("gatewayApiController, by its writes", () => {
  test("the istio GatewayClass exists while the CRDs do, Accepted; nothing when converged", async () => {
    const client = cluster();
    const controller = gatewayApiController({ client });
    await controller.reconcile("gatewayclass");
    expect(client.writeLines()).toEqual([`apply ${API}/gatewayclasses/istio`, `apply ${API}/gatewayclasses/istio/status`]);
    expect(conditionOf(statusOf(client, `${API}/gatewayclasses/istio`), "Accepted")).toMatchObject({ status: "True" });
    client.writes.length = 0;
    await controller.reconcile("gatewayclass");
    expect(client.writeLines()).toEqual([]);

    const noCrds = cluster({ crd: false });
    await gatewayApiController({ client: noCrds }).reconcile("gatewayclass");
    expect(noCrds.writeLines()).toEqual([]);
  });

  test("a GatewayClass of that name owned by another controller is left alone", async () => {
    const client = cluster().put(`${API}/gatewayclasses/istio`, {
      kind: "GatewayClass",
      metadata: { name: "istio" },
      spec: { controllerName: "example.test/other-controller" },
    });
    await gatewayApiController({ client }).reconcile("gatewayclass");
    expect(client.writeLines()).toEqual([]);
  });

  test("a Gateway of class istio: its ServiceAccount, Deployment and Service, then its status; nothing when converged", async () => {
    const client = cluster();
    const controller = gatewayApiController({ client });
    await controller.reconcile("gatewayclass");
    client.writes.length = 0;
    await controller.reconcile("edge/web");
    const objects = [
      "/api/v1/namespaces/edge/serviceaccounts/web-istio",
      "/apis/apps/v1/namespaces/edge/deployments/web-istio",
      "/api/v1/namespaces/edge/services/web-istio",
    ];
    expect(client.writeLines()).toEqual([
      ...objects.map((p) => `apply-dry-run ${p}`),
      ...objects.map((p) => `apply ${p}`),
      `apply ${GATEWAY}/status`,
    ]);
    // Owned by the Gateway, so deleting it removes them.
    for (const path of objects)
      expect(
        (client.objects.get(path) as { metadata: { ownerReferences?: { uid: string }[] } }).metadata.ownerReferences?.[0]?.uid,
      ).toBe("uid-web");
    const status = statusOf(client);
    expect(conditionOf(status, "Accepted")).toMatchObject({ status: "True", reason: "Accepted" });
    expect(status?.listeners?.map((l) => [l.name, l.attachedRoutes])).toEqual([
      ["http", 0],
      ["other", 0],
    ]);
    client.writes.length = 0;
    await controller.reconcile("edge/web");
    expect(client.writeLines()).toEqual([]);
  });

  test("a Gateway of another class: no writes", async () => {
    const client = cluster({ className: "someone-else" }).put(`${API}/gatewayclasses/someone-else`, {
      kind: "GatewayClass",
      metadata: { name: "someone-else" },
      spec: { controllerName: "example.test/other-controller" },
    });
    await gatewayApiController({ client }).reconcile("edge/web");
    expect(client.writeLines()).toEqual([]);
  });

  test("a Gateway with no revision to run on: only its status, Programmed=False saying why", async () => {
    const client = cluster({ revision: false });
    const controller = gatewayApiController({ client });
    await controller.reconcile("gatewayclass");
    client.writes.length = 0;
    await controller.reconcile("edge/web");
    expect(client.writeLines()).toEqual([`apply ${GATEWAY}/status`]);
    expect(conditionOf(statusOf(client), "Programmed")).toMatchObject({
      status: "False",
      reason: "Pending",
      message: expect.stringContaining("no default revision"),
    });
  });

  test("routes from the route watches are counted on the listeners they attach to; a route moving away requeues its old parent", async () => {
    const client = cluster();
    const controller = gatewayApiController({ client });
    await controller.reconcile("gatewayclass");
    const httpRoutes = controller.watches.find((w) => w.path === `${API}/httproutes`);
    const route = (parent: string, section?: string) => ({
      metadata: { name: "shop", namespace: "edge" },
      spec: { parentRefs: [{ name: parent, ...(section ? { sectionName: section } : {}) }] },
    });
    // Its parent Gateway (listener counts), and its own status.
    expect(httpRoutes?.map("edge/shop", route("web", "http"), false)).toEqual(["edge/web", "route:edge/shop"]);
    await controller.reconcile("edge/web");
    expect(statusOf(client)?.listeners?.map((l) => [l.name, l.attachedRoutes])).toEqual([
      ["http", 1],
      ["other", 0],
    ]);
    // Moved to another Gateway: both are reconciled, and web counts it no more.
    expect(httpRoutes?.map("edge/shop", route("api"), false)).toEqual(["edge/web", "edge/api", "route:edge/shop"]);
    client.writes.length = 0;
    await controller.reconcile("edge/web");
    expect(client.writeLines()).toEqual([`apply ${GATEWAY}/status`]);
    expect(statusOf(client)?.listeners?.map((l) => l.attachedRoutes)).toEqual([0, 0]);
  });
});

describe("HTTPRoute status", () => {
  const ROUTE = `${API}/namespaces/edge/httproutes/shop`;
  const route = (backend: string) => ({
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "HTTPRoute",
    metadata: { name: "shop", namespace: "edge", generation: 2 },
    spec: {
      parentRefs: [{ name: "web", sectionName: "http" }],
      rules: [{ backendRefs: [{ name: backend, port: 80 }] }],
    },
    status: { parents: [{ parentRef: { name: "other" }, controllerName: "example.test/other", conditions: [] }] },
  });
  type Parents = {
    parents: { controllerName: string; conditions: { type: string; status: string; reason: string; message: string }[] }[];
  };

  test("Accepted and ResolvedRefs for our Gateway's parentRef, other controllers' entries kept; nothing when converged", async () => {
    const client = cluster()
      .put(ROUTE, route("shop"))
      .put("/api/v1/namespaces/edge/services/shop", { kind: "Service", metadata: { name: "shop", namespace: "edge" } });
    const controller = gatewayApiController({ client });
    await controller.reconcile("gatewayclass");
    client.writes.length = 0;
    await controller.reconcile("route:edge/shop");
    expect(client.writeLines()).toEqual([`apply ${ROUTE}/status`]);
    const status = (client.objects.get(ROUTE) as { status: Parents }).status;
    expect(status.parents.map((p) => p.controllerName)).toEqual(["example.test/other", "istio.io/gateway-controller"]);
    expect(status.parents[1]?.conditions.map((c) => `${c.type}=${c.status} ${c.reason}: ${c.message}`)).toEqual([
      "Accepted=True Accepted: Route was valid",
      "ResolvedRefs=True ResolvedRefs: All references resolved",
    ]);
    client.writes.length = 0;
    await controller.reconcile("route:edge/shop");
    expect(client.writeLines()).toEqual([]);
  });

  test("a backend that does not exist: ResolvedRefs False, BackendNotFound", async () => {
    const client = cluster().put(ROUTE, route("nope"));
    const controller = gatewayApiController({ client });
    await controller.reconcile("gatewayclass");
    await controller.reconcile("route:edge/shop");
    const status = (client.objects.get(ROUTE) as { status: Parents }).status;
    expect(status.parents[1]?.conditions[1]).toMatchObject({
      status: "False",
      reason: "BackendNotFound",
      message: "backend(nope.edge.svc.cluster.local) not found",
    });
  });
});
