// Kubernetes Gateway API automated deployment, as upstream istiod's deployment controller
// does it, run by the operator: GatewayClass `istio` (controllerName istio.io/gateway-controller)
// exists while the Gateway API CRDs do; every Gateway of that class gets kube-gateway.ts's
// ServiceAccount, Deployment and Service (owned by the Gateway, so deleting it removes them),
// and its status: Accepted, Programmed and addresses (load balancer addresses, else the
// Service's cluster hostname). The Gateway API is optional: the watches on it start whenever
// its CRDs appear, without holding up the other controllers.

import { REVISIONS_PATH, TAGS_PATH } from "../../api/operator.ts";
import { applyAll, applyIfChanged, getOrUndefined, type KubeObject, withRenderedHash, writeStatus } from "../../kube/apply.ts";
import { type Condition, setCondition } from "../../kube/conditions.ts";
import type { Controller } from "../../kube/controller.ts";
import type { RawClient } from "../../kube/raw-client.ts";
import {
  grpcAsHttp,
  httpRouteParentStatuses,
  type KubeGateway,
  type KubeGrpcRoute,
  type KubeHttpRoute,
  type ReferenceGrant,
} from "../../xds/generate/gateway-api.ts";
import { MANAGED_BY } from "../install/configmaps.ts";
import {
  type Listener,
  type ListenerStatus,
  listenerStatuses,
  programmedStatus,
  type Route,
  type ServiceState,
  withoutControlPlaneConditions,
} from "./gateway-status.ts";
import { GATEWAY_NAME_LABEL, type Gateway, gatewayResourceName, MANAGED_LABEL, renderKubeGateway } from "./kube-gateway.ts";
import { controlPlaneOf, resolveGatewayRevision } from "./revisions.ts";

export const CONTROLLER_NAME = "istio.io/gateway-controller";
export const CLASS_NAME = "istio";
const API = "/apis/gateway.networking.k8s.io/v1";
const CLASS_KEY = "gatewayclass";
/** Reconcile keys of routes' status: `route:<namespace>/<name>` (HTTPRoute), `grpcroute:<namespace>/<name>`. */
const ROUTE_KEY = "route:";
const GRPC_ROUTE_KEY = "grpcroute:";
const statusKey = (r: { kind: string; metadata: { namespace: string; name: string } }) =>
  `${r.kind === "GRPCRoute" ? GRPC_ROUTE_KEY : ROUTE_KEY}${r.metadata.namespace}/${r.metadata.name}`;

/** `<group>/<kind>/<namespace>/<name>/<section>/<port>` of a parentRef, defaults filled in, to compare. */
const canonicalRef = (r: {
  group?: string;
  kind?: string;
  namespace?: string;
  name?: string;
  sectionName?: string;
  port?: number;
}) => [
  r.group ?? "gateway.networking.k8s.io",
  r.kind ?? "Gateway",
  r.namespace ?? "",
  r.name ?? "",
  r.sectionName ?? "",
  r.port ?? 0,
];

interface LiveRoute extends KubeObject {
  spec?: KubeHttpRoute["spec"] & KubeGrpcRoute["spec"];
  metadata: KubeObject["metadata"] & { generation?: number };
  status?: { parents?: { parentRef: object; controllerName: string; conditions?: Condition[] }[] };
}
const CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";

interface GatewayClass extends KubeObject {
  spec: { controllerName: string; description?: string };
  status?: { conditions?: Condition[] };
}

interface LiveGateway extends Gateway {
  metadata: Gateway["metadata"] & { generation?: number; deletionTimestamp?: string };
  status?: {
    conditions?: Condition[];
    addresses?: { type: string; value: string }[];
    listeners?: (Omit<ListenerStatus, "conditions"> & { conditions?: Condition[] })[];
  };
}

/** The route kinds whose attachments a listener counts (the standard channel's). */
const ROUTES = [
  { kind: "HTTPRoute", path: `${API}/httproutes` },
  { kind: "GRPCRoute", path: `${API}/grpcroutes` },
] as const;

function gatewayClass(): GatewayClass {
  return {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "GatewayClass",
    metadata: { name: CLASS_NAME, labels: MANAGED_BY },
    spec: { controllerName: CONTROLLER_NAME, description: "The default Istio GatewayClass" },
  };
}

export function gatewayApiController({ client }: { client: RawClient }): Controller {
  const known = new Set<string>();
  /** HTTPRoutes and GRPCRoutes as their watches last saw them, by kind/namespace/name. */
  const routes = new Map<string, Route>();

  const reconcileClass = async () => {
    const live = await getOrUndefined<GatewayClass>(client, `${API}/gatewayclasses/${CLASS_NAME}`);
    const crd = await getOrUndefined<KubeObject>(client, `${CRDS}/gatewayclasses.gateway.networking.k8s.io`);
    if (!crd) return undefined;
    if (live && live.spec.controllerName !== CONTROLLER_NAME) return undefined; // someone else's class of that name
    const desired = withRenderedHash(gatewayClass());
    const { object } = await applyIfChanged(client, desired, live);
    const now = new Date();
    const conditions = setCondition(
      (object as GatewayClass).status?.conditions,
      {
        type: "Accepted",
        status: "True",
        reason: "Accepted",
        message: "Handled by Rigger's gateway controller",
        observedGeneration: object.metadata.generation,
      },
      now,
    );
    await writeStatus(client, object, (object as GatewayClass).status, { ...(object as GatewayClass).status, conditions });
    return undefined;
  };

  const reconcileGateway = async (key: string) => {
    const [namespace, name] = key.split("/");
    const gateway = await getOrUndefined<LiveGateway>(client, `${API}/namespaces/${namespace}/gateways/${name}`);
    if (!gateway || gateway.metadata.deletionTimestamp) {
      known.delete(key);
      return undefined;
    }
    known.add(key);
    const cls = await getOrUndefined<GatewayClass>(client, `${API}/gatewayclasses/${gateway.spec.gatewayClassName}`);
    if (cls?.spec.controllerName !== CONTROLLER_NAME) return undefined;

    const now = new Date();
    const generation = gateway.metadata.generation;
    let conditions = gateway.status?.conditions;
    const set = (c: Omit<Condition, "lastTransitionTime">) => {
      conditions = setCondition(conditions, { ...c, observedGeneration: generation }, now);
    };
    set({ type: "Accepted", status: "True", reason: "Accepted", message: "Resource accepted" });
    let addresses = gateway.status?.addresses ?? [];
    const resolved = await resolveGatewayRevision(client, gateway.metadata.labels?.["istio.io/rev"]);
    if (typeof resolved === "string") {
      set({ type: "Programmed", status: "False", reason: "Pending", message: resolved });
    } else {
      const objects = renderKubeGateway(gateway, controlPlaneOf(resolved.revision));
      const refused = await applyAll(
        client,
        objects.map((obj) => withRenderedHash(obj as KubeObject)),
      );
      const service = await getOrUndefined<ServiceState>(
        client,
        `/api/v1/namespaces/${namespace}/services/${gatewayResourceName(gateway)}`,
      );
      const programmed = programmedStatus(service, gateway.spec.listeners);
      set(refused ? { type: "Programmed", status: "False", reason: "Invalid", message: refused } : programmed.condition);
      addresses = programmed.addresses;
    }
    const status = { ...gateway.status, conditions, addresses, listeners: await listeners(gateway, now) };
    // istiod's listener conditions (certificates) are left to it: compared without them, never written here.
    const current = withoutControlPlaneConditions(gateway.status, gateway.spec.listeners ?? []);
    await writeStatus(client, gateway as unknown as KubeObject, current, status);
    return undefined;
  };

  /** Listener status, keeping each condition's transition time while its status holds. */
  const listeners = async (gateway: LiveGateway, now: Date) => {
    const selectors = (gateway.spec.listeners ?? []).some((l: Listener) => l.allowedRoutes?.namespaces?.from === "Selector");
    const namespaces = selectors ? await client.get<{ items: KubeObject[] }>("/api/v1/namespaces") : { items: [] };
    const labels = new Map(namespaces.items.map((n) => [n.metadata.name, n.metadata.labels ?? {}]));
    const gw = { name: gateway.metadata.name, namespace: gateway.metadata.namespace };
    return listenerStatuses(gw, gateway.spec.listeners ?? [], [...routes.values()], (ns) => labels.get(ns)).map((l) => {
      let kept = gateway.status?.listeners?.find((p) => p.name === l.name)?.conditions;
      for (const c of l.conditions) kept = setCondition(kept, { ...c, observedGeneration: gateway.metadata.generation }, now);
      return { ...l, conditions: kept?.filter((c) => l.conditions.some((n) => n.type === c.type)) };
    });
  };

  /**
   * An HTTPRoute's status.parents for our Gateways (Accepted, ResolvedRefs, upstream's reasons
   * and wording, xds/generate/gateway-api.ts); other controllers' entries are kept.
   */
  const reconcileRoute = async (key: string) => {
    const grpc = key.startsWith(GRPC_ROUTE_KEY);
    const [namespace, name] = key.slice(grpc ? GRPC_ROUTE_KEY.length : ROUTE_KEY.length).split("/");
    const route = await getOrUndefined<LiveRoute>(
      client,
      `${API}/namespaces/${namespace}/${grpc ? "grpcroutes" : "httproutes"}/${name}`,
    );
    if (!route) return undefined;
    const asHttp: KubeHttpRoute = grpc ? grpcAsHttp(route as KubeGrpcRoute) : (route as KubeHttpRoute);
    const gateways: KubeGateway[] = [];
    for (const ref of route.spec?.parentRefs ?? []) {
      if ((ref.kind ?? "Gateway") !== "Gateway") continue;
      const gw = await getOrUndefined<KubeGateway & KubeObject>(
        client,
        `${API}/namespaces/${ref.namespace ?? namespace}/gateways/${ref.name}`,
      );
      if (gw) gateways.push(gw);
    }
    const backends = (asHttp.spec?.rules ?? []).flatMap((r) => [
      ...(r.backendRefs ?? []),
      ...(r.filters ?? []).flatMap((f) => (f.requestMirror ? [f.requestMirror.backendRef] : [])),
    ]);
    const services = new Set<string>();
    const grants: ReferenceGrant[] = [];
    for (const ns of new Set(backends.map((b) => b.namespace ?? namespace))) {
      for (const b of backends.filter((x) => (x.namespace ?? namespace) === ns))
        if (await getOrUndefined(client, `/api/v1/namespaces/${ns}/services/${b.name}`)) services.add(`${ns}/${b.name}`);
      if (ns !== namespace) {
        const list = await getOrUndefined<{ items: ReferenceGrant[] }>(
          client,
          `/apis/gateway.networking.k8s.io/v1beta1/namespaces/${ns}/referencegrants`,
        );
        grants.push(...(list?.items ?? []));
      }
    }
    const classOf = async (gw: KubeGateway) =>
      (await getOrUndefined<GatewayClass>(client, `${API}/gatewayclasses/${gw.spec?.gatewayClassName}`))?.spec.controllerName;
    const ours: KubeGateway[] = [];
    for (const gw of gateways) if ((await classOf(gw)) === CONTROLLER_NAME) ours.push(gw);
    const computed = httpRouteParentStatuses(
      { gateways: ours, httpRoutes: [asHttp], referenceGrants: grants, services, domainSuffix: "cluster.local" },
      asHttp,
    );
    const now = new Date();
    const previous = (route.status?.parents ?? []).filter((p) => p.controllerName === CONTROLLER_NAME);
    const sameRef = (a: object, b: object) => JSON.stringify(canonicalRef(a)) === JSON.stringify(canonicalRef(b));
    const parents = [
      ...(route.status?.parents ?? []).filter((p) => p.controllerName !== CONTROLLER_NAME),
      ...computed.map((p) => {
        let conditions = previous.find((q) => sameRef(q.parentRef, p.parentRef))?.conditions;
        for (const c of p.conditions)
          conditions = setCondition(conditions, { ...c, observedGeneration: route.metadata.generation }, now);
        return { ...p, conditions };
      }),
    ];
    await writeStatus(client, route, route.status, { ...route.status, parents });
    return undefined;
  };

  const all = () => [...known];
  /** Route status keys of the HTTPRoutes whose backends include Service `<namespace>/<name>`. */
  const routesTo = (service: string) =>
    [...routes.values()]
      .filter(
        (r) =>
          (r.kind === "HTTPRoute" || r.kind === "GRPCRoute") &&
          ((r as KubeHttpRoute).spec?.rules ?? []).some((rule) =>
            (rule.backendRefs ?? []).some((b) => `${b.namespace ?? r.metadata.namespace}/${b.name}` === service),
          ),
      )
      .map(statusKey);
  /** Route status keys of every HTTPRoute (a ReferenceGrant changed). */
  const allRoutes = () => [...routes.values()].filter((r) => r.kind === "HTTPRoute" || r.kind === "GRPCRoute").map(statusKey);
  /** Route status keys of the HTTPRoutes naming Gateway `key`. */
  const routesOf = (key: string) =>
    [...routes.values()]
      .filter((r) => (r.kind === "HTTPRoute" || r.kind === "GRPCRoute") && parentsOf(r).includes(key))
      .map(statusKey);
  /** The Gateways a route names as parents. */
  const parentsOf = (route: Route | undefined) =>
    (route?.spec?.parentRefs ?? [])
      .filter((ref) => (ref.kind ?? "Gateway") === "Gateway")
      .map((ref) => `${ref.namespace ?? route?.metadata.namespace}/${ref.name}`);
  /** A route event: kept from the watch (listener status counts them), its old and new parents reconciled. */
  const routeWatch =
    (kind: Route["kind"]) =>
    (key: string, object?: { metadata?: { name?: string; namespace?: string }; spec?: Route["spec"] }, deleted?: boolean) => {
      const id = `${kind}/${key}`;
      const before = routes.get(id);
      if (deleted || !object) routes.delete(id);
      else routes.set(id, { ...(object as Route), kind });
      const keys = [...new Set([...parentsOf(before), ...parentsOf(routes.get(id))])];
      const [routeNamespace = "", routeName = ""] = key.split("/");
      return deleted ? keys : [...keys, statusKey({ kind, metadata: { namespace: routeNamespace, name: routeName } })];
    };
  const byGatewayLabel = (_key: string, object?: { metadata?: { namespace?: string; labels?: Record<string, string> } }) => {
    const gateway = object?.metadata?.labels?.[GATEWAY_NAME_LABEL];
    return gateway && object?.metadata?.namespace ? [`${object.metadata.namespace}/${gateway}`] : [];
  };
  return {
    name: "gateway-api",
    reconcile: (key) =>
      key === CLASS_KEY
        ? reconcileClass()
        : key.startsWith(ROUTE_KEY) || key.startsWith(GRPC_ROUTE_KEY)
          ? reconcileRoute(key)
          : reconcileGateway(key),
    watches: [
      // Not optional: the CRD collection always exists, and its event creates the class.
      {
        path: CRDS,
        fieldSelector: "metadata.name=gatewayclasses.gateway.networking.k8s.io",
        map: () => [CLASS_KEY, ...all()],
      },
      { path: `${API}/gatewayclasses`, optional: true, map: () => [CLASS_KEY, ...all()] },
      // A Gateway's change may change what its routes may attach to: their status too.
      { path: `${API}/gateways`, optional: true, map: (key) => [key, ...routesOf(key)] },
      ...ROUTES.map(({ kind, path }) => ({ path, optional: true, map: routeWatch(kind) })),
      { path: "/apis/apps/v1/deployments", labelSelector: MANAGED_LABEL, map: byGatewayLabel },
      { path: "/api/v1/services", labelSelector: GATEWAY_NAME_LABEL, map: byGatewayLabel },
      // What routes' ResolvedRefs depend on: their backends' Services and ReferenceGrants.
      { path: "/api/v1/services", map: (key: string) => routesTo(key) },
      { path: "/apis/gateway.networking.k8s.io/v1beta1/referencegrants", optional: true, map: allRoutes },
      { path: TAGS_PATH, map: all },
      { path: REVISIONS_PATH, map: all },
    ],
  };
}
