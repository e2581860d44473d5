import { expect, test } from "vitest";
import { parseVersionsEnv, versions } from "./versions.ts";

test("parses KEY=VALUE lines and ignores comments", () => {
  const text = [
    "# a comment",
    "ISTIO_VERSION=1.2.3",
    "ISTIO_API_MODULE_VERSION=v1.2.3",
    "KUBERNETES_VERSION=1.33.1",
    "",
    "ETCD_VERSION=3.5.0",
    "KWOK_VERSION=0.7.0",
    "NODE_VERSION=24.0.0",
    "GATEWAY_API_VERSION=1.3.0",
    "CONTAINERD_VERSION=2.2.9",
    "COREDNS_VERSION=1.14.6",
    "ENVOY_VERSION=1.36.4",
  ].join("\n");
  expect(parseVersionsEnv(text)).toEqual({
    istio: "1.2.3",
    istioApiModule: "v1.2.3",
    kubernetes: "1.33.1",
    etcd: "3.5.0",
    kwok: "0.7.0",
    node: "24.0.0",
    gatewayApi: "1.3.0",
    containerd: "2.2.9",
    coredns: "1.14.6",
    envoy: "1.36.4",
  });
});

test("names the missing key", () => {
  expect(() => parseVersionsEnv("ISTIO_VERSION=1.2.3\nISTIO_API_MODULE_VERSION=v1\n")).toThrow(
    "versions.env: KUBERNETES_VERSION is missing",
  );
});

test("the checked-in versions.env pins a Kubernetes in upstream support (1.35 or newer)", () => {
  const [major, minor] = versions.kubernetes.split(".").map(Number);
  expect(major).toBe(1);
  expect(minor).toBeGreaterThanOrEqual(35);
});
