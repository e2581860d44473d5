// The IstioGateway controller, tested by the writes it makes (in-memory client): what a gateway
// becomes, what it writes when its revision does not exist, and nothing when converged.
import { describe, expect, test } from "vitest";
import { gatewayPath, REVISIONS_PATH } from "../../api/operator.ts";
import { RecordingClient } from "../../kube/recording-client.ts";
import { istioGatewayController } from "./istio-gateway-controller.ts";

function cluster(revision: string, revisionExists: boolean) {
  const client = new RecordingClient().put(gatewayPath("edge", "ingress"), {
    apiVersion: "operator.rigger.dev/v1alpha1",
    kind: "IstioGateway",
    metadata: { name: "ingress", namespace: "edge", uid: "uid-gw", generation: 1 },
    spec: { revision },
  });
  if (revisionExists)
    client.put(`${REVISIONS_PATH}/${revision}`, {
      apiVersion: "operator.rigger.dev/v1alpha1",
      kind: "IstioRevision",
      metadata: { name: revision, uid: "uid-rev" },
      spec: { namespace: "istio-system" },
    });
  return client;
}

const statusOf = (client: RecordingClient) =>
  (
    client.objects.get(gatewayPath("edge", "ingress")) as {
      status?: { conditions?: { type: string; status: string; reason: string }[]; revision?: string };
    }
  ).status;

describe("istioGatewayController, by its writes", () => {
  test("a gateway on an existing revision: dry runs, then its objects, then its status; nothing when converged", async () => {
    const client = cluster("canary", true);
    const controller = istioGatewayController({ client });
    await controller.reconcile("edge/ingress");
    const objects = [
      "/api/v1/namespaces/edge/serviceaccounts/ingress",
      "/apis/rbac.authorization.k8s.io/v1/namespaces/edge/rolebindings/ingress",
      "/apis/apps/v1/namespaces/edge/deployments/ingress",
      "/api/v1/namespaces/edge/services/ingress",
      // An ingress gateway is autoscaled and has a disruption budget by default, as upstream's chart.
      "/apis/autoscaling/v2/namespaces/edge/horizontalpodautoscalers/ingress",
      "/apis/policy/v1/namespaces/edge/poddisruptionbudgets/ingress",
    ];
    expect(client.writeLines()).toEqual([
      ...objects.map((p) => `apply-dry-run ${p}`),
      ...objects.map((p) => `apply ${p}`),
      `apply ${gatewayPath("edge", "ingress")}/status`,
    ]);
    expect(statusOf(client)?.revision).toBe("canary");
    expect(statusOf(client)?.conditions?.find((c) => c.type === "Reconciled")).toMatchObject({
      status: "True",
      reason: "Reconciled",
    });
    client.writes.length = 0;
    await controller.reconcile("edge/ingress");
    expect(client.writeLines()).toEqual([]);
  });

  test("a gateway whose revision does not exist: only its status, saying so", async () => {
    const client = cluster("no-such-revision", false);
    await istioGatewayController({ client }).reconcile("edge/ingress");
    expect(client.writeLines()).toEqual([`apply ${gatewayPath("edge", "ingress")}/status`]);
    expect(statusOf(client)?.conditions?.find((c) => c.type === "Reconciled")).toMatchObject({
      status: "False",
      reason: "RevisionNotFound",
    });
  });
});
