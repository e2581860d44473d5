// The pinned versions, read from versions.env (the one place they are recorded).
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export interface Versions {
  istio: string;
  istioApiModule: string;
  kubernetes: string;
  etcd: string;
  kwok: string;
  node: string;
  gatewayApi: string;
  containerd: string;
  coredns: string;
  envoy: string;
}

const KEYS: Record<keyof Versions, string> = {
  istio: "ISTIO_VERSION",
  istioApiModule: "ISTIO_API_MODULE_VERSION",
  kubernetes: "KUBERNETES_VERSION",
  etcd: "ETCD_VERSION",
  kwok: "KWOK_VERSION",
  node: "NODE_VERSION",
  gatewayApi: "GATEWAY_API_VERSION",
  containerd: "CONTAINERD_VERSION",
  coredns: "COREDNS_VERSION",
  envoy: "ENVOY_VERSION",
};

export function parseVersionsEnv(text: string): Versions {
  const values = new Map<string, string>();
  for (const line of text.split("\n")) {
    const match = /^\s*([A-Z0-9_]+)=(\S+)\s*$/.exec(line);
    if (match?.[1] && match[2]) values.set(match[1], match[2]);
  }
  const read = (key: string): string => {
    const value = values.get(key);
    if (!value) throw new Error(`versions.env: ${key} is missing`);
    return value;
  };
  return {
    istio: read(KEYS.istio),
    istioApiModule: read(KEYS.istioApiModule),
    kubernetes: read(KEYS.kubernetes),
    etcd: read(KEYS.etcd),
    kwok: read(KEYS.kwok),
    node: read(KEYS.node),
    gatewayApi: read(KEYS.gatewayApi),
    containerd: read(KEYS.containerd),
    coredns: read(KEYS.coredns),
    envoy: read(KEYS.envoy),
  };
}

export const versions: Versions = parseVersionsEnv(
  readFileSync(fileURLToPath(new URL("./versions.env", import.meta.url)), "utf8"),
);
