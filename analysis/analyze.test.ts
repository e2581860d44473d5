import { describe, expect, test } from "vitest";
import { type AnalysisResource, analyze, formatMessage } from "./analyze.ts";
import { defaultIngressResources } from "./defaults.ts";
import { type ReadResult, readText } from "./read.ts";

const obj = (apiVersion: string, kind: string, namespace: string | undefined, name: string, rest: object = {}) =>
  ({ object: { apiVersion, kind, metadata: { name, ...(namespace ? { namespace } : {}) }, ...rest } }) as AnalysisResource;
const service = (ns: string, name: string, ports: object[], selector = { app: name }) =>
  obj("v1", "Service", ns, name, { spec: { selector, ports } });
const vs = (ns: string, name: string, spec: object) => obj("networking.istio.io/v1", "VirtualService", ns, name, { spec });
const dr = (ns: string, name: string, spec: object) => obj("networking.istio.io/v1", "DestinationRule", ns, name, { spec });
const pod = (ns: string, name: string, labels: Record<string, string>, containers = ["app", "istio-proxy"]) =>
  ({
    object: {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace: ns, labels },
      spec: { containers: containers.map((c) => ({ name: c })) },
    },
  }) as AnalysisResource;
const codes = (resources: AnalysisResource[]) => analyze(resources).map((m) => `${m.code} ${m.origin}: ${m.message}`);

describe("VirtualService destinations", () => {
  const reviews = service("shop", "reviews", [{ name: "http", port: 9080 }]);
  const rule = dr("shop", "reviews", { host: "reviews", subsets: [{ name: "v1", labels: { version: "v1" } }] });
  const v1 = pod("shop", "reviews-v1", { app: "reviews", version: "v1" });

  test("a subset no DestinationRule defines is named with its host; a defined one is not", () => {
    const messages = codes([
      reviews,
      rule,
      v1,
      vs("shop", "reviews", { hosts: ["reviews"], http: [{ route: [{ destination: { host: "reviews", subset: "v3" } }] }] }),
    ]);
    expect(messages).toEqual([
      'IST0101 VirtualService shop/reviews: Referenced host+subset in destinationrule not found: "reviews+v3"',
    ]);
    expect(
      codes([
        reviews,
        rule,
        v1,
        vs("shop", "reviews", { hosts: ["reviews"], http: [{ route: [{ destination: { host: "reviews", subset: "v1" } }] }] }),
      ]),
    ).toEqual([]);
  });

  test("the DestinationRule that applies is the xDS server's: another namespace's rule not exported here does not count", () => {
    const hidden = dr("other", "reviews", {
      host: "reviews.shop.svc.cluster.local",
      exportTo: ["."],
      subsets: [{ name: "v3", labels: { version: "v1" } }],
    });
    const messages = codes([
      reviews,
      hidden,
      v1,
      vs("shop", "reviews", { hosts: ["reviews"], http: [{ route: [{ destination: { host: "reviews", subset: "v3" } }] }] }),
    ]);
    expect(messages).toContain(
      'IST0101 VirtualService shop/reviews: Referenced host+subset in destinationrule not found: "reviews+v3"',
    );
  });

  test("missing hosts, ports and mirrors; a multi-port Service needs a port", () => {
    const ratings = service("shop", "ratings", [
      { name: "http", port: 9080 },
      { name: "grpc", port: 9090 },
    ]);
    const messages = codes([
      ratings,
      vs("shop", "ratings", {
        hosts: ["ratings"],
        http: [
          { match: [{ uri: { prefix: "/a" } }], route: [{ destination: { host: "ratings", port: { number: 1 } } }] },
          { route: [{ destination: { host: "ratings" } }], mirror: { host: "shadow" } },
        ],
        tcp: [{ route: [{ destination: { host: "gone.example.com", port: { number: 1 } } }] }],
      }),
    ]);
    expect(messages).toEqual([
      'IST0101 VirtualService shop/ratings: Referenced host not found: "gone.example.com"',
      'IST0101 VirtualService shop/ratings: Referenced host:port not found: "ratings:1"',
      'IST0101 VirtualService shop/ratings: Referenced mirror host not found: "shadow"',
      'IST0112 VirtualService shop/ratings: This VirtualService routes to a service "ratings" that exposes multiple ports [9080 9090]. Specifying a port in the destination is required to disambiguate.',
    ]);
  });

  test("a wildcard ServiceEntry host covers the hosts under it; exportTo hides a Service from other namespaces", () => {
    const entry = obj("networking.istio.io/v1", "ServiceEntry", "egress", "wild", {
      spec: { hosts: ["*.example.com"], ports: [{ number: 443, name: "tls", protocol: "TLS" }], resolution: "NONE" },
    });
    const hidden = obj("v1", "Service", "private", "db", {
      metadata: { name: "db", namespace: "private", annotations: { "networking.istio.io/exportTo": "." } },
      spec: { selector: { app: "db" }, ports: [{ name: "tcp", port: 5432 }] },
    });
    const messages = codes([
      entry,
      hidden,
      vs("shop", "out", {
        hosts: ["api.example.com"],
        tls: [
          {
            match: [{ sniHosts: ["api.example.com"] }],
            route: [{ destination: { host: "api.example.com", port: { number: 443 } } }],
          },
        ],
        tcp: [{ route: [{ destination: { host: "db.private.svc.cluster.local" } }] }],
      }),
    ]);
    expect(messages).toEqual(['IST0101 VirtualService shop/out: Referenced host not found: "db.private.svc.cluster.local"']);
  });
});

describe("mesh host conflicts", () => {
  test("two mesh VirtualServices for one host are both reported; different export scopes are not", () => {
    const messages = codes([
      service("default", "web", [{ name: "http", port: 80 }]),
      vs("default", "a", { hosts: ["web"], http: [{ route: [{ destination: { host: "web" } }] }] }),
      vs("default", "b", {
        hosts: ["web.default.svc.cluster.local"],
        gateways: ["mesh"],
        http: [{ route: [{ destination: { host: "web" } }] }],
      }),
      vs("default", "c", { hosts: ["x.example.com"], exportTo: ["."], http: [{ route: [{ destination: { host: "web" } }] }] }),
      vs("default", "d", {
        hosts: ["x.example.com"],
        exportTo: ["other"],
        http: [{ route: [{ destination: { host: "web" } }] }],
      }),
    ]).filter((m) => m.startsWith("IST0109"));
    expect(messages).toEqual([
      "IST0109 VirtualService default/a: The VirtualServices default/a,default/b associated with mesh gateway define the same host */web.default.svc.cluster.local which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.",
      "IST0109 VirtualService default/b: The VirtualServices default/a,default/b associated with mesh gateway define the same host */web.default.svc.cluster.local which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.",
    ]);
  });
});

describe("Gateways", () => {
  const gateway = (servers: object[], selector = { istio: "ingressgateway" }) =>
    obj("networking.istio.io/v1", "Gateway", "istio-system", "public", { spec: { selector, servers } });

  test("a selector no pod matches; a port the gateway's Service does not expose; with the default ingress a standard port is fine", () => {
    expect(codes([gateway([{ port: { number: 80, name: "http", protocol: "HTTP" }, hosts: ["*"] }], { app: "none" })])).toEqual([
      'IST0101 Gateway istio-system/public: Referenced selector not found: "app=none"',
    ]);
    const defaults = defaultIngressResources("istio-system");
    expect(codes([...defaults, gateway([{ port: { number: 80, name: "http", protocol: "HTTP" }, hosts: ["*"] }])])).toEqual([]);
    expect(codes([...defaults, gateway([{ port: { number: 8081, name: "http", protocol: "HTTP" }, hosts: ["*"] }])])).toEqual([
      "IST0162 Gateway istio-system/public: The gateway is listening on a target port (port 8081) that is not defined in the Service associated with its workload instances (Pod selector istio=ingressgateway). If you need to access the gateway port through the gateway Service, it will not be available.",
    ]);
  });

  test("credentialName: missing, or a Secret without a certificate", () => {
    const defaults = defaultIngressResources("istio-system");
    const secret = obj("v1", "Secret", "istio-system", "junk", {
      data: { "tls.crt": Buffer.from("nope").toString("base64"), "tls.key": "eA==" },
    });
    const https = (credentialName: string) => ({
      port: { number: 443, name: `https-${credentialName}`, protocol: "HTTPS" },
      hosts: [`${credentialName}.example.com`],
      tls: { mode: "SIMPLE", credentialName },
    });
    expect(codes([...defaults, secret, gateway([https("missing"), https("junk")])])).toEqual([
      'IST0101 Gateway istio-system/public: Referenced credentialName not found: "missing"',
      "IST0161 Gateway istio-system/public: The credential referenced by the Gateway public in namespace istio-system is invalid, which can cause the traffic not to work as expected.",
    ]);
  });

  test("a VirtualService naming a missing Gateway, or one that serves none of its hosts", () => {
    const defaults = defaultIngressResources("istio-system");
    const web = service("default", "web", [{ name: "http", port: 80 }]);
    const messages = codes([
      ...defaults,
      web,
      gateway([{ port: { number: 80, name: "http", protocol: "HTTP" }, hosts: ["default/*.example.com"] }]),
      vs("default", "ok", {
        hosts: ["a.example.com"],
        gateways: ["istio-system/public"],
        http: [{ route: [{ destination: { host: "web" } }] }],
      }),
      vs("other", "wrong-ns", {
        hosts: ["b.example.com"],
        gateways: ["istio-system/public"],
        http: [{ route: [{ destination: { host: "web.default.svc.cluster.local" } }] }],
      }),
      vs("default", "missing", {
        hosts: ["c.example.com"],
        gateways: ["nope"],
        http: [{ route: [{ destination: { host: "web" } }] }],
      }),
    ]);
    expect(messages).toEqual([
      'IST0101 VirtualService default/missing: Referenced gateway not found: "nope"',
      "IST0132 VirtualService default/missing: one or more host [c.example.com] defined in VirtualService default/missing not found in Gateway default/nope.",
      "IST0132 VirtualService other/wrong-ns: one or more host [b.example.com] defined in VirtualService other/wrong-ns not found in Gateway istio-system/public.",
    ]);
  });
});

describe("Services, DestinationRules, Sidecars, namespaces", () => {
  test("ports whose protocol is sniffed; the control plane's Services are left out", () => {
    const messages = codes([
      service("default", "web", [
        { name: "http-web", port: 80 },
        { name: "metrics", port: 9090, targetPort: "metrics" },
        { name: "api", port: 8000, appProtocol: "http" },
        { name: "dns", port: 53, protocol: "UDP" },
      ]),
      obj("v1", "Service", "istio-system", "istiod", {
        metadata: { name: "istiod", namespace: "istio-system", labels: { istio: "pilot" } },
        spec: { ports: [{ name: "webhook", port: 443 }] },
      }),
    ]);
    expect(messages).toEqual([
      "IST0118 Service default/web: Port name metrics (port: 9090, targetPort: metrics) doesn't follow the naming convention of Istio port.",
    ]);
  });

  test("TLS origination without a CA, at the rule and at a port", () => {
    const messages = codes([
      service("default", "b", [{ name: "https", port: 443 }]),
      dr("default", "b", {
        host: "b",
        trafficPolicy: {
          tls: { mode: "SIMPLE" },
          portLevelSettings: [
            { port: { number: 443 }, tls: { mode: "MUTUAL", clientCertificate: "/c.pem", privateKey: "/k.pem" } },
          ],
        },
      }),
    ]);
    expect(messages).toEqual([
      "IST0128 DestinationRule default/b: DestinationRule default/b in namespace default has TLS mode set to SIMPLE but no caCertificates are set to validate server identity for host: b",
      "IST0129 DestinationRule default/b: DestinationRule default/b in namespace default has TLS mode set to MUTUAL but no caCertificates are set to validate server identity for host: b at port number:443",
    ]);
  });

  test("Sidecars: several without a selector, several selecting one pod, a selector matching nothing", () => {
    const sidecar = (name: string, labels?: Record<string, string>) =>
      obj("networking.istio.io/v1", "Sidecar", "default", name, {
        spec: { ...(labels ? { workloadSelector: { labels } } : {}), egress: [{ hosts: ["./*"] }] },
      });
    const messages = codes([
      pod("default", "api-1", { app: "api" }),
      sidecar("x"),
      sidecar("y"),
      sidecar("a", { app: "api" }),
      sidecar("b", { app: "api" }),
      sidecar("g", { app: "ghost" }),
    ]);
    expect(messages.map((m) => m.slice(0, m.indexOf(":")))).toEqual([
      "IST0101 Sidecar default/g",
      "IST0110 Sidecar default/a",
      "IST0110 Sidecar default/b",
      "IST0111 Sidecar default/x",
      "IST0111 Sidecar default/y",
    ]);
  });

  test("namespaces: no injection label, two kinds of label, a pod without its proxy; the control plane's namespace and kube-system are left out", () => {
    const ns = (name: string, labels: Record<string, string> = {}) =>
      obj("v1", "Namespace", undefined, name, { metadata: { name, labels } });
    const messages = codes([
      ns("plain"),
      ns("istio-system"),
      ns("kube-system"),
      ns("both", { "istio-injection": "enabled", "istio.io/rev": "canary" }),
      ns("meshed", { "istio-injection": "enabled" }),
      pod("meshed", "bare", { app: "x" }, ["app"]),
      pod("meshed", "fine", { app: "y" }),
    ]);
    expect(messages.map((m) => m.slice(0, m.indexOf(":")))).toEqual([
      "IST0103 Pod meshed/bare",
      "IST0123 Namespace both",
      "IST0102 Namespace plain",
    ]);
  });
});

describe("filters and output", () => {
  test("a namespace filter keeps that namespace's messages and cluster-scoped ones; the suppress annotation drops codes", () => {
    const bad = (ns: string, annotations?: Record<string, string>) =>
      obj("networking.istio.io/v1", "VirtualService", ns, "v", {
        metadata: { name: "v", namespace: ns, ...(annotations ? { annotations } : {}) },
        spec: { hosts: ["v"], http: [{ route: [{ destination: { host: "nowhere" } }] }] },
      });
    expect(analyze([bad("a"), bad("b")], { namespace: "a" }).map((m) => m.origin)).toEqual(["VirtualService a/v"]);
    expect(analyze([bad("a", { "galley.istio.io/analyze-suppress": "IST0101" })])).toEqual([]);
    expect(analyze([bad("a", { "galley.istio.io/analyze-suppress": "*" })])).toEqual([]);
  });

  test("file objects carry the line of the field a message is about; bad documents are named and the rest analyzed", () => {
    const read: ReadResult = { resources: [], errors: [], skipped: new Map() };
    const text = [
      "apiVersion: networking.istio.io/v1",
      "kind: VirtualService",
      "metadata: { name: v }",
      "spec:",
      "  hosts: [v]",
      "  http:",
      "  - route:",
      "    - destination:",
      "        host: nowhere",
      "---",
      "kind: [",
      "---",
      "apiVersion: apps/v1",
      "kind: Deployment",
      "metadata: { name: d }",
    ].join("\n");
    readText(text, "f.yaml", "default", read);
    expect(read.errors).toHaveLength(1);
    expect(read.errors[0]).toMatch(/^f\.yaml:11: not valid YAML/);
    expect(read.skipped).toEqual(new Map([["Deployment", 1]]));
    expect(analyze(read.resources).map(formatMessage)).toEqual([
      'Error [IST0101] (VirtualService default/v f.yaml:9) Referenced host not found: "nowhere"',
    ]);
  });
});
