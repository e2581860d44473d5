// The gateway Secret-access check istiod makes before SDS: answers kept, asked again when they
// expire while the gateway is connected, a changed answer reported (istiod pushes), failures
// counting as denied.
import { afterEach, beforeEach, expect, test, vi } from "vitest";
import { type Identity, SecretAccess } from "./secret-access.ts";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

function setup(answers: (boolean | Error)[], active = () => true) {
  const asked: Identity[] = [];
  const reported: string[] = [];
  const errors: string[] = [];
  const access = new SecretAccess({
    review: async (who) => {
      asked.push(who);
      const answer = answers.shift();
      if (answer instanceof Error) throw answer;
      return answer ?? false;
    },
    onAnswer: (_who, allowed, changed) => reported.push(`${allowed ? "allowed" : "denied"}${changed ? " (changed)" : ""}`),
    onError: (_who, err) => errors.push(err.message),
    active,
    allowedTtlMs: 1000,
    deniedTtlMs: 100,
  });
  return { access, asked, reported, errors };
}

const gw = { namespace: "istio-ingress", serviceAccount: "istio-ingressgateway" };

test("an identity not reviewed yet is denied until the review answers; the answer is kept until it expires", async () => {
  const t = setup([true]);
  expect(t.access.allowed(gw)).toBe(false);
  expect(t.access.allowed(gw)).toBe(false);
  await vi.advanceTimersByTimeAsync(0);
  expect(t.asked).toEqual([gw]);
  expect(t.reported).toEqual(["allowed (changed)"]);
  expect(t.access.allowed(gw)).toBe(true);
  await vi.advanceTimersByTimeAsync(999);
  expect(t.asked.length).toBe(1);
  t.access.stop();
});

test("while the gateway is connected, an expired answer is asked again by itself: a Role granted later takes effect", async () => {
  const t = setup([false, false, true]);
  t.access.allowed(gw);
  await vi.advanceTimersByTimeAsync(0);
  expect(t.reported).toEqual(["denied"]);
  // Nobody asks again (no push); the timer does.
  await vi.advanceTimersByTimeAsync(100);
  expect(t.reported).toEqual(["denied", "denied"]);
  await vi.advanceTimersByTimeAsync(100);
  expect(t.reported).toEqual(["denied", "denied", "allowed (changed)"]);
  expect(t.access.allowed(gw)).toBe(true);
  t.access.stop();
});

test("an answer for a gateway no longer connected is forgotten, not asked again", async () => {
  let connected = true;
  const t = setup([true, true], () => connected);
  t.access.allowed(gw);
  await vi.advanceTimersByTimeAsync(0);
  connected = false;
  await vi.advanceTimersByTimeAsync(5000);
  expect(t.asked.length).toBe(1);
  // Known no more: the next question reviews again.
  expect(t.access.allowed(gw)).toBe(false);
  await vi.advanceTimersByTimeAsync(0);
  expect(t.asked.length).toBe(2);
  t.access.stop();
});

test("a failed review counts as denied and is reported", async () => {
  const t = setup([new Error("connection refused")]);
  expect(t.access.allowed(gw)).toBe(false);
  await vi.advanceTimersByTimeAsync(0);
  expect(t.errors).toEqual(["connection refused"]);
  expect(t.reported).toEqual(["denied"]);
  expect(t.access.allowed(gw)).toBe(false);
  t.access.stop();
});
