// Authorization on the real node, observed in real requests: a client pod in `web` calls a
// backend in `shop` through both sidecars (upstream's proxyv2) while AuthorizationPolicies come
// and go; every test counts the status codes and answers the client saw (403 with Envoy's
// "RBAC: access denied" for HTTP, a closed connection for TCP), never what was configured.
import { generateKeyPairSync, sign } from "node:crypto";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { runOnRealNode } from "./cluster/local-cluster.ts";
import { droppedPackets } from "./cluster/network.ts";
import { reportMeasurements, waitFor } from "./support/kube.ts";
import {
  applyService,
  cleanUpMesh,
  echoCall,
  echoDeployment,
  injectedNamespace,
  installMesh,
  isReady,
  json,
  kubectl,
  nodeScriptDeployment,
  podPids,
  waitForPods,
} from "./support/mesh-node.ts";

const SHOP = "authz-shop";
const WEB = "authz-web";
/** Not in the mesh: a JWT issuer serving its key set. */
const ISSUER = "authz-issuer";
const local = inject("localCluster");
const measured: Record<string, string> = {};
let client = { app: 0, proxy: 0 };
let vip = "";

/** Status codes of `count` calls from the client pod to the backend (`extra`: echo client flags). */
function codes(path: string, extra: string[] = [], count = 5): Record<string, number> {
  const out = echoCall(client.app, `http://${vip}:80${path}`, ["--count", String(count), ...extra]);
  const counts: Record<string, number> = {};
  for (const m of out.matchAll(/^\[\d+\] StatusCode=(\d+)$/gm)) counts[m[1] ?? ""] = (counts[m[1] ?? ""] ?? 0) + 1;
  if (counts["403"]) expect(out).toContain("RBAC: access denied");
  return counts;
}

/** A TCP call to the backend's TCP port: "answered" when the echo server's reply came back. */
function tcpCall(): "answered" | "closed" {
  try {
    return /ServiceVersion=/.test(echoCall(client.app, `tcp://${vip}:9090`)) ? "answered" : "closed";
  } catch {
    return "closed";
  }
}

/** An ES256 key: its public JWKS, and JWTs signed with it. */
function keySigner(kid: string): { jwks: string; sign(claims: object): string } {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwk = { ...publicKey.export({ format: "jwk" }), kid, alg: "ES256", use: "sig" };
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return {
    jwks: JSON.stringify({ keys: [jwk] }),
    sign(claims) {
      const input = `${b64({ alg: "ES256", typ: "JWT", kid })}.${b64(claims)}`;
      const signature = sign("sha256", Buffer.from(input), { key: privateKey, dsaEncoding: "ieee-p1363" });
      return `${input}.${signature.toString("base64url")}`;
    },
  };
}

function policy(name: string, namespace: string, spec: object) {
  return { apiVersion: "security.istio.io/v1", kind: "AuthorizationPolicy", metadata: { name, namespace }, spec };
}

/** Applies policies and waits until calls come out as `expected` says. */
async function applyUntil(what: string, objects: object[], observed: () => boolean): Promise<void> {
  const t0 = Date.now();
  kubectl(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }));
  await waitFor(what, async () => (observed() ? true : undefined));
  measured[`${what}: applied → observed`] = `${((Date.now() - t0) / 1000).toFixed(1)} s`;
}

const only = (counts: Record<string, number>, code: string) => Object.keys(counts).join(",") === code;

describe.runIf(local)("authorization on the real node", () => {
  beforeAll(async () => {
    cleanUpMesh([SHOP, WEB, ISSUER]);
    await installMesh();
    injectedNamespace(SHOP);
    injectedNamespace(WEB);
    kubectl(["apply", "-f", "-"], echoDeployment("backend", SHOP, ["--port=8080", "--version=v1"]));
    applyService("backend", SHOP, { app: "backend" }, [
      { name: "http", port: 80, targetPort: 8080 },
      { name: "tcp", port: 9090, targetPort: 9090 },
    ]);
    kubectl(["apply", "-f", "-"], echoDeployment("client", WEB, ["--port=8080"]));
    await waitForPods(SHOP, "app=backend", 1, isReady, "the backend Ready");
    const [pod] = await waitForPods(WEB, "app=client", 1, isReady, "the client Ready");
    if (!pod) throw new Error("no client pod");
    client = podPids(pod, "client");
    vip = json<{ spec: { clusterIP: string } }>(["-n", SHOP, "get", "service", "backend"]).spec.clusterIP;
    await waitFor("the backend answering the client", async () =>
      only(codes("/"), "200") && tcpCall() === "answered" ? true : undefined,
    );
  }, 400_000);

  afterAll(() => {
    reportMeasurements("authorization", measured);
    cleanUpMesh([SHOP, WEB, ISSUER]);
  }, 200_000);

  test("ALLOW: only what a rule names gets through (from the client's namespace, GET on /api/*); the rest is 403", async () => {
    await applyUntil(
      "an ALLOW for GET /api/* from authz-web",
      [
        policy("allow-api", SHOP, {
          selector: { matchLabels: { app: "backend" } },
          action: "ALLOW",
          rules: [{ from: [{ source: { namespaces: [WEB] } }], to: [{ operation: { methods: ["GET"], paths: ["/api/*"] } }] }],
        }),
      ],
      () => only(codes("/other"), "403"),
    );
    const seen = {
      getApi: codes("/api/items"),
      postApi: codes("/api/items", ["--method", "POST"]),
      other: codes("/other"),
    };
    measured["ALLOW GET /api/* from authz-web: GET /api, POST /api, GET /other"] = JSON.stringify(seen);
    expect(seen).toEqual({ getApi: { "200": 5 }, postApi: { "403": 5 }, other: { "403": 5 } });
    // A TCP chain cannot see methods or paths: the ALLOW rule is not for it, so TCP is refused.
    expect(tcpCall()).toBe("closed");
  });

  test("DENY wins over ALLOW; a mesh-wide DENY in the root namespace applies to every workload", async () => {
    await applyUntil(
      "a DENY for /api/secret",
      [
        policy("deny-secret", SHOP, {
          selector: { matchLabels: { app: "backend" } },
          action: "DENY",
          rules: [{ to: [{ operation: { paths: ["/api/secret"] } }] }],
        }),
      ],
      () => only(codes("/api/secret"), "403"),
    );
    expect(codes("/api/items")).toEqual({ "200": 5 });
    await applyUntil(
      "a mesh-wide DENY on header x-block",
      [
        policy("block-header", "istio-system", {
          action: "DENY",
          rules: [{ when: [{ key: "request.headers[x-block]", values: ["yes"] }] }],
        }),
      ],
      () => only(codes("/api/items", ["-H", "x-block: yes"]), "403"),
    );
    expect(codes("/api/items", ["-H", "x-block: no"])).toEqual({ "200": 5 });
    kubectl(["-n", "istio-system", "delete", "authorizationpolicy", "block-header"]);
    kubectl(["-n", SHOP, "delete", "authorizationpolicy", "deny-secret", "allow-api"]);
    await waitFor("everything allowed again", async () => (only(codes("/other"), "200") ? true : undefined));
  });

  test("an ALLOW policy without rules allows nothing, HTTP or TCP; removing it lets everything back", async () => {
    await applyUntil(
      "an empty ALLOW",
      [policy("nothing", SHOP, { selector: { matchLabels: { app: "backend" } } })],
      () => only(codes("/"), "403") && tcpCall() === "closed",
    );
    kubectl(["-n", SHOP, "delete", "authorizationpolicy", "nothing"]);
    await waitFor("calls answered again", async () => (only(codes("/"), "200") && tcpCall() === "answered" ? true : undefined));
  });

  test("TCP: an ALLOW by port and source namespace lets the connection through; a DENY with an HTTP-only field closes every connection", async () => {
    await applyUntil(
      "an ALLOW of port 9090 from authz-web",
      [
        policy("tcp-allow", SHOP, {
          selector: { matchLabels: { app: "backend" } },
          rules: [{ from: [{ source: { namespaces: [WEB] } }], to: [{ operation: { ports: ["9090"] } }] }],
        }),
      ],
      () => only(codes("/"), "403"),
    );
    expect(tcpCall()).toBe("answered");
    await applyUntil(
      "a DENY of paths on the TCP port's workload",
      [
        policy("deny-path", SHOP, {
          selector: { matchLabels: { app: "backend" } },
          action: "DENY",
          rules: [{ to: [{ operation: { paths: ["/admin"] } }] }],
        }),
      ],
      () => tcpCall() === "closed",
    );
    measured["TCP: ALLOW port 9090 from authz-web, then a DENY of a path"] = "answered, then closed";
    kubectl(["-n", SHOP, "delete", "authorizationpolicy", "tcp-allow", "deny-path"]);
    await waitFor("TCP answered again", async () => (tcpCall() === "answered" ? true : undefined));
  });

  test("RequestAuthentication: a bad token 401, no token 403 under a policy requiring one, a good one 200; claims decide; keys from an inline JWKS or a jwksUri on the cluster", async () => {
    const issuer = "https://issuer.authz.test";
    const signer = keySigner("inline");
    const stranger = keySigner("inline");
    const token = (claims: object, by = signer) =>
      by.sign({ iss: issuer, sub: "alice", exp: Math.floor(Date.now() / 1000) + 3600, ...claims });
    const bearer = (t: string) => ["-H", `Authorization: Bearer ${t}`];
    await applyUntil(
      "a RequestAuthentication with an inline JWKS and a policy requiring its principal in group admins",
      [
        {
          apiVersion: "security.istio.io/v1",
          kind: "RequestAuthentication",
          metadata: { name: "jwt", namespace: SHOP },
          spec: { selector: { matchLabels: { app: "backend" } }, jwtRules: [{ issuer, jwks: signer.jwks }] },
        },
        policy("require-jwt", SHOP, {
          selector: { matchLabels: { app: "backend" } },
          rules: [
            {
              from: [{ source: { requestPrincipals: [`${issuer}/*`] } }],
              when: [{ key: "request.auth.claims[groups]", values: ["admins"] }],
            },
          ],
        }),
      ],
      () => only(codes("/", bearer(token({ groups: ["admins"] }))), "200") && only(codes("/"), "403"),
    );
    const seen = {
      none: codes("/"),
      admin: codes("/", bearer(token({ groups: ["admins"] }))),
      notAdmin: codes("/", bearer(token({ groups: ["users"] }))),
      foreignKey: codes("/", bearer(token({ groups: ["admins"] }, stranger))),
      // Past Envoy's 60 s allowance for clock skew.
      expired: codes("/", bearer(token({ groups: ["admins"], exp: Math.floor(Date.now() / 1000) - 600 }))),
    };
    measured["JWT (inline JWKS): no token, admin, not admin, other key, expired"] = JSON.stringify(seen);
    expect(seen).toEqual({
      none: { "403": 5 },
      admin: { "200": 5 },
      notAdmin: { "403": 5 },
      foreignKey: { "401": 5 },
      expired: { "401": 5 },
    });

    // The same issuer's keys served by an issuer on the cluster: istiod fetches them.
    const remote = keySigner("remote");
    const served = `require('node:http').createServer((req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(process.env.JWKS); }).listen(8080);`;
    runOnRealNode(ISSUER);
    kubectl(["apply", "-f", "-"], nodeScriptDeployment("issuer", ISSUER, served, { port: 8080, env: { JWKS: remote.jwks } }));
    applyService("issuer", ISSUER, { app: "issuer" }, [{ name: "http", port: 80, targetPort: 8080 }]);
    await waitForPods(ISSUER, "app=issuer", 1, isReady, "the issuer Ready");
    const remoteToken = remote.sign({ iss: issuer, sub: "bob", exp: Math.floor(Date.now() / 1000) + 3600, groups: ["admins"] });
    expect(only(codes("/", bearer(remoteToken)), "401")).toBe(true);
    await applyUntil(
      "the issuer's keys by jwksUri",
      [
        {
          apiVersion: "security.istio.io/v1",
          kind: "RequestAuthentication",
          metadata: { name: "jwt", namespace: SHOP },
          spec: {
            selector: { matchLabels: { app: "backend" } },
            jwtRules: [{ issuer, jwksUri: `http://issuer.${ISSUER}.svc.cluster.local/jwks.json` }],
          },
        },
      ],
      () => only(codes("/", bearer(remoteToken)), "200"),
    );
    // The inline key is gone: its tokens are refused now.
    expect(codes("/", bearer(token({ groups: ["admins"] })))).toEqual({ "401": 5 });
    kubectl(["-n", SHOP, "delete", "requestauthentication", "jwt"]);
    kubectl(["-n", SHOP, "delete", "authorizationpolicy", "require-jwt"]);
    await waitFor("calls answered without a token again", async () => (only(codes("/"), "200") ? true : undefined));
  });

  test("no packet left the machine", () => {
    expect(droppedPackets()).toBe(0);
  });
});
