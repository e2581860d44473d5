// Reading objects to analyze from a cluster: every kind a check reads, listed cluster-wide
// (objects of one namespace refer to others': messages are filtered by namespace afterwards). A kind the cluster does not serve (its CRD not installed) is skipped;
// Secrets the caller may not list are skipped with a note (only the Gateway certificate check
// needs them); any other failure (no connection, not authenticated) is an error.
import { ApiError, type RawClient } from "../kube/raw-client.ts";
import type { AnalysisResource } from "./analyze.ts";

/** `[apiVersion, kind, plural]` of every kind a check reads. */
export const CLUSTER_KINDS: readonly [string, string, string][] = [
  ["v1", "Namespace", "namespaces"],
  ["v1", "Pod", "pods"],
  ["v1", "Service", "services"],
  ["v1", "ConfigMap", "configmaps"],
  ["v1", "Secret", "secrets"],
  ["discovery.k8s.io/v1", "EndpointSlice", "endpointslices"],
  ["networking.istio.io/v1", "VirtualService", "virtualservices"],
  ["networking.istio.io/v1", "DestinationRule", "destinationrules"],
  ["networking.istio.io/v1", "Gateway", "gateways"],
  ["networking.istio.io/v1", "ServiceEntry", "serviceentries"],
  ["networking.istio.io/v1", "Sidecar", "sidecars"],
  ["networking.istio.io/v1", "WorkloadEntry", "workloadentries"],
  ["networking.istio.io/v1", "WorkloadGroup", "workloadgroups"],
  ["networking.istio.io/v1alpha3", "EnvoyFilter", "envoyfilters"],
  ["security.istio.io/v1", "AuthorizationPolicy", "authorizationpolicies"],
  ["security.istio.io/v1", "PeerAuthentication", "peerauthentications"],
  ["security.istio.io/v1", "RequestAuthentication", "requestauthentications"],
  ["telemetry.istio.io/v1", "Telemetry", "telemetries"],
  ["extensions.istio.io/v1alpha1", "WasmPlugin", "wasmplugins"],
  ["gateway.networking.k8s.io/v1", "Gateway", "gateways"],
  ["gateway.networking.k8s.io/v1", "HTTPRoute", "httproutes"],
  ["gateway.networking.k8s.io/v1", "GRPCRoute", "grpcroutes"],
  ["gateway.networking.k8s.io/v1beta1", "ReferenceGrant", "referencegrants"],
];

export interface ClusterRead {
  resources: AnalysisResource[];
  notes: string[];
}

type Listed = { items?: AnalysisResource["object"][] };

export async function readCluster(client: RawClient): Promise<ClusterRead> {
  const out: ClusterRead = { resources: [], notes: [] };
  for (const [apiVersion, kind, plural] of CLUSTER_KINDS) {
    const base = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    // ServiceAccount tokens and Helm releases hold nothing a check reads.
    const query =
      kind === "Secret" ? "?fieldSelector=type!%3Dkubernetes.io%2Fservice-account-token,type!%3Dhelm.sh%2Frelease.v1" : "";
    let listed: Listed;
    try {
      listed = await client.get<Listed>(`${base}/${plural}${query}`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) continue;
      if (err instanceof ApiError && err.status === 403 && kind === "Secret") {
        out.notes.push("Secrets not readable (forbidden): credentialName certificates were not checked");
        continue;
      }
      throw err;
    }
    for (const item of listed.items ?? []) {
      const object = { ...item, apiVersion, kind };
      if (object.metadata) delete (object.metadata as { managedFields?: unknown }).managedFields;
      out.resources.push({ object });
    }
  }
  return out;
}
