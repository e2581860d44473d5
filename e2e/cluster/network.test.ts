import { expect, test } from "vitest";
import { BRIDGE, cidrsOverlap, guardRules, KWOK_POD_CIDR, NODE_POD_CIDR, POD_CIDR, SERVICE_CIDR, splitRule } from "./network.ts";

test("cidrsOverlap", () => {
  expect(cidrsOverlap("10.244.0.0/16", "10.244.200.0/24")).toBe(true);
  expect(cidrsOverlap("10.244.200.0/24", "10.244.0.0/17")).toBe(false);
  expect(cidrsOverlap("10.96.0.0/16", "10.244.0.0/16")).toBe(false);
  expect(cidrsOverlap("10.0.0.0/8", "10.96.0.1/32")).toBe(true);
  expect(cidrsOverlap("192.168.1.7/32", "192.168.1.7/32")).toBe(true);
});

test("the cluster's ranges are distinct: the real node's pods, KWOK's fake pods, Services", () => {
  expect(cidrsOverlap(NODE_POD_CIDR, KWOK_POD_CIDR)).toBe(false);
  expect(cidrsOverlap(NODE_POD_CIDR, POD_CIDR)).toBe(true);
  expect(cidrsOverlap(KWOK_POD_CIDR, POD_CIDR)).toBe(true);
  expect(cidrsOverlap(SERVICE_CIDR, POD_CIDR)).toBe(false);
});

test("the guard only lets cluster traffic out through the bridge or loopback, and never masquerades", () => {
  const chains = guardRules();
  const out = chains.find((c) => c.hook === "OUTPUT");
  const fwd = chains.find((c) => c.hook === "FORWARD");
  // Everything that is let through names the bridge or loopback as its way out.
  for (const chain of [out, fwd]) {
    for (const rule of chain?.rules ?? []) {
      const verdict = rule[rule.indexOf("-j") + 1];
      if (verdict !== "DROP") expect(rule.join(" ")).toMatch(new RegExp(`-o (${BRIDGE}|lo)`));
    }
    const drops = (chain?.rules ?? []).filter((r) => r.at(-1) === "DROP").map((r) => r.join(" "));
    expect(drops).toContain(`-d ${POD_CIDR} -j DROP`);
    expect(drops).toContain(`-s ${POD_CIDR} -j DROP`);
  }
  expect(fwd?.rules).toContainEqual(["-i", BRIDGE, "-j", "DROP"]);
  expect(JSON.stringify(chains)).not.toMatch(/MASQUERADE|SNAT/);
});

test("iptables-save rule lines split into the arguments that delete them", () => {
  expect(
    splitRule('-A KUBE-FIREWALL ! -s 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -j DROP'),
  ).toEqual([
    "-A",
    "KUBE-FIREWALL",
    "!",
    "-s",
    "127.0.0.0/8",
    "-m",
    "comment",
    "--comment",
    "block incoming localnet connections",
    "-j",
    "DROP",
  ]);
});
