// The controller-manager, scheduler and KWOK really work together: a Deployment's
// pods are created, bound to the fake node and reported Running and Ready.
import type { V1Deployment } from "@kubernetes/client-node";
import { afterAll, beforeAll, expect, test } from "vitest";
import { kubeClients, uniqueName, waitFor } from "./support/kube.ts";

const { core, apps } = kubeClients();
const namespace = uniqueName("e2e-deploy");

beforeAll(async () => {
  await core.createNamespace({ body: { metadata: { name: namespace } } });
});

afterAll(async () => {
  await core.deleteNamespace({ name: namespace });
});

test("a Deployment with 2 replicas becomes Available with 2 Running, Ready pods", async () => {
  const deployment: V1Deployment = {
    metadata: { name: "web", namespace },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: "web" } },
      template: {
        metadata: { labels: { app: "web" } },
        spec: { containers: [{ name: "web", image: "nginx:1.27", ports: [{ containerPort: 80 }] }] },
      },
    },
  };
  await apps.createNamespacedDeployment({ namespace, body: deployment });

  const available = await waitFor("Deployment web to be Available with 2 ready replicas", async () => {
    const d = await apps.readNamespacedDeployment({ name: "web", namespace });
    const condition = d.status?.conditions?.find((c) => c.type === "Available");
    return condition?.status === "True" && d.status?.readyReplicas === 2 ? d : undefined;
  });
  expect(available.status?.availableReplicas).toBe(2);

  const pods = await core.listNamespacedPod({ namespace, labelSelector: "app=web" });
  expect(pods.items).toHaveLength(2);
  for (const pod of pods.items) {
    expect(pod.spec?.nodeName).toBe("kwok-node-0"); // bound by kube-scheduler
    expect(pod.status?.phase).toBe("Running"); // set by KWOK
    expect(pod.status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
    expect(pod.status?.podIP).toMatch(/^10\.244\./);
    expect(pod.metadata?.ownerReferences?.[0]?.kind).toBe("ReplicaSet"); // made by the controller-manager
  }
});
