// `make bench-validate`: the validation webhook under HTTPS load on 127.0.0.1, `rigger istiod`
// and upstream istiod in the same run, with a realistic VirtualService and AuthorizationPolicy.
// Prints a table; asserts nothing.
import { compare, send, type Target, withBothServers } from "./load.ts";

const virtualService = {
  apiVersion: "networking.istio.io/v1",
  kind: "VirtualService",
  metadata: { name: "reviews", namespace: "shop" },
  spec: {
    hosts: ["reviews.shop.svc.cluster.local", "reviews.example.com"],
    gateways: ["mesh", "shop/edge"],
    http: [
      {
        name: "canary-users",
        match: [
          { headers: { "x-canary": { exact: "true" } }, uri: { prefix: "/api/v2" } },
          { queryParams: { beta: { regex: "^(1|yes)$" } } },
        ],
        route: [{ destination: { host: "reviews", subset: "v3", port: { number: 9080 } } }],
        timeout: "3s",
        retries: { attempts: 3, perTryTimeout: "1s", retryOn: "5xx,connect-failure,refused-stream" },
      },
      {
        name: "default",
        route: [
          { destination: { host: "reviews", subset: "v1" }, weight: 90, headers: { response: { set: { "x-version": "v1" } } } },
          { destination: { host: "reviews", subset: "v2" }, weight: 10 },
        ],
        fault: { delay: { percentage: { value: 1 }, fixedDelay: "2s" } },
        mirror: { host: "reviews-shadow" },
        mirrorPercentage: { value: 5 },
        corsPolicy: { allowOrigins: [{ exact: "https://shop.example.com" }], allowMethods: ["GET", "POST"], maxAge: "24h" },
      },
    ],
  },
};

const authorizationPolicy = {
  apiVersion: "security.istio.io/v1",
  kind: "AuthorizationPolicy",
  metadata: { name: "reviews", namespace: "shop" },
  spec: {
    selector: { matchLabels: { app: "reviews" } },
    action: "ALLOW",
    rules: [
      {
        from: [
          { source: { principals: ["cluster.local/ns/shop/sa/productpage"] } },
          { source: { namespaces: ["shop-admin"], ipBlocks: ["10.0.0.0/16"] } },
        ],
        to: [{ operation: { methods: ["GET", "POST"], paths: ["/reviews/*", "/api/{*}/ratings"], ports: ["9080"] } }],
        when: [
          { key: "request.auth.claims[iss]", values: ["https://accounts.example.com"] },
          { key: "source.ip", notValues: ["10.0.9.9"] },
        ],
      },
    ],
  },
};

function review(object: object): Buffer {
  return Buffer.from(
    JSON.stringify({
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      request: { uid: "bench-1", operation: "CREATE", namespace: "shop", object },
    }),
  );
}

const allowed = (body: Buffer) => (target: Target) =>
  send({ ...target, url: `${target.url}/validate` }, body, (r) =>
    r.allowed ? undefined : `denied: ${JSON.stringify(r.status)}`,
  );

await withBothServers("vbench", (targets) =>
  compare(
    targets,
    [
      { name: "VirtualService", once: allowed(review(virtualService)) },
      { name: "AuthorizationPolicy", once: allowed(review(authorizationPolicy)) },
    ],
    [500],
    "Validation webhook",
  ),
);
