// `make bench-inject`: the sidecar injection webhook under HTTPS load on 127.0.0.1,
// `rigger istiod` and upstream istiod (pilot-discovery at the pinned release) in the same
// run, with the same realistic pod. Prints a table; asserts nothing.
import type { V1Pod } from "@kubernetes/client-node";
import { compare, send, type Target, withBothServers } from "./load.ts";

/** A pod as a Deployment's ReplicaSet creates it: 3 containers, probes, annotations. */
function realisticPod(): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      generateName: "checkout-7c9d8f6b5-",
      namespace: "shop",
      labels: { app: "checkout", version: "v3", "pod-template-hash": "7c9d8f6b5", "app.kubernetes.io/part-of": "shop" },
      annotations: {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "9090",
        "prometheus.io/path": "/metrics",
        "sidecar.istio.io/proxyCPU": "200m",
        "sidecar.istio.io/proxyMemory": "256Mi",
        "traffic.sidecar.istio.io/excludeOutboundPorts": "5432",
      },
      ownerReferences: [
        {
          apiVersion: "apps/v1",
          kind: "ReplicaSet",
          name: "checkout-7c9d8f6b5",
          uid: "6f1c1c3e-8d2a-4c55-9a0e-0c3b6f0e1a11",
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      serviceAccountName: "checkout",
      volumes: [{ name: "config", configMap: { name: "checkout" } }],
      containers: [
        {
          name: "checkout",
          image: "registry.example/shop/checkout:3.4.1",
          ports: [
            { name: "http", containerPort: 8080, protocol: "TCP" },
            { name: "metrics", containerPort: 9090, protocol: "TCP" },
          ],
          env: [{ name: "DB_HOST", value: "postgres.shop.svc" }],
          resources: { requests: { cpu: "250m", memory: "256Mi" }, limits: { memory: "512Mi" } },
          readinessProbe: { httpGet: { path: "/ready", port: "http" }, periodSeconds: 5 },
          livenessProbe: { httpGet: { path: "/live", port: 8080 }, periodSeconds: 10 },
          volumeMounts: [{ name: "config", mountPath: "/etc/checkout" }],
        },
        {
          name: "payments-client",
          image: "registry.example/shop/payments-client:1.2.0",
          ports: [{ name: "grpc", containerPort: 9000, protocol: "TCP" }],
          startupProbe: { grpc: { port: 9000 }, failureThreshold: 30 },
          resources: { requests: { cpu: "50m", memory: "64Mi" } },
        },
        {
          name: "log-shipper",
          image: "registry.example/ops/log-shipper:0.9",
          readinessProbe: { exec: { command: ["cat", "/tmp/ready"] } },
          resources: { requests: { cpu: "10m", memory: "32Mi" } },
        },
      ],
    },
  };
}

function review(): Buffer {
  return Buffer.from(
    JSON.stringify({
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      request: { uid: "bench-1", namespace: "shop", object: realisticPod() },
    }),
  );
}

const body = review();
const injected = (target: Target) =>
  send({ ...target, url: `${target.url}/inject` }, body, (r) => (r.allowed && r.patch ? undefined : "pod was not injected"));

await withBothServers("bench", (targets) =>
  compare(targets, [{ name: "inject a 3-container pod", once: injected }], [100, 500, 1000], "Sidecar injection webhook"),
);
