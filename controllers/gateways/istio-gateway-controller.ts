// The IstioGateway controller: resolves the gateway's revision (or tag) to an IstioRevision,
// applies istio-gateway.ts's objects owned by the IstioGateway (deleting it garbage-collects
// them), removes the HPA or PDB when turned off, and reports the resolved revision, the
// Deployment's readiness and the Service's addresses. A tag move re-renders the Deployment
// with the new revision in its pod template, which rolls it a pod at a time.

import {
  GATEWAY_LABEL,
  GATEWAYS_PATH,
  gatewayPath,
  type IstioGateway,
  type IstioGatewayStatus,
  REVISIONS_PATH,
  TAGS_PATH,
} from "../../api/operator.ts";
import { applyAll, getOrUndefined, type KubeObject, withRenderedHash, writeStatus } from "../../kube/apply.ts";
import { type Condition, setCondition } from "../../kube/conditions.ts";
import type { Controller } from "../../kube/controller.ts";
import type { EventRecorder } from "../../kube/events.ts";
import type { RawClient } from "../../kube/raw-client.ts";
import { ownedBy } from "../install/ownership.ts";
import { type ServiceState, serviceAddresses } from "./gateway-status.ts";
import { autoscaled, deploymentReadiness, disruptionBudgeted, renderIstioGateway } from "./istio-gateway.ts";
import { resolveGatewayRevision } from "./revisions.ts";

/** The IstioGateway at a queue key, namespace/name. */
function keyPath(key: string): string {
  const [namespace = "", name = ""] = key.split("/");
  return gatewayPath(namespace, name);
}

export function istioGatewayController({ client, events }: { client: RawClient; events?: EventRecorder }): Controller {
  const known = new Set<string>();

  const reconcile = async (key: string) => {
    const gateway = await getOrUndefined<IstioGateway>(client, keyPath(key));
    if (!gateway || gateway.metadata.deletionTimestamp) {
      known.delete(key);
      return undefined;
    }
    known.add(key);
    const { name, namespace = "" } = gateway.metadata;
    const now = new Date();
    let conditions = gateway.status?.conditions;
    const set = (type: string, status: Condition["status"], reason: string, message: string) => {
      conditions = setCondition(
        conditions,
        { type, status, reason, message, observedGeneration: gateway.metadata.generation },
        now,
      );
    };

    const resolved = await resolveGatewayRevision(client, gateway.spec.revision);
    let revision = gateway.status?.revision;
    if (typeof resolved === "string") {
      // Keep whatever runs: a gateway must not go down because its tag is being recreated.
      set("Reconciled", "False", "RevisionNotFound", resolved);
    } else {
      const objects = renderIstioGateway(gateway, resolved.revision.metadata.name);
      const refused = await applyAll(
        client,
        objects.map((obj) => withRenderedHash(ownedBy(obj, gateway, GATEWAY_LABEL))),
      );
      if (refused) {
        set("Reconciled", "False", "Invalid", refused);
      } else {
        revision = resolved.revision.metadata.name;
        const off = [
          ...(autoscaled(gateway) ? [] : [`/apis/autoscaling/v2/namespaces/${namespace}/horizontalpodautoscalers/${name}`]),
          ...(disruptionBudgeted(gateway) ? [] : [`/apis/policy/v1/namespaces/${namespace}/poddisruptionbudgets/${name}`]),
        ];
        for (const path of off) {
          const live = await getOrUndefined<KubeObject>(client, path);
          if (live?.metadata.labels?.[GATEWAY_LABEL] === name) await client.delete(path);
        }
        const via = resolved.tag ? `tag ${resolved.tag} → ` : "";
        const previous = gateway.status?.revision;
        if (previous && previous !== revision)
          await events?.record(
            gateway,
            "Normal",
            "RevisionChanged",
            `rolling from ${previous} to ${revision}, one pod at a time`,
          );
        set("Reconciled", "True", "Reconciled", `${objects.length} objects applied; revision ${via}${revision}`);
      }
    }

    const deployment = await getOrUndefined<Parameters<typeof deploymentReadiness>[0]>(
      client,
      `/apis/apps/v1/namespaces/${namespace}/deployments/${name}`,
    );
    const readiness = deploymentReadiness(deployment);
    set("Ready", readiness.ready ? "True" : "False", readiness.ready ? "Available" : "NotAvailable", readiness.message);
    const wasReady = gateway.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
    if (wasReady !== readiness.ready && gateway.status?.conditions)
      await events?.record(
        gateway,
        readiness.ready ? "Normal" : "Warning",
        readiness.ready ? "Available" : "NotAvailable",
        readiness.message,
      );
    const service = await getOrUndefined<ServiceState>(client, `/api/v1/namespaces/${namespace}/services/${name}`);
    const reconciled = conditions?.find((c) => c.type === "Reconciled");
    const status: IstioGatewayStatus = {
      observedGeneration: gateway.metadata.generation,
      conditions,
      state:
        reconciled?.status !== "True"
          ? reconciled?.reason
          : !readiness.ready
            ? "NotReady"
            : readiness.rolling
              ? "RollingOut"
              : "Healthy",
      revision,
      replicas: deployment?.spec?.replicas,
      readyReplicas: deployment?.status?.availableReplicas ?? 0,
      addresses: service ? serviceAddresses(service) : undefined,
    };
    await writeStatus(client, gateway, gateway.status, status);
    return undefined;
  };

  const all = () => [...known];
  const owned = (_key: string, object?: { metadata?: { namespace?: string; labels?: Record<string, string> } }) => {
    const owner = object?.metadata?.labels?.[GATEWAY_LABEL];
    return owner && object?.metadata?.namespace ? [`${object.metadata.namespace}/${owner}`] : [];
  };
  return {
    name: "istiogateway",
    reconcile,
    watches: [
      { path: GATEWAYS_PATH, map: (key) => [key] },
      { path: TAGS_PATH, map: all },
      { path: REVISIONS_PATH, map: all },
      { path: "/apis/apps/v1/deployments", labelSelector: GATEWAY_LABEL, map: owned },
      { path: "/api/v1/services", labelSelector: GATEWAY_LABEL, map: owned },
    ],
  };
}
