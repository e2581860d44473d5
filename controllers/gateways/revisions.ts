// Which control plane revision a gateway belongs to. A gateway names a revision or a tag
// (IstioGateway spec.revision, a Gateway API Gateway's istio.io/rev label), or nothing: then
// the default revision, which is what the `default` tag points at, else the revision named
// `default`. Both gateway controllers use this one rule.

import { type IstioRevision, type IstioRevisionTag, REVISIONS_PATH, TAGS_PATH } from "../../api/operator.ts";
import { getOrUndefined } from "../../kube/apply.ts";
import type { RawClient } from "../../kube/raw-client.ts";
import { parseMeshConfig } from "../../webhooks/inject/config.ts";
import { proxyImage } from "../../webhooks/inject/inject.ts";
import { proxyConfigJson } from "../../webhooks/inject/sidecar-template.ts";
import { meshConfigMap, revisionValues } from "../install/configmaps.ts";
import { istiodName } from "../install/revision.ts";
import type { GatewaySettings } from "./kube-gateway.ts";

export interface GatewayRevision {
  revision: IstioRevision;
  /** The tag the reference went through, if any. */
  tag?: string;
}

/** The revision `ref` names now (a tag resolved), or a sentence saying why there is none. */
export async function resolveGatewayRevision(client: RawClient, ref: string | undefined): Promise<GatewayRevision | string> {
  const wanted = ref || "default";
  const tag = await getOrUndefined<IstioRevisionTag>(client, `${TAGS_PATH}/${wanted}`);
  if (tag) {
    const target = tag.status?.istioRevision;
    if (!target) return `revision tag ${wanted} does not point at a revision yet`;
    const revision = await getOrUndefined<IstioRevision>(client, `${REVISIONS_PATH}/${target}`);
    return revision
      ? { revision, tag: wanted }
      : `revision tag ${wanted} points at IstioRevision ${target}, which does not exist`;
  }
  const revision = await getOrUndefined<IstioRevision>(client, `${REVISIONS_PATH}/${wanted}`);
  if (revision) return { revision };
  return ref
    ? `no IstioRevision or IstioRevisionTag named ${ref}`
    : "no default revision: create an IstioRevisionTag named default, an Istio named default, or name a revision";
}

/** What a gateway's proxy needs to know about its control plane (kube-gateway.ts's settings). */
export function controlPlaneOf(revision: IstioRevision): GatewaySettings {
  const name = revision.metadata.name;
  const spec = { name, namespace: revision.spec.namespace, version: revision.spec.version, values: revision.spec.values };
  const values = revisionValues(spec);
  const mesh = parseMeshConfig(meshConfigMap(spec).data?.mesh ?? "");
  const g = values.global;
  return {
    proxyImage: proxyImage(values, mesh.defaultConfig, {}),
    istioNamespace: revision.spec.namespace,
    istiodService: istiodName(name),
    revision: name,
    trustDomain: mesh.trustDomain || g.trustDomain || "cluster.local",
    proxyConfigJson: proxyConfigJson(mesh.defaultConfig),
    clusterId: g.multiCluster.clusterName,
    network: g.network,
    proxyMetadata: mesh.defaultConfig?.proxyMetadata as Record<string, string> | undefined,
  };
}
