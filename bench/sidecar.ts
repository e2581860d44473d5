// `make bench-sidecar`: how much of a 1,000-service mesh one sidecar is sent, with and without a
// Sidecar resource scoping it to its own namespace and istio-system (`./*`, `istio-system/*`),
// from Rigger's generators and from upstream's (the pinned release, in-process through the
// parity oracle), on the same objects. 1,000 Services (HTTP port 80, 10 ready endpoints each) in
// 50 namespaces of 20, istiod in istio-system; the proxy is a pod in the first namespace.
// Sizes are of the configuration as proto3 JSON (clusters, listeners, routes, load
// assignments), counted the same way for both. No cluster; prints a table; asserts nothing.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { versions } from "../versions.ts";
import { type ProxyConfig, rigger, type Scenario } from "../xds/parity/scenario.ts";

const ROOT = join(import.meta.dirname, "..");
const NAMESPACES = 50;
const PER_NAMESPACE = 20;
const ENDPOINTS = 10;

function scenario(sidecar: boolean): Scenario {
  const docs: string[] = [
    `apiVersion: v1
kind: Service
metadata: { name: istiod, namespace: istio-system }
spec: { clusterIP: 10.96.0.10, selector: { app: istiod }, ports: [{ name: grpc-xds, port: 15010 }, { name: https-dns, port: 15012 }] }`,
    `apiVersion: v1
kind: Pod
metadata: { name: app-0, namespace: ns-0, labels: { app: app, security.istio.io/tlsMode: istio } }
spec: { serviceAccountName: app, nodeName: node-a, containers: [{ name: app, image: app }] }
status: { phase: Running, podIP: 10.10.0.1, podIPs: [{ ip: 10.10.0.1 }], conditions: [{ type: Ready, status: "True" }] }`,
  ];
  let k = 0;
  for (let n = 0; n < NAMESPACES; n++)
    for (let s = 0; s < PER_NAMESPACE; s++) {
      const i = n * PER_NAMESPACE + s;
      docs.push(`apiVersion: v1
kind: Service
metadata: { name: svc-${s}, namespace: ns-${n} }
spec: { clusterIP: 10.97.${i >> 8}.${i & 255}, selector: { app: svc-${s} }, ports: [{ name: http, port: 80, targetPort: 8080 }] }`);
      const addresses = Array.from({ length: ENDPOINTS }, () => {
        k++;
        return `{ addresses: [10.200.${(k >> 8) & 255}.${k & 255}], conditions: { ready: true } }`;
      });
      docs.push(`apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: svc-${s}-1, namespace: ns-${n}, labels: { kubernetes.io/service-name: svc-${s} } }
addressType: IPv4
endpoints: [${addresses.join(", ")}]
ports: [{ name: http, port: 8080, protocol: TCP }]`);
    }
  return {
    proxies: [
      {
        name: "app-0",
        namespace: "ns-0",
        ip: "10.10.0.1",
        serviceAccount: "app",
        labels: { app: "app", "security.istio.io/tlsMode": "istio" },
      },
    ],
    config: sidecar
      ? `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: ns-0, creationTimestamp: "2026-01-01T00:00:00Z" }
spec: { egress: [{ hosts: ["./*", "istio-system/*"] }] }`
      : "",
    kubernetes: docs.join("\n---\n"),
  };
}

function upstream(input: Scenario): Record<string, ProxyConfig> {
  const hash = createHash("sha256")
    .update(readFileSync(join(ROOT, "xds/parity/upstream/main.go")))
    .digest("hex")
    .slice(0, 12);
  const oracle = join(ROOT, ".cache/bin", `xds-oracle-${versions.istio}-${hash}`, "rigger-xds-oracle");
  const out = join(mkdtempSync(join(tmpdir(), "rigger-bench-sidecar-")), "upstream.json");
  execFileSync(oracle, [out], { input: JSON.stringify(input), stdio: ["pipe", "ignore", "inherit"], maxBuffer: 1 << 30 });
  return JSON.parse(readFileSync(out, "utf8"));
}

function measure(config: ProxyConfig) {
  const bytes = (list: unknown[]) => list.reduce<number>((n, r) => n + JSON.stringify(r).length, 0);
  return {
    clusters: config.clusters.length,
    listeners: config.listeners.length,
    endpoints: config.endpoints.reduce<number>(
      (n, a) =>
        n +
        ((a.endpoints as { lbEndpoints?: unknown[] }[] | undefined) ?? []).reduce((m, l) => m + (l.lbEndpoints?.length ?? 0), 0),
      0,
    ),
    kib: (bytes(config.clusters) + bytes(config.listeners) + bytes(config.routes) + bytes(config.endpoints)) / 1024,
  };
}

const rows: string[][] = [];
for (const sidecar of [false, true]) {
  const input = scenario(sidecar);
  const ours = Object.values(rigger(input))[0] as ProxyConfig;
  const theirs = Object.values(upstream(input))[0] as ProxyConfig;
  for (const [who, config] of [
    ["rigger", ours],
    ["upstream 1.27.9", theirs],
  ] as const) {
    const m = measure(config);
    rows.push([
      sidecar ? "Sidecar ./* + istio-system/*" : "no Sidecar",
      who,
      String(m.clusters),
      String(m.listeners),
      String(m.endpoints),
      m.kib.toFixed(0),
    ]);
  }
}
const header = ["scope", "generator", "clusters", "listeners", "endpoints", "KiB (proto3 JSON)"];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" | ")} |`;
console.log(`one sidecar in a mesh of ${NAMESPACES * PER_NAMESPACE} services × ${ENDPOINTS} endpoints:`);
console.log(line(header));
console.log(line(widths.map((w) => "-".repeat(w))));
for (const row of rows) console.log(line(row));
