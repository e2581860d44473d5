// The JWKS fetcher with a stand-in fetch function (no network): what it hands out, when it
// says something changed, and what it does with a bad answer.
import { expect, test } from "vitest";
import { JwksFetcher, retryDelay } from "./jwks.ts";

const KEYS = '{"keys":[{"kty":"EC","crv":"P-256","x":"a","y":"b"}]}';

function fetcher(answers: Record<string, () => Response>) {
  const changes: number[] = [];
  const warnings: object[] = [];
  const calls: string[] = [];
  const fake = (async (input: string | URL | Request) => {
    const url = String(input);
    calls.push(url);
    const answer = answers[url];
    if (!answer) throw new Error("connection refused");
    return answer();
  }) as typeof fetch;
  const f = new JwksFetcher(() => changes.push(1), { warn: (o) => warnings.push(o) }, fake);
  return { f, changes, warnings, calls };
}

const settle = () => new Promise((r) => setTimeout(r, 10));

test("a key set is fetched once when first asked for, then handed out; its arrival is a change", async () => {
  const { f, changes, calls } = fetcher({ "http://issuer.test/jwks": () => new Response(KEYS) });
  expect(f.keysFor(["http://issuer.test/jwks"]).size).toBe(0);
  await settle();
  expect(changes).toHaveLength(1);
  expect(f.keysFor(["http://issuer.test/jwks"]).get("http://issuer.test/jwks")).toBe(KEYS);
  expect(calls).toEqual(["http://issuer.test/jwks"]);
  f.stop();
});

test("failures leave the URI without keys (tokens refused), warn once per error, and change nothing", async () => {
  const { f, changes, warnings } = fetcher({
    "http://issuer.test/bad": () => new Response("not json"),
    "http://issuer.test/404": () => new Response("", { status: 404 }),
  });
  f.keysFor(["http://issuer.test/bad", "http://issuer.test/404", "http://down.test/jwks", "file:///etc/passwd"]);
  await settle();
  expect(f.keysFor(["http://issuer.test/bad", "http://issuer.test/404", "http://down.test/jwks"]).size).toBe(0);
  expect(changes).toHaveLength(0);
  expect(warnings.map((w) => (w as { error: string }).error).sort()).toEqual([
    expect.stringContaining("is not valid JSON"),
    "connection refused",
    "not an http(s) URI",
    "status 404",
  ]);
  f.stop();
});

test("after failures the next fetch waits 5 s, doubling up to a minute", () => {
  expect([1, 2, 3, 4, 5, 9].map(retryDelay)).toEqual([5_000, 10_000, 20_000, 40_000, 60_000, 60_000]);
});
