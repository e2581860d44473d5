// The gateway Secret-access check istiod makes before SDS: answers kept, re-asked when stale,
// a changed answer reported (istiod pushes), failures counting as denied.
import { expect, test } from "vitest";
import { type Identity, SecretAccess } from "./secret-access.ts";

function setup(answers: (boolean | Error)[]) {
  let now = 0;
  const asked: Identity[] = [];
  let changes = 0;
  const errors: string[] = [];
  const access = new SecretAccess({
    review: async (who) => {
      asked.push(who);
      const answer = answers.shift();
      if (answer instanceof Error) throw answer;
      return answer ?? false;
    },
    onAnswer: (_who, _allowed, changed) => {
      if (changed) changes++;
    },
    onError: (_who, err) => errors.push(err.message),
    allowedTtlMs: 1000,
    deniedTtlMs: 100,
    now: () => now,
  });
  return {
    access,
    asked,
    errors,
    changes: () => changes,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

const gw = { namespace: "istio-ingress", serviceAccount: "istio-ingressgateway" };
const settle = () => new Promise((r) => setImmediate(r));

test("an identity not reviewed yet is denied until the review answers; the answer is kept", async () => {
  const t = setup([true]);
  expect(t.access.allowed(gw)).toBe(false);
  expect(t.access.allowed(gw)).toBe(false);
  await settle();
  expect(t.asked).toEqual([gw]);
  expect(t.changes()).toBe(1);
  expect(t.access.allowed(gw)).toBe(true);
  t.advance(999);
  expect(t.access.allowed(gw)).toBe(true);
  await settle();
  expect(t.asked.length).toBe(1);
});

test("a stale answer is still used while it is asked again; a change is reported once", async () => {
  const t = setup([true, false, false]);
  t.access.allowed(gw);
  await settle();
  t.advance(1000);
  expect(t.access.allowed(gw)).toBe(true);
  await settle();
  expect(t.asked.length).toBe(2);
  expect(t.changes()).toBe(2);
  expect(t.access.allowed(gw)).toBe(false);
  // Denials are asked again sooner (a binding added later takes effect).
  t.advance(100);
  t.access.allowed(gw);
  await settle();
  expect(t.asked.length).toBe(3);
  expect(t.changes()).toBe(2);
});

test("a failed review counts as denied and is reported", async () => {
  const t = setup([new Error("connection refused")]);
  expect(t.access.allowed(gw)).toBe(false);
  await settle();
  expect(t.errors).toEqual(["connection refused"]);
  expect(t.access.allowed(gw)).toBe(false);
  expect(t.changes()).toBe(0);
});
