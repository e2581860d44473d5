// Authorization on the real node, observed in real requests: a client pod in `web` calls a
// backend in `shop` through both sidecars (upstream's proxyv2) while AuthorizationPolicies come
// and go; every test counts the status codes and answers the client saw (403 with Envoy's
// "RBAC: access denied" for HTTP, a closed connection for TCP), never what was configured.
import { generateKeyPairSync, sign } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, inject, test } from "vitest";
import { runOnRealNode } from "./cluster/local-cluster.ts";
import { droppedPackets } from "./cluster/network.ts";
import { reportMeasurements, waitFor } from "./support/kube.ts";
import {
  applyService,
  applyUntil as applyUntilSteady,
  cleanUpMesh,
  echoCall,
  echoCallStatus,
  echoDeployment,
  injectedNamespace,
  installMesh,
  isReady,
  json,
  kubectl,
  nodeScriptDeployment,
  podPids,
  riggerCli,
  setExtensionProviders,
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

/** `count` calls from the client pod to the backend (`extra`: echo client flags): status codes counted, and all the client printed. */
function calls(path: string, extra: string[] = [], count = 5): { counts: Record<string, number>; out: string } {
  const out = echoCall(client.app, `http://${vip}:80${path}`, ["--count", String(count), ...extra]);
  const counts: Record<string, number> = {};
  for (const m of out.matchAll(/^\[\d+\] StatusCode=(\d+)$/gm)) counts[m[1] ?? ""] = (counts[m[1] ?? ""] ?? 0) + 1;
  return { counts, out };
}

/** Status codes of `count` calls (`rbac`: 403s are Envoy's RBAC filter's, else the gRPC ext-authz server's). */
function codes(path: string, extra: string[] = [], count = 5, rbac = true): Record<string, number> {
  const { counts, out } = calls(path, extra, count);
  // Envoy's own denials say so; an external authorizer's carry its body.
  if (counts["403"]) expect(out).toContain(rbac ? "RBAC: access denied" : "denied by the test grpc ext-authz server");
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

function requestAuthentication(name: string, spec: object) {
  return { apiVersion: "security.istio.io/v1", kind: "RequestAuthentication", metadata: { name, namespace: SHOP }, spec };
}

function policy(name: string, namespace: string, spec: object) {
  return { apiVersion: "security.istio.io/v1", kind: "AuthorizationPolicy", metadata: { name, namespace }, spec };
}

/** Applies objects and waits until `observed` holds steadily; records how long the change took to show. */
async function applyUntil(what: string, objects: object[], observed: () => boolean): Promise<void> {
  const seconds = await applyUntilSteady(what, objects, observed);
  measured[`${what}: applied → first observed`] = `${seconds.toFixed(1)} s`;
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

  // Whatever a test got to, the next one starts without policies, the backend answering.
  afterEach(async () => {
    for (const namespace of [SHOP, "istio-system"])
      kubectl([
        "-n",
        namespace,
        "delete",
        "authorizationpolicies,peerauthentications,requestauthentications",
        "--all",
        "--ignore-not-found",
      ]);
    await waitFor("the backend answering HTTP and TCP without policies", async () =>
      only(codes("/guarded/1"), "200") && tcpCall() === "answered" ? true : undefined,
    );
  }, 120_000);

  afterAll(() => {
    reportMeasurements("authorization", measured);
    cleanUpMesh([SHOP, WEB, ISSUER]);
  }, 200_000);

  const allowApi = () =>
    policy("allow-api", SHOP, {
      selector: { matchLabels: { app: "backend" } },
      action: "ALLOW",
      rules: [{ from: [{ source: { namespaces: [WEB] } }], to: [{ operation: { methods: ["GET"], paths: ["/api/*"] } }] }],
    });

  test("ALLOW: only what a rule names gets through (from the client's namespace, GET on /api/*); the rest is 403", async () => {
    await applyUntil("an ALLOW for GET /api/* from authz-web", [allowApi()], () => only(codes("/other"), "403"));
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
      "a DENY for /api/secret beside the ALLOW of /api/*",
      [
        allowApi(),
        policy("deny-secret", SHOP, {
          selector: { matchLabels: { app: "backend" } },
          action: "DENY",
          rules: [{ to: [{ operation: { paths: ["/api/secret"] } }] }],
        }),
      ],
      () => only(codes("/api/secret"), "403"),
    );
    expect(codes("/api/items")).toEqual({ "200": 5 });
    expect(codes("/other")).toEqual({ "403": 5 });
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

  test("path templates: {*} is one segment, {**} any number of them", async () => {
    await applyUntil(
      "a DENY of /users/{*}/secret and /files/{**}",
      [
        policy("deny-templates", SHOP, {
          selector: { matchLabels: { app: "backend" } },
          action: "DENY",
          rules: [{ to: [{ operation: { paths: ["/users/{*}/secret", "/files/{**}"] } }] }],
        }),
      ],
      () => only(codes("/users/alice/secret"), "403"),
    );
    const seen = {
      oneSegment: codes("/users/alice/secret"),
      twoSegments: codes("/users/alice/bob/secret"),
      otherLeaf: codes("/users/alice/public"),
      filesDeep: codes("/files/a/b/c.txt"),
      filesOne: codes("/files/c.txt"),
      filesRoot: codes("/filesystem"),
    };
    measured["DENY /users/{*}/secret, /files/{**}"] = JSON.stringify(seen);
    expect(seen).toEqual({
      oneSegment: { "403": 5 },
      twoSegments: { "200": 5 },
      otherLeaf: { "200": 5 },
      filesDeep: { "403": 5 },
      filesOne: { "403": 5 },
      filesRoot: { "200": 5 },
    });
    kubectl(["-n", SHOP, "delete", "authorizationpolicy", "deny-templates"]);
    await waitFor("/users/alice/secret answered again", async () =>
      only(codes("/users/alice/secret"), "200") ? true : undefined,
    );
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
        requestAuthentication("jwt", {
          selector: { matchLabels: { app: "backend" } },
          jwtRules: [{ issuer, jwks: signer.jwks }],
        }),
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
        requestAuthentication("jwt", {
          selector: { matchLabels: { app: "backend" } },
          jwtRules: [{ issuer, jwksUri: `http://issuer.${ISSUER}.svc.cluster.local/jwks.json` }],
        }),
      ],
      () => only(codes("/", bearer(remoteToken)), "200"),
    );
    // The inline key is gone: its tokens are refused now.
    expect(codes("/", bearer(token({ groups: ["admins"] })))).toEqual({ "401": 5 });
    kubectl(["-n", SHOP, "delete", "requestauthentication", "jwt"]);
    kubectl(["-n", SHOP, "delete", "authorizationpolicy", "require-jwt"]);
    await waitFor("calls answered without a token again", async () => (only(codes("/"), "200") ? true : undefined));
  });

  test("RequestAuthentication: token from a header with a prefix or a query parameter, audiences, the original token forwarded, the payload and a claim to headers", async () => {
    const issuer = "https://locations.authz.test";
    const signer = keySigner("locations");
    const token = (claims: object) =>
      signer.sign({ iss: issuer, sub: "carol", aud: "shop", exp: Math.floor(Date.now() / 1000) + 3600, ...claims });
    const good = token({});
    await applyUntil(
      "a RequestAuthentication reading x-jwt (prefix Token) and ?access_token, and a policy requiring a principal",
      [
        requestAuthentication("locations", {
          selector: { matchLabels: { app: "backend" } },
          jwtRules: [
            {
              issuer,
              jwks: signer.jwks,
              audiences: ["shop"],
              fromHeaders: [{ name: "x-jwt", prefix: "Token " }],
              fromParams: ["access_token"],
              forwardOriginalToken: true,
              outputPayloadToHeader: "x-jwt-payload",
              outputClaimToHeaders: [{ header: "x-jwt-sub", claim: "sub" }],
            },
          ],
        }),
        policy("require-principal", SHOP, {
          selector: { matchLabels: { app: "backend" } },
          rules: [{ from: [{ source: { requestPrincipals: [`${issuer}/*`] } }] }],
        }),
      ],
      () => only(calls("/", ["-H", `x-jwt: Token ${good}`]).counts, "200") && only(calls("/").counts, "403"),
    );
    const header = calls("/", ["-H", `x-jwt: Token ${good}`]);
    const bearerOnly = calls("/", ["-H", `Authorization: Bearer ${good}`]);
    const otherAudience = calls("/", ["-H", `x-jwt: Token ${token({ aud: "elsewhere" })}`]);
    const seen = {
      header: header.counts,
      param: calls(`/?access_token=${good}`).counts,
      bearerOnly: bearerOnly.counts,
      otherAudience: otherAudience.counts,
    };
    measured["JWT locations: x-jwt header, ?access_token, Authorization only, another audience"] = JSON.stringify(seen);
    expect(seen).toEqual({ header: { "200": 5 }, param: { "200": 5 }, bearerOnly: { "403": 5 }, otherAudience: { "403": 5 } });
    // The Authorization header is not a location here: no token, so the policy denies. A token
    // for another audience is refused by the JWT filter itself (Envoy answers that with 403).
    expect(bearerOnly.out).toContain("RBAC: access denied");
    expect(otherAudience.out).toContain("Audiences in Jwt are not allowed");
    // What the backend received: the claim and the payload as headers, the token itself kept.
    expect(header.out).toMatch(/RequestHeader=X-Jwt-Sub:carol/i);
    const payload = /RequestHeader=X-Jwt-Payload:(\S+)/i.exec(header.out)?.[1] ?? "";
    expect(JSON.parse(Buffer.from(payload, "base64url").toString())).toMatchObject({ iss: issuer, sub: "carol", aud: "shop" });
    expect(header.out).toContain(`RequestHeader=X-Jwt:Token ${good}`);
  });

  test("CUSTOM: an ext-authz provider from the mesh config decides the requests its rules match; an unusable provider denies them", async () => {
    // The external authorizer: Istio's HTTP ext_authz protocol in a few lines of Node, allowing
    // requests that carry x-ext-authz: allow, logging every check it is asked.
    const authorizer = [
      "require('node:http').createServer((req, res) => { console.log('CHECK ' + req.method + ' ' + req.url);",
      " if (req.headers['x-ext-authz'] === 'allow') { res.writeHead(200, { 'x-ext-authz-check-result': 'allowed' }); res.end(); }",
      " else { res.writeHead(403, { 'x-ext-authz-check-result': 'denied' }); res.end('denied by the test ext-authz server'); }",
      " }).listen(8000);",
    ].join("");
    runOnRealNode(ISSUER);
    kubectl(["apply", "-f", "-"], nodeScriptDeployment("ext-authz", ISSUER, authorizer, { port: 8000 }));
    applyService("ext-authz", ISSUER, { app: "ext-authz" }, [{ name: "http", port: 8000, targetPort: 8000 }]);
    await waitForPods(ISSUER, "app=ext-authz", 1, isReady, "the ext-authz server Ready");
    const host = `ext-authz.${ISSUER}.svc.cluster.local`;
    const provider = {
      name: "test-ext-authz",
      envoyExtAuthzHttp: {
        service: host,
        port: 8000,
        pathPrefix: "/check",
        includeRequestHeadersInCheck: ["x-ext-authz"],
        headersToUpstreamOnAllow: ["x-ext-authz-check-result"],
        headersToDownstreamOnDeny: ["x-ext-authz-check-result"],
      },
    };
    await setExtensionProviders([provider], host);
    const allow = ["-H", "x-ext-authz: allow"];
    const custom = (providerName: string) =>
      policy("ext-authz", SHOP, {
        selector: { matchLabels: { app: "backend" } },
        action: "CUSTOM",
        provider: { name: providerName },
        rules: [{ to: [{ operation: { paths: ["/guarded/*"] } }] }],
      });
    // Every call denied: connections the sidecars pooled before the change drain on the old filters.
    await applyUntil("a CUSTOM policy on /guarded/*", [custom("test-ext-authz")], () => {
      const seen = calls("/guarded/1");
      return only(seen.counts, "403") && seen.out.includes("denied by the test ext-authz server");
    });
    const checks = () =>
      kubectl(["-n", ISSUER, "logs", "-l", "app=ext-authz", "--tail=10000"])
        .split("\n")
        .filter((l) => l.startsWith("CHECK "));
    const before = checks().length;
    const denied = calls("/guarded/1");
    const allowed = calls("/guarded/2", allow);
    const open = calls("/open");
    const asked = await waitFor("the checks in the ext-authz server's log", async () => {
      const lines = checks().slice(before);
      return lines.length >= 10 ? lines : undefined;
    });
    measured["CUSTOM (HTTP ext-authz): /guarded without and with x-ext-authz: allow, /open; checks asked"] = JSON.stringify({
      denied: denied.counts,
      allowed: allowed.counts,
      open: open.counts,
      checks: asked.length,
    });
    expect({ denied: denied.counts, allowed: allowed.counts, open: open.counts }).toEqual({
      denied: { "403": 5 },
      allowed: { "200": 5 },
      open: { "200": 5 },
    });
    // The authorizer's answer reached the client (its body) and, when it allowed, the backend (its header).
    expect(denied.out).toContain("denied by the test ext-authz server");
    expect(allowed.out).toMatch(/RequestHeader=X-Ext-Authz-Check-Result:allowed/i);
    // Asked only about what the rule matches, under the provider's path prefix.
    expect(asked).toHaveLength(10);
    expect(asked.filter((l) => l === "CHECK GET /check/guarded/1")).toHaveLength(5);
    expect(asked.filter((l) => l === "CHECK GET /check/guarded/2")).toHaveLength(5);

    // A provider the mesh config does not define: the rules deny (fail closed), the rest is untouched.
    await applyUntil("the CUSTOM policy naming an undefined provider", [custom("no-such-provider")], () => {
      const seen = calls("/guarded/2", allow);
      return only(seen.counts, "403") && seen.out.includes("RBAC: access denied");
    });
    const failClosed = { guarded: calls("/guarded/2", allow).counts, open: calls("/open").counts };
    measured["CUSTOM with an undefined provider: /guarded with allow header, /open"] = JSON.stringify(failClosed);
    expect(failClosed).toEqual({ guarded: { "403": 5 }, open: { "200": 5 } });
    // Why, where a user looks: `rigger proxy-config authz` for the backend's proxy.
    const backendPod = json<{ items: { metadata: { name: string } }[] }>(["-n", SHOP, "get", "pods", "-l", "app=backend"])
      .items[0]?.metadata.name;
    const view = riggerCli(["proxy-config", "authz", `${backendPod}.${SHOP}`]);
    expect(view).toMatch(new RegExp(`^CUSTOM \\(no-such-provider\\)\\s+ext-authz\\.${SHOP}\\s+1\\s+no$`, "m"));
    expect(view).toContain('available providers are [test-ext-authz] but found "no-such-provider"');
    kubectl(["-n", SHOP, "delete", "authorizationpolicy", "ext-authz"]);
    await waitFor("/guarded answered again", async () => (only(calls("/guarded/1").counts, "200") ? true : undefined));
  });

  test("CUSTOM with a gRPC ext-authz provider: Envoy's Authorization service decides HTTP requests and TCP connections", async () => {
    // Envoy's envoy.service.auth.v3.Authorization/Check over h2c, in Node without a gRPC library:
    // a request allowed when its headers carry x-ext-authz: allow (the map entry's protobuf
    // bytes), every TCP connection denied; each check logged.
    const authorizer = String.raw`
      const frame = (m) => { const h = Buffer.alloc(5); h.writeUInt32BE(m.length, 1); return Buffer.concat([h, m]); };
      const body = Buffer.from('denied by the test grpc ext-authz server');
      const ok = Buffer.from([0x0a, 0x00]);
      const denied = Buffer.concat([Buffer.from([0x0a, 0x02, 0x08, 0x07, 0x12, body.length + 7, 0x0a, 0x03, 0x08, 0x93, 0x03, 0x1a, body.length]), body]);
      require('node:http2').createServer().on('stream', (stream, headers) => {
        const chunks = [];
        stream.on('data', (c) => chunks.push(c));
        stream.on('end', () => {
          const text = Buffer.concat(chunks).toString('latin1');
          const http = text.includes(':method');
          const allow = text.includes('x-ext-authz\x12\x05allow');
          console.log('CHECK ' + headers[':path'] + ' ' + (http ? 'http' : 'tcp') + ' ' + (allow ? 'allow' : 'deny'));
          stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
          stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
          stream.end(frame(allow ? ok : denied));
        });
      }).listen(9000);`;
    runOnRealNode(ISSUER);
    kubectl(["apply", "-f", "-"], nodeScriptDeployment("grpc-authz", ISSUER, authorizer, { port: 9000 }));
    applyService("grpc-authz", ISSUER, { app: "grpc-authz" }, [{ name: "grpc", port: 9000, targetPort: 9000 }]);
    await waitForPods(ISSUER, "app=grpc-authz", 1, isReady, "the gRPC ext-authz server Ready");
    const host = `grpc-authz.${ISSUER}.svc.cluster.local`;
    await setExtensionProviders([{ name: "grpc-authz", envoyExtAuthzGrpc: { service: host, port: 9000 } }], host);
    const checks = () =>
      kubectl(["-n", ISSUER, "logs", "-l", "app=grpc-authz", "--tail=10000"])
        .split("\n")
        .filter((l) => l.startsWith("CHECK "));
    const allow = ["-H", "x-ext-authz: allow"];
    await applyUntil(
      "a CUSTOM policy with the gRPC provider on /guarded/* and port 9090",
      [
        policy("grpc-authz", SHOP, {
          selector: { matchLabels: { app: "backend" } },
          action: "CUSTOM",
          provider: { name: "grpc-authz" },
          rules: [{ to: [{ operation: { paths: ["/guarded/*"] } }] }, { to: [{ operation: { ports: ["9090"] } }] }],
        }),
      ],
      () => only(codes("/guarded/1", [], 5, false), "403") && tcpCall() === "closed",
    );
    const before = checks().length;
    const seen = {
      denied: codes("/guarded/1", [], 5, false),
      allowed: codes("/guarded/2", allow),
      open: codes("/open"),
      tcp: tcpCall(),
    };
    const asked = await waitFor("the checks in the gRPC ext-authz server's log", async () => {
      const lines = checks().slice(before);
      return lines.length >= 11 ? lines : undefined;
    });
    measured["CUSTOM (gRPC ext-authz): /guarded without and with the header, /open, TCP 9090; checks"] = JSON.stringify({
      ...seen,
      checks: asked.length,
    });
    expect(seen).toEqual({ denied: { "403": 5 }, allowed: { "200": 5 }, open: { "200": 5 }, tcp: "closed" });
    const path = "CHECK /envoy.service.auth.v3.Authorization/Check";
    expect(asked.filter((l) => l === `${path} http deny`)).toHaveLength(5);
    expect(asked.filter((l) => l === `${path} http allow`)).toHaveLength(5);
    expect(asked.filter((l) => l === `${path} tcp deny`)).toHaveLength(1);
    expect(asked).toHaveLength(11);
    kubectl(["-n", SHOP, "delete", "authorizationpolicy", "grpc-authz"]);
    await waitFor("/guarded and TCP answered again", async () =>
      only(codes("/guarded/1"), "200") && tcpCall() === "answered" ? true : undefined,
    );
  });

  test("PeerAuthentication: the workload's policy over its namespace's over the mesh's, a port-level mode over the workload's; plaintext and mesh clients", async () => {
    const backend = json<{ items: { status: { podIP: string } }[] }>(["-n", SHOP, "get", "pods", "-l", "app=backend"]).items;
    const podIp = backend[0]?.status.podIP;
    if (!podIp) throw new Error("no backend pod IP");
    // The node itself is outside the mesh: plaintext, straight to the pod's ports.
    const plain = () => ({
      http: echoCallStatus(undefined, `http://${podIp}:8080/`),
      tcp: (() => {
        try {
          return /ServiceVersion=/.test(echoCall(undefined, `tcp://${podIp}:9090`)) ? "ok" : "refused";
        } catch {
          return "refused";
        }
      })(),
    });
    const mesh = () => ({ http: only(codes("/"), "200") ? "ok" : "refused", tcp: tcpCall() === "answered" ? "ok" : "refused" });
    const peer = (name: string, namespace: string, spec: object) => ({
      apiVersion: "security.istio.io/v1",
      kind: "PeerAuthentication",
      metadata: { name, namespace },
      spec,
    });
    const same = (a: object, b: object) => JSON.stringify(a) === JSON.stringify(b);
    expect(plain()).toEqual({ http: "ok", tcp: "ok" });
    const seen: Record<string, object> = {};

    await applyUntil("a mesh-wide STRICT", [peer("default", "istio-system", { mtls: { mode: "STRICT" } })], () =>
      same(plain(), { http: "refused", tcp: "refused" }),
    );
    seen.meshStrict = { plain: plain(), mesh: mesh() };

    await applyUntil("a namespace PERMISSIVE under it", [peer("default", SHOP, { mtls: { mode: "PERMISSIVE" } })], () =>
      same(plain(), { http: "ok", tcp: "ok" }),
    );
    seen.namespacePermissive = { plain: plain(), mesh: mesh() };

    await applyUntil(
      "a workload STRICT with port 9090 PERMISSIVE",
      [
        peer("backend", SHOP, {
          selector: { matchLabels: { app: "backend" } },
          mtls: { mode: "STRICT" },
          portLevelMtls: { 9090: { mode: "PERMISSIVE" } },
        }),
      ],
      () => same(plain(), { http: "refused", tcp: "ok" }),
    );
    seen.workloadStrictPortPermissive = { plain: plain(), mesh: mesh() };

    measured["PeerAuthentication precedence (plaintext / mesh client, HTTP and TCP)"] = JSON.stringify(seen);
    expect(seen).toEqual({
      meshStrict: { plain: { http: "refused", tcp: "refused" }, mesh: { http: "ok", tcp: "ok" } },
      namespacePermissive: { plain: { http: "ok", tcp: "ok" }, mesh: { http: "ok", tcp: "ok" } },
      workloadStrictPortPermissive: { plain: { http: "refused", tcp: "ok" }, mesh: { http: "ok", tcp: "ok" } },
    });
    kubectl(["-n", SHOP, "delete", "peerauthentication", "default", "backend"]);
    kubectl(["-n", "istio-system", "delete", "peerauthentication", "default"]);
    await waitFor("plaintext answered again", async () => (same(plain(), { http: "ok", tcp: "ok" }) ? true : undefined));
  });

  test("no packet left the machine", () => {
    expect(droppedPackets()).toBe(0);
  });
});
