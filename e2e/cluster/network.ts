// The local cluster's network, kept on this machine: one bridge for the real node's pods, routes
// that send every pod and Service address to that bridge or nowhere, and an iptables guard that
// drops and counts any packet for those ranges (or from a pod) that would leave by another
// interface. Nothing is masqueraded or forwarded to the uplink. Needs root.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";

/** The real node's bridge; its address is the node's address (kubelet, cluster DNS, the apiserver's endpoint). */
export const BRIDGE = "rigger0";
export const NODE_IP = "10.244.200.1";
/** The real node's pods (CNI host-local IPAM on the bridge). */
export const NODE_POD_CIDR = "10.244.200.0/24";
/** KWOK's fake pods get addresses from here: they exist nowhere, and the routes below make them unreachable. */
export const KWOK_POD_CIDR = "10.244.0.1/17";
/** Every pod address of the cluster. */
export const POD_CIDR = "10.244.0.0/16";
export const SERVICE_CIDR = "10.96.0.0/16";
/** Wider than the Service range, so a typo'd Service address is unreachable rather than routed by default. */
const SERVICE_COVER = "10.96.0.0/12";

const GUARD_OUT = "RIGGER-GUARD-OUT";
const GUARD_FWD = "RIGGER-GUARD-FWD";
const GUARD_IN = "RIGGER-GUARD-IN";

export class NetworkError extends Error {}

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function tryRun(cmd: string, args: string[]): boolean {
  try {
    run(cmd, args);
    return true;
  } catch {
    return false;
  }
}

interface RouteJson {
  dst: string;
  dev?: string;
  type?: string;
  protocol?: string;
}

function routes(): RouteJson[] {
  return JSON.parse(run("ip", ["-j", "route", "show", "table", "main"])) as RouteJson[];
}

function ipv4ToInt(ip: string): number {
  return ip.split(".").reduce((acc, part) => acc * 256 + Number(part), 0);
}

/** True when two CIDRs share an address. */
export function cidrsOverlap(a: string, b: string): boolean {
  const range = (cidr: string): [number, number] => {
    const [ip = "0.0.0.0", bits = "32"] = cidr.split("/");
    const size = 2 ** (32 - Number(bits));
    const start = Math.floor(ipv4ToInt(ip) / size) * size;
    return [start, start + size - 1];
  };
  const [a0, a1] = range(a);
  const [b0, b1] = range(b);
  return a0 <= b1 && b0 <= a1;
}

/**
 * The routes and iptables rules this module installs, as commands, in order. Pure, so the
 * unit test pins exactly what touches the machine's network.
 */
export function guardRules(): { chain: string; hook: string; rules: string[][] }[] {
  // Whatever got past a chain's exceptions and still names a cluster range would leave the machine.
  const leaving = [
    ["-d", POD_CIDR, "-j", "DROP"],
    ["-d", SERVICE_COVER, "-j", "DROP"],
    ["-s", POD_CIDR, "-j", "DROP"],
  ];
  return [
    {
      chain: GUARD_OUT,
      hook: "OUTPUT",
      rules: [["-o", BRIDGE, "-j", "RETURN"], ["-o", "lo", "-j", "RETURN"], ...leaving],
    },
    {
      chain: GUARD_FWD,
      hook: "FORWARD",
      rules: [
        // Pod to pod, and pod to a Service after kube-proxy's DNAT: the bridge both ways.
        ["-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT"],
        // Anything else forwarded from the bridge, or for the cluster's ranges, would leave the machine.
        ["-i", BRIDGE, "-j", "DROP"],
        ...leaving,
      ],
    },
    {
      // The apiserver listens on every address (pods reach it at the node's address): refuse it
      // from any interface but loopback and the bridge. Not counted as leaving.
      chain: GUARD_IN,
      hook: "INPUT",
      rules: [
        ["-i", "lo", "-j", "RETURN"],
        ["-i", BRIDGE, "-j", "RETURN"],
        ["-d", NODE_IP, "-j", "DROP"],
      ],
    },
  ];
}

export interface NetworkState {
  ipForwardBefore: string;
}

/**
 * Creates the bridge, routes and guard. Fails naming the conflict when another interface or
 * route already uses one of the cluster's ranges.
 */
export function setUpNetwork(stateFile: string, extraInputPorts: number[]): void {
  if (process.getuid?.() !== 0) {
    throw new NetworkError("the real node needs root (bridge, routes, iptables, containerd); run as root");
  }
  for (const tool of ["ip", "iptables"]) {
    if (!tryRun(tool, ["--version"]) && !tryRun(tool, ["-V"])) {
      throw new NetworkError(`${tool} is not installed (make cluster-build installs the Debian packages)`);
    }
  }
  for (const route of routes()) {
    if (route.dst === "default" || route.dev === BRIDGE) continue;
    for (const ours of [POD_CIDR, SERVICE_COVER]) {
      const dst = route.dst.includes("/") ? route.dst : `${route.dst}/32`;
      if (route.type !== "unreachable" && cidrsOverlap(dst, ours)) {
        throw new NetworkError(
          `route ${route.dst}${route.dev ? ` dev ${route.dev}` : ""} overlaps the cluster's range ${ours}; ` +
            "remove it or stop what added it, then try again",
        );
      }
    }
  }
  if (existsSync(`/sys/class/net/${BRIDGE}`) && !existsSync(stateFile)) {
    throw new NetworkError(
      `interface ${BRIDGE} already exists and was not made by this cluster; remove it (ip link del ${BRIDGE})`,
    );
  }
  tearDownNetwork(stateFile); // leftovers of a crashed run of ours
  const state: NetworkState = { ipForwardBefore: readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim() };
  writeFileSync(stateFile, JSON.stringify(state));

  run("ip", ["link", "add", BRIDGE, "type", "bridge"]);
  run("ip", ["addr", "add", `${NODE_IP}/24`, "dev", BRIDGE]);
  run("ip", ["link", "set", BRIDGE, "up"]);
  run("ip", ["route", "add", "unreachable", POD_CIDR]);
  run("ip", ["route", "add", "unreachable", SERVICE_COVER]);
  // The host's own connections to a Service address are routed before kube-proxy's DNAT
  // rewrites them, so the Service range needs a route: the bridge, never the uplink.
  run("ip", ["route", "add", SERVICE_CIDR, "dev", BRIDGE]);
  for (const { chain, hook, rules } of guardRules()) {
    run("iptables", ["-w", "-N", chain]);
    for (const rule of rules) run("iptables", ["-w", "-A", chain, ...rule]);
    if (chain === GUARD_IN) {
      for (const port of extraInputPorts) {
        run("iptables", ["-w", "-A", chain, "-p", "tcp", "--dport", String(port), "-j", "DROP"]);
      }
    }
    run("iptables", ["-w", "-I", hook, "1", "-j", chain]);
  }
  // Pod to Service is routed (pod → bridge address → DNAT → pod): forwarding on, guarded above.
  writeFileSync("/proc/sys/net/ipv4/ip_forward", "1");
}

/** Packets the guard dropped on their way out (OUTPUT and FORWARD); 0 when nothing tried to leave. */
export function droppedPackets(): number {
  let total = 0;
  for (const chain of [GUARD_OUT, GUARD_FWD]) {
    let out: string;
    try {
      out = run("iptables", ["-w", "-L", chain, "-v", "-x", "-n"]);
    } catch {
      continue;
    }
    for (const line of out.split("\n").slice(2)) {
      const fields = line.trim().split(/\s+/);
      if (fields[2] === "DROP") total += Number(fields[0]);
    }
  }
  return total;
}

/** Removes the guard, routes and bridge (each only if present) and restores ip_forward. */
export function tearDownNetwork(stateFile: string): void {
  for (const { chain, hook } of guardRules()) {
    while (tryRun("iptables", ["-w", "-D", hook, "-j", chain])) {}
    tryRun("iptables", ["-w", "-F", chain]);
    tryRun("iptables", ["-w", "-X", chain]);
  }
  tryRun("ip", ["route", "del", SERVICE_CIDR, "dev", BRIDGE]);
  tryRun("ip", ["route", "del", "unreachable", POD_CIDR]);
  tryRun("ip", ["route", "del", "unreachable", SERVICE_COVER]);
  if (existsSync(`/sys/class/net/${BRIDGE}`)) tryRun("ip", ["link", "del", BRIDGE]);
  if (existsSync(stateFile)) {
    const state = JSON.parse(readFileSync(stateFile, "utf8")) as NetworkState;
    writeFileSync("/proc/sys/net/ipv4/ip_forward", state.ipForwardBefore);
  }
}

/** Splits an iptables-save rule line into arguments (double-quoted parts kept whole). */
export function splitRule(line: string): string[] {
  const args: string[] = [];
  for (const match of line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g))
    args.push(match[1] !== undefined ? match[1].replace(/\\"/g, '"') : (match[2] ?? ""));
  return args;
}

/**
 * Removes the chains kubelet and kube-proxy leave (KUBE-*: kubelet's canaries and firewall,
 * anything `kube-proxy --cleanup` missed) from every table, IPv4 and IPv6: first the rules
 * that jump to them, then the chains.
 */
export function removeKubernetesChains(): void {
  for (const family of ["iptables", "ip6tables"]) {
    for (const table of ["filter", "nat", "mangle", "raw"]) {
      let saved: string;
      try {
        saved = run(`${family}-save`, ["-t", table]);
      } catch {
        continue;
      }
      const lines = saved.split("\n");
      const chains = lines.filter((l) => l.startsWith(":KUBE-")).map((l) => l.slice(1).split(" ")[0] ?? "");
      for (const line of lines.filter((l) => l.startsWith("-A ") && /-j KUBE-|-g KUBE-/.test(l))) {
        const [, chain, ...rest] = splitRule(line);
        if (chain && !chain.startsWith("KUBE-")) tryRun(family, ["-w", "-t", table, "-D", chain, ...rest]);
      }
      for (const chain of chains) tryRun(family, ["-w", "-t", table, "-F", chain]);
      for (const chain of chains) tryRun(family, ["-w", "-t", table, "-X", chain]);
    }
  }
}

/** What of the network is still there: empty after a clean teardown. */
export function networkLeftovers(): string[] {
  const left: string[] = [];
  if (existsSync(`/sys/class/net/${BRIDGE}`)) left.push(`bridge ${BRIDGE}`);
  for (const route of routes()) {
    const dst = route.dst.includes("/") ? route.dst : `${route.dst}/32`;
    if (route.dst !== "default" && (cidrsOverlap(dst, POD_CIDR) || cidrsOverlap(dst, SERVICE_COVER))) {
      left.push(`route ${route.type ?? ""} ${route.dst}`.replace(/\s+/g, " "));
    }
  }
  for (const family of ["iptables", "ip6tables"]) {
    let rules = "";
    try {
      rules = run(`${family}-save`, []);
    } catch {}
    for (const line of rules.split("\n")) {
      if (/RIGGER-GUARD|KUBE-|CNI-/.test(line) && !line.startsWith("#")) left.push(`${family}: ${line}`);
    }
  }
  for (const link of JSON.parse(run("ip", ["-j", "link", "show", "type", "veth"])) as { ifname: string; master?: string }[]) {
    if (link.master === BRIDGE || link.ifname.startsWith("veth")) left.push(`veth ${link.ifname}`);
  }
  return left;
}
