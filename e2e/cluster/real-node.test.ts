import { expect, test } from "vitest";
import { NODE_IP } from "./network.ts";
import {
  cniConfig,
  containerdConfig,
  corefile,
  kubeletConfig,
  kubeProxyConfig,
  nodePaths,
  PAUSE_IMAGE,
  registryHostsToml,
} from "./real-node.ts";

const p = nodePaths("/c");

test("containerd keeps its state in the cluster's folder and never pulls", () => {
  const toml = containerdConfig(p);
  expect(toml).toContain('root = "/c/node/containerd/root"');
  expect(toml).toContain('address = "/c/node/containerd/containerd.sock"');
  expect(toml).toContain(`sandbox = "${PAUSE_IMAGE}"`);
  expect(toml).toContain('config_path = "/c/node/containerd/certs.d"');
  expect(toml).toContain("netns_mounts_under_state_dir = true");
  expect(toml).toContain("SystemdCgroup = false");
  // Every registry is a closed port on loopback.
  expect(registryHostsToml()).toMatch(/^server = "http:\/\/127\.0\.0\.1:9"$/m);
});

test("pods get bridge addresses with no masquerade", () => {
  const cni = cniConfig(p) as { plugins: { type: string; ipMasq?: boolean; ipam?: { ranges: { subnet: string }[][] } }[] };
  const bridge = cni.plugins.find((x) => x.type === "bridge");
  expect(bridge?.ipMasq).toBe(false);
  expect(bridge?.ipam?.ranges[0]?.[0]?.subnet).toBe("10.244.200.0/24");
  expect(cni.plugins.map((x) => x.type)).not.toContain("portmap");
});

test("kubelet runs on cgroup v1, serves on the node address, and resolves through cluster DNS only", () => {
  const cfg = kubeletConfig(p, { ca: "ca", servingCert: "c", servingKey: "k" }) as Record<string, unknown>;
  expect(cfg.failCgroupV1).toBe(false);
  expect(cfg.address).toBe(NODE_IP);
  expect(cfg.clusterDNS).toEqual([NODE_IP]);
  expect(cfg.readOnlyPort).toBe(0);
  expect(cfg.authentication).toMatchObject({ anonymous: { enabled: false } });
});

test("kube-proxy opens NodePorts on the bridge only and leaves sysctls alone", () => {
  const cfg = kubeProxyConfig("/k") as { nodePortAddresses: string[]; iptables: { localhostNodePorts: boolean } };
  expect(cfg.nodePortAddresses).toEqual(["10.244.200.0/24"]);
  expect(cfg.iptables.localhostNodePorts).toBe(false);
});

test("CoreDNS serves the cluster domain only, with no upstream forwarder", () => {
  const text = corefile("/k");
  expect(text).toContain(`bind ${NODE_IP}`);
  expect(text).toContain("kubernetes cluster.local");
  expect(text).not.toMatch(/forward|proxy|\.:53/);
});
