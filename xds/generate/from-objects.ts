// A push context from a plain list of Kubernetes and Istio objects (YAML files, a cluster's
// listing): the one mesh model the xDS server, the parity scenarios and `rigger analyze` share.
// Objects are told apart by API group and kind, so an Istio Gateway and a Gateway API Gateway
// of the same name never mix.

import { buildRegistry, type KubeEndpointSlice, type KubeNode, type KubePod, type KubeService } from "../registry/registry.ts";
import type { KubeServiceEntry, KubeWorkloadEntry } from "../registry/service-entry.ts";
import type { AuthorizationPolicy } from "./authorization.ts";
import { DEFAULT_MESH, type MeshSettings, type PushContext } from "./context.ts";
import type { DestinationRule } from "./destination-rule.ts";
import type { IstioGateway } from "./gateway.ts";
import { type KubeGateway, type KubeGrpcRoute, type KubeHttpRoute, type ReferenceGrant, withGatewayApi } from "./gateway-api.ts";
import { credentialsOf, type KubeSecret } from "./gateway-secrets.ts";
import type { PeerAuthentication } from "./peer-authentication.ts";
import type { RequestAuthentication } from "./request-authentication.ts";
import type { Sidecar } from "./sidecar-scope.ts";
import type { Telemetry } from "./telemetry.ts";
import type { VirtualService } from "./virtual-service.ts";

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
}

/** `<Kind>.<group>` ("Service.core", "Gateway.networking.istio.io"): a kind no other group shares. */
export function kindKey(object: KubeObject): string {
  const apiVersion = object.apiVersion ?? "";
  const group = apiVersion.includes("/") ? apiVersion.split("/")[0] : "core";
  return `${object.kind ?? ""}.${group}`;
}

/** The objects of one `<Kind>.<group>`. */
export function ofKind<T>(objects: readonly KubeObject[], key: string): T[] {
  return objects.filter((o) => kindKey(o) === key) as T[];
}

export function pushContextFromObjects(objects: readonly KubeObject[], mesh: MeshSettings = DEFAULT_MESH): PushContext {
  const istio = (kind: string, group = "networking.istio.io") => ofKind(objects, `${kind}.${group}`);
  const base: PushContext = {
    version: 1,
    mesh,
    peerAuthentications: istio("PeerAuthentication", "security.istio.io") as PeerAuthentication[],
    virtualServices: istio("VirtualService") as VirtualService[],
    destinationRules: istio("DestinationRule") as DestinationRule[],
    sidecars: istio("Sidecar") as Sidecar[],
    telemetries: istio("Telemetry", "telemetry.istio.io") as Telemetry[],
    authorizationPolicies: istio("AuthorizationPolicy", "security.istio.io") as AuthorizationPolicy[],
    requestAuthentications: istio("RequestAuthentication", "security.istio.io") as RequestAuthentication[],
    gateways: istio("Gateway") as IstioGateway[],
    credentials: credentialsOf(ofKind<KubeSecret>(objects, "Secret.core")),
    registry: buildRegistry({
      services: ofKind<KubeService>(objects, "Service.core"),
      endpointSlices: ofKind<KubeEndpointSlice>(objects, "EndpointSlice.discovery.k8s.io"),
      pods: ofKind<KubePod>(objects, "Pod.core"),
      nodes: ofKind<KubeNode>(objects, "Node.core"),
      serviceEntries: istio("ServiceEntry") as KubeServiceEntry[],
      workloadEntries: istio("WorkloadEntry") as KubeWorkloadEntry[],
    }),
  };
  const gatewayApi = (kind: string, group = "gateway.networking.k8s.io") => ofKind(objects, `${kind}.${group}`);
  return withGatewayApi(base, {
    gateways: gatewayApi("Gateway") as KubeGateway[],
    httpRoutes: gatewayApi("HTTPRoute") as KubeHttpRoute[],
    grpcRoutes: gatewayApi("GRPCRoute") as KubeGrpcRoute[],
    referenceGrants: gatewayApi("ReferenceGrant") as ReferenceGrant[],
  });
}
