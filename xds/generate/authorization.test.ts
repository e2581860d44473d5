// What the parity scenario cannot hold (upstream's validation refuses it first): policies that
// got past validation but cannot be translated fail closed.
import { expect, test } from "vitest";
import { Filter } from "../envoy/third_party/envoy/config/listener/v3/listener_components.ts";
import { toJson } from "../envoy/types.ts";
import { parseNode } from "../proxy.ts";
import { buildRegistry } from "../registry/registry.ts";
import { type AuthorizationPolicy, authorizationFilters } from "./authorization.ts";
import { DEFAULT_MESH, type PushContext, policyAppliesTo } from "./context.ts";

const proxy = parseNode({
  id: "sidecar~10.0.0.1~backend-1.shop~shop.svc.cluster.local",
  metadata: { NAMESPACE: "shop", LABELS: { app: "backend" } },
});

function filters(policies: AuthorizationPolicy[]) {
  const push: PushContext = {
    version: 1,
    mesh: DEFAULT_MESH,
    peerAuthentications: [],
    authorizationPolicies: policies,
    registry: buildRegistry({ services: [], endpointSlices: [], pods: [] }),
  };
  const built = authorizationFilters(push, proxy);
  const json = (f: object) => JSON.stringify(toJson(Filter, f));
  return { http: [...built.customHttp, ...built.http].map(json), tcp: built.tcp.map(json), problems: built.problems };
}

const policy = (action: string, rules: object[], name = "p"): AuthorizationPolicy => ({
  metadata: { name, namespace: "shop" },
  spec: { action, rules },
});

test("an ALLOW rule with an address that is no CIDR is left out, and said why: its ALLOW filter then allows nothing", () => {
  const built = filters([policy("ALLOW", [{ from: [{ source: { ipBlocks: ["10.0.0.0/33"] } }] }])]);
  expect(built.problems).toEqual(['skipped invalid rule ns[shop]-policy[p]-rule[0]: invalid CIDR "10.0.0.0/33"']);
  expect(built.http).toHaveLength(1);
  expect(built.http[0]).toContain('"rules":{}');
});

test("a DENY rule drops only the value it cannot translate, denying more rather than less", () => {
  const built = filters([policy("DENY", [{ when: [{ key: "source.ip", values: ["not-an-ip", "10.1.2.3"] }] }])]);
  expect(built.problems).toEqual([]);
  expect(built.http[0]).toContain('"addressPrefix":"10.1.2.3"');
  expect(built.http[0]).not.toContain("not-an-ip");
});

test("on TCP chains a DENY of an HTTP-only field denies every connection; an ALLOW of one allows none", () => {
  const deny = filters([policy("DENY", [{ to: [{ operation: { paths: ["/admin"] } }] }])]);
  expect(deny.tcp[0]).toContain('"permissions":[{"andRules":{"rules":[{"any":true}]}}]');
  const allow = filters([policy("ALLOW", [{ to: [{ operation: { methods: ["GET"] } }] }])]);
  // ALLOW (action 0) with no policies: Envoy's JSON leaves both out.
  expect(allow.tcp[0]).toContain('"rules":{}');
});

test("unknown when keys drop the rule whatever the action; CUSTOM without a provider denies what it names", () => {
  const unknown = filters([policy("DENY", [{ when: [{ key: "request.size", values: ["1"] }] }])]);
  expect(unknown.problems).toEqual(["skipped invalid rule ns[shop]-policy[p]-rule[0]: unknown attribute request.size"]);
  const custom = filters([
    {
      ...policy("CUSTOM", [{ to: [{ operation: { paths: ["/x"] } }] }]),
      spec: { action: "CUSTOM", provider: { name: "opa" }, rules: [{ to: [{ operation: { paths: ["/x"] } }] }] },
    },
  ]);
  expect(custom.http[0]).toContain('"action":"DENY"');
  expect(custom.http[0]).toContain("istio-ext-authz-ns[shop]-policy[p]-rule[0]-deny-due-to-bad-CUSTOM-action");
});

test("targetRefs: a policy naming a Gateway applies to that Gateway's pods only, never to sidecars; selectors still apply to gateways", () => {
  const gatewayPod = parseNode({
    id: "router~10.0.0.9~edge-istio-7d9.shop~shop.svc.cluster.local",
    metadata: { NAMESPACE: "shop", LABELS: { "gateway.networking.k8s.io/gateway-name": "edge", app: "edge" } },
  });
  const push: PushContext = {
    version: 1,
    mesh: DEFAULT_MESH,
    peerAuthentications: [],
    registry: buildRegistry({ services: [], endpointSlices: [], pods: [] }),
  };
  const ref = (name: string, extra: object = {}) => ({ group: "gateway.networking.k8s.io", kind: "Gateway", name, ...extra });
  const attached = (spec: object, namespace = "shop") => {
    const p = { metadata: { name: "p", namespace }, spec };
    return { sidecar: policyAppliesTo(push, proxy, p), gateway: policyAppliesTo(push, gatewayPod, p) };
  };
  expect(attached({ targetRefs: [ref("edge")] })).toEqual({ sidecar: false, gateway: true });
  expect(attached({ targetRef: ref("edge") })).toEqual({ sidecar: false, gateway: true });
  expect(attached({ targetRefs: [ref("other"), ref("edge")] })).toEqual({ sidecar: false, gateway: true });
  expect(attached({ targetRefs: [ref("other")] })).toEqual({ sidecar: false, gateway: false });
  // Another namespace's Gateway, a Service, the core group: not this gateway.
  expect(attached({ targetRefs: [ref("edge", { namespace: "web" })] })).toEqual({ sidecar: false, gateway: false });
  expect(attached({ targetRefs: [{ kind: "Service", name: "edge" }] })).toEqual({ sidecar: false, gateway: false });
  expect(attached({ targetRefs: [{ kind: "Gateway", name: "edge" }] })).toEqual({ sidecar: false, gateway: false });
  // From the root namespace a targetRef reaches only gateways in the root namespace.
  expect(attached({ targetRefs: [ref("edge")] }, "istio-system")).toEqual({ sidecar: false, gateway: false });
  // No targetRefs: by selector, for both.
  expect(attached({})).toEqual({ sidecar: true, gateway: true });
  expect(attached({ selector: { matchLabels: { app: "edge" } } })).toEqual({ sidecar: false, gateway: true });
});
