// The xDS protocol of one stream, state of the world and Delta: first answers, ACK and NACK
// by nonce, stale requests, pushes that send only what changed, removals, and no push loop
// after a NACK.
import { describe, expect, test } from "vitest";
import type { DeltaDiscoveryResponse, DiscoveryResponse } from "../envoy/third_party/envoy/service/discovery/v3/discovery.ts";
import { TypeUrl } from "../envoy/types.ts";
import { DeltaStream, type Resource, SotwStream, type Subscription } from "./stream.ts";

/** Resources by type, editable between pushes; EDS answers only the names asked for. */
function world() {
  const state = new Map<string, Map<string, string>>([
    [
      TypeUrl.cluster,
      new Map([
        ["a", "1"],
        ["b", "1"],
      ]),
    ],
    [TypeUrl.endpoint, new Map([["a", "1"]])],
  ]);
  const generate = (typeUrl: string, sub: Subscription): Resource[] | undefined => {
    const all = state.get(typeUrl);
    if (!all) return undefined;
    return [...all]
      .filter(([name]) => sub.wildcard || sub.names.has(name))
      .map(([name, version]) => ({
        name,
        version,
        resource: { typeUrl, value: new TextEncoder().encode(`${name}@${version}`) },
      }));
  };
  return { state, generate };
}

const names = (r: DiscoveryResponse) => r.resources?.map((a) => new TextDecoder().decode(a.value)) ?? [];
const deltaNames = (r: DeltaDiscoveryResponse) => r.resources?.map((x) => `${x.name}@${x.version}`) ?? [];

describe("state of the world", () => {
  test("wildcard CDS: answered in full; an ACK is not answered; a change is pushed; no change sends nothing", () => {
    const { state, generate } = world();
    const sent: DiscoveryResponse[] = [];
    const acks: string[] = [];
    const stream = new SotwStream(generate, (r) => sent.push(r), { acked: (_t, nonce) => acks.push(nonce) });
    stream.handle({ typeUrl: TypeUrl.cluster, resourceNames: [], responseNonce: "" });
    expect(sent).toHaveLength(1);
    expect(names(sent[0] as DiscoveryResponse)).toEqual(["a@1", "b@1"]);
    const nonce = sent[0]?.nonce ?? "";
    stream.handle({ typeUrl: TypeUrl.cluster, versionInfo: sent[0]?.versionInfo, responseNonce: nonce });
    expect(acks).toEqual([nonce]);
    expect(sent).toHaveLength(1);
    stream.push();
    expect(sent).toHaveLength(1);
    state.get(TypeUrl.cluster)?.set("b", "2");
    stream.push();
    expect(sent).toHaveLength(2);
    expect(names(sent[1] as DiscoveryResponse)).toEqual(["a@1", "b@2"]);
  });

  test("a NACK is reported with Envoy's message and not answered; the same config is not pushed again", () => {
    const { generate } = world();
    const sent: DiscoveryResponse[] = [];
    const nacks: string[] = [];
    const stream = new SotwStream(generate, (r) => sent.push(r), {
      nacked: (t, _n, message, names) => nacks.push(`${t} ${message} [${names.join(",")}]`),
    });
    stream.handle({ typeUrl: TypeUrl.cluster, responseNonce: "" });
    stream.handle({
      typeUrl: TypeUrl.cluster,
      responseNonce: sent[0]?.nonce,
      errorDetail: { code: 3, message: "cluster b: bad", details: [] },
    });
    // The report names what the rejected response carried (state of the world: everything).
    expect(nacks).toEqual([`${TypeUrl.cluster} cluster b: bad [a,b]`]);
    stream.push();
    expect(sent).toHaveLength(1);
  });

  test("a request naming an older nonce is stale: neither ACK nor answer", () => {
    const { state, generate } = world();
    const sent: DiscoveryResponse[] = [];
    const acks: string[] = [];
    const stream = new SotwStream(generate, (r) => sent.push(r), { acked: (_t, n) => acks.push(n) });
    stream.handle({ typeUrl: TypeUrl.cluster, responseNonce: "" });
    state.get(TypeUrl.cluster)?.set("a", "2");
    stream.push();
    stream.handle({ typeUrl: TypeUrl.cluster, responseNonce: sent[0]?.nonce });
    expect(acks).toEqual([]);
    expect(sent).toHaveLength(2);
  });

  test("EDS by name: a new name list with the ACK is answered with those resources", () => {
    const { state, generate } = world();
    state.get(TypeUrl.endpoint)?.set("b", "1");
    const sent: DiscoveryResponse[] = [];
    const stream = new SotwStream(generate, (r) => sent.push(r));
    stream.handle({ typeUrl: TypeUrl.endpoint, resourceNames: ["a"], responseNonce: "" });
    expect(names(sent[0] as DiscoveryResponse)).toEqual(["a@1"]);
    stream.handle({ typeUrl: TypeUrl.endpoint, resourceNames: ["a", "b"], responseNonce: sent[0]?.nonce });
    expect(names(sent[1] as DiscoveryResponse)).toEqual(["a@1", "b@1"]);
  });

  test("an unknown type is answered empty and reported once", () => {
    const { generate } = world();
    const sent: DiscoveryResponse[] = [];
    const unknown: string[] = [];
    const stream = new SotwStream(generate, (r) => sent.push(r), { unknownType: (t) => unknown.push(t) });
    const typeUrl = "type.googleapis.com/istio.networking.nds.v1.NameTable";
    stream.handle({ typeUrl, responseNonce: "" });
    stream.handle({ typeUrl, responseNonce: "" });
    expect(sent.map((r) => [r.typeUrl, r.resources?.length])).toEqual([
      [typeUrl, 0],
      [typeUrl, 0],
    ]);
    expect(unknown).toEqual([typeUrl]);
  });
});

describe("delta", () => {
  test("wildcard CDS: everything first, then only what changed, and removals by name", () => {
    const { state, generate } = world();
    const sent: DeltaDiscoveryResponse[] = [];
    const stream = new DeltaStream(generate, (r) => sent.push(r));
    stream.handle({ typeUrl: TypeUrl.cluster });
    expect(deltaNames(sent[0] as DeltaDiscoveryResponse)).toEqual(["a@1", "b@1"]);
    stream.handle({ typeUrl: TypeUrl.cluster, responseNonce: sent[0]?.nonce });
    expect(sent).toHaveLength(1);
    state.get(TypeUrl.cluster)?.set("a", "2");
    state.get(TypeUrl.cluster)?.delete("b");
    stream.push();
    expect(deltaNames(sent[1] as DeltaDiscoveryResponse)).toEqual(["a@2"]);
    expect(sent[1]?.removedResources).toEqual(["b"]);
    stream.push();
    expect(sent).toHaveLength(2);
  });

  test("a reconnecting proxy that already holds current versions is sent only what differs", () => {
    const { generate } = world();
    const sent: DeltaDiscoveryResponse[] = [];
    const stream = new DeltaStream(generate, (r) => sent.push(r));
    stream.handle({ typeUrl: TypeUrl.cluster, initialResourceVersions: { a: "1", b: "0", gone: "1" } });
    expect(deltaNames(sent[0] as DeltaDiscoveryResponse)).toEqual(["b@1"]);
    expect(sent[0]?.removedResources).toEqual(["gone"]);
  });

  test("subscribing to a name answers it; unsubscribing forgets it; a NACK does not resend", () => {
    const { state, generate } = world();
    state.get(TypeUrl.endpoint)?.set("b", "1");
    const sent: DeltaDiscoveryResponse[] = [];
    const nacks: string[] = [];
    const stream = new DeltaStream(generate, (r) => sent.push(r), {
      nacked: (_t, _n, m, names) => nacks.push(`${m} [${names}]`),
    });
    stream.handle({ typeUrl: TypeUrl.endpoint, resourceNamesSubscribe: ["a"] });
    expect(deltaNames(sent[0] as DeltaDiscoveryResponse)).toEqual(["a@1"]);
    stream.handle({ typeUrl: TypeUrl.endpoint, resourceNamesSubscribe: ["b"], responseNonce: sent[0]?.nonce });
    expect(deltaNames(sent[1] as DeltaDiscoveryResponse)).toEqual(["b@1"]);
    stream.handle({
      typeUrl: TypeUrl.endpoint,
      responseNonce: sent[1]?.nonce,
      errorDetail: { code: 3, message: "bad endpoint", details: [] },
    });
    // Delta: only what that response carried.
    expect(nacks).toEqual(["bad endpoint [b]"]);
    stream.push();
    expect(sent).toHaveLength(2);
    stream.handle({ typeUrl: TypeUrl.endpoint, resourceNamesUnsubscribe: ["b"], responseNonce: sent[1]?.nonce });
    state.get(TypeUrl.endpoint)?.set("b", "2");
    stream.push();
    expect(sent).toHaveLength(2);
  });

  test("a partial push (only some names may have changed) looks at those names only, and removes only among them", () => {
    const { state, generate } = world();
    const asked: (ReadonlySet<string> | undefined)[] = [];
    const sent: DeltaDiscoveryResponse[] = [];
    const stream = new DeltaStream(
      (typeUrl, sub) => {
        asked.push(sub.only);
        return generate(typeUrl, sub);
      },
      (r) => sent.push(r),
    );
    stream.handle({ typeUrl: TypeUrl.cluster });
    stream.handle({ typeUrl: TypeUrl.cluster, responseNonce: sent[0]?.nonce });
    state.get(TypeUrl.cluster)?.set("a", "2");
    state.get(TypeUrl.cluster)?.delete("b");
    // Only "a" is said to have changed: "b"'s removal waits for a push that looks at it.
    stream.push(undefined, new Set(["a"]));
    expect(asked.at(-1)).toEqual(new Set(["a"]));
    expect(deltaNames(sent[1] as DeltaDiscoveryResponse)).toEqual(["a@2"]);
    expect(sent[1]?.removedResources).toEqual([]);
    stream.push();
    expect(sent[2]?.removedResources).toEqual(["b"]);
  });

  test("a cluster sent again is followed by its load assignment, unchanged as it is (Envoy warms the cluster until it has one)", () => {
    const { state, generate } = world();
    const sent: DeltaDiscoveryResponse[] = [];
    const stream = new DeltaStream(generate, (r) => sent.push(r));
    stream.handle({ typeUrl: TypeUrl.cluster });
    stream.handle({ typeUrl: TypeUrl.cluster, responseNonce: sent[0]?.nonce });
    stream.handle({ typeUrl: TypeUrl.endpoint, resourceNamesSubscribe: ["a"] });
    stream.handle({ typeUrl: TypeUrl.endpoint, responseNonce: sent[1]?.nonce });
    expect(sent).toHaveLength(2);
    state.get(TypeUrl.cluster)?.set("a", "2");
    stream.push();
    expect(sent.map((r) => `${r.typeUrl === TypeUrl.cluster ? "cds" : "eds"} ${deltaNames(r)}`).slice(2)).toEqual([
      "cds a@2",
      "eds a@1",
    ]);
    // Nothing changed: nothing sent, the load assignment included.
    stream.push();
    expect(sent).toHaveLength(4);
  });
});

describe("state of the world, clusters sent again", () => {
  test("are followed by every load assignment", () => {
    const { state, generate } = world();
    const sent: DiscoveryResponse[] = [];
    const stream = new SotwStream(generate, (r) => sent.push(r));
    stream.handle({ typeUrl: TypeUrl.cluster });
    stream.handle({ typeUrl: TypeUrl.cluster, responseNonce: sent[0]?.nonce });
    stream.handle({ typeUrl: TypeUrl.endpoint, resourceNames: ["a"] });
    stream.handle({ typeUrl: TypeUrl.endpoint, resourceNames: ["a"], responseNonce: sent[1]?.nonce });
    state.get(TypeUrl.cluster)?.set("b", "2");
    stream.push();
    expect(sent.slice(2).map((r) => `${r.typeUrl === TypeUrl.cluster ? "cds" : "eds"} ${names(r)}`)).toEqual([
      "cds a@1,b@2",
      "eds a@1",
    ]);
  });
});
