// The findings `rigger analyze` reports: upstream's message codes, levels and wording
// (pkg/config/analysis/msg/messages.yaml of the pinned release), one constructor per code we
// check. Texts are built explicitly rather than through a printf: %q is a double-quoted string,
// %v of a list is `[a b]`, as Go prints them.

export type Level = "Error" | "Warning" | "Info";

/** Lower sorts first, as istioctl orders its output. */
export const LEVEL_ORDER: Record<Level, number> = { Error: 0, Warning: 1, Info: 2 };

export interface Finding {
  code: string;
  level: Level;
  message: string;
}

const quote = (s: string) => JSON.stringify(s);
const list = (items: readonly (string | number)[]) => `[${items.join(" ")}]`;

export const messages = {
  referencedResourceNotFound: (what: string, name: string): Finding => ({
    code: "IST0101",
    level: "Error",
    message: `Referenced ${what} not found: ${quote(name)}`,
  }),
  namespaceNotInjected: (namespace: string): Finding => ({
    code: "IST0102",
    level: "Info",
    message: `The namespace is not enabled for Istio injection. Run 'kubectl label namespace ${namespace} istio-injection=enabled' to enable it, or 'kubectl label namespace ${namespace} istio-injection=disabled' to explicitly mark it as not needing injection.`,
  }),
  podMissingProxy: (pod: string): Finding => ({
    code: "IST0103",
    level: "Warning",
    message: `The pod ${pod} is missing the Istio proxy. This can often be resolved by restarting or redeploying the workload.`,
  }),
  schemaValidationError: (error: string): Finding => ({
    code: "IST0106",
    level: "Error",
    message: `Schema validation error: ${error}`,
  }),
  conflictingMeshGatewayVirtualServiceHosts: (virtualServices: string, host: string): Finding => ({
    code: "IST0109",
    level: "Error",
    message: `The VirtualServices ${virtualServices} associated with mesh gateway define the same host ${host} which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.`,
  }),
  conflictingSidecarWorkloadSelectors: (sidecars: string[], namespace: string, pod: string): Finding => ({
    code: "IST0110",
    level: "Error",
    message: `The Sidecars ${list(sidecars)} in namespace ${quote(namespace)} select the same workload pod ${quote(pod)}, which can lead to undefined behavior.`,
  }),
  multipleSidecarsWithoutWorkloadSelectors: (sidecars: string[], namespace: string): Finding => ({
    code: "IST0111",
    level: "Error",
    message: `The Sidecars ${list(sidecars)} in namespace ${quote(namespace)} have no workload selector, which can lead to undefined behavior.`,
  }),
  virtualServiceDestinationPortSelectorRequired: (host: string, ports: number[]): Finding => ({
    code: "IST0112",
    level: "Error",
    message: `This VirtualService routes to a service ${quote(host)} that exposes multiple ports ${list(ports)}. Specifying a port in the destination is required to disambiguate.`,
  }),
  portNameIsNotUnderNamingConvention: (name: string, port: number, targetPort: string): Finding => ({
    code: "IST0118",
    level: "Info",
    message: `Port name ${name} (port: ${port}, targetPort: ${targetPort}) doesn't follow the naming convention of Istio port.`,
  }),
  namespaceMultipleInjectionLabels: (labels: string[]): Finding => ({
    code: "IST0123",
    level: "Warning",
    message: `The namespace has more than one type of injection labels ${list(labels)}, which may lead to undefined behavior. Make sure only one injection label exists.`,
  }),
  noMatchingWorkloadsFound: (labels: string): Finding => ({
    code: "IST0127",
    level: "Warning",
    message: `No matching workloads for this resource with the following labels: ${labels}`,
  }),
  noServerCertificateVerificationDestinationLevel: (rule: string, namespace: string, mode: string, host: string): Finding => ({
    code: "IST0128",
    level: "Warning",
    message: `DestinationRule ${rule} in namespace ${namespace} has TLS mode set to ${mode} but no caCertificates are set to validate server identity for host: ${host}`,
  }),
  noServerCertificateVerificationPortLevel: (
    rule: string,
    namespace: string,
    mode: string,
    host: string,
    port: string,
  ): Finding => ({
    code: "IST0129",
    level: "Warning",
    message: `DestinationRule ${rule} in namespace ${namespace} has TLS mode set to ${mode} but no caCertificates are set to validate server identity for host: ${host} at port ${port}`,
  }),
  virtualServiceUnreachableRule: (rule: string, reason: string): Finding => ({
    code: "IST0130",
    level: "Warning",
    message: `VirtualService rule ${rule} not used (${reason}).`,
  }),
  virtualServiceIneffectiveMatch: (rule: string, match: string, duplicate: string): Finding => ({
    code: "IST0131",
    level: "Info",
    message: `VirtualService rule ${rule} match ${match} is not used (duplicate/overlapping match in rule ${duplicate}).`,
  }),
  virtualServiceHostNotFoundInGateway: (hosts: string[], virtualService: string, gateway: string): Finding => ({
    code: "IST0132",
    level: "Warning",
    message: `one or more host ${list(hosts)} defined in VirtualService ${virtualService} not found in Gateway ${gateway}.`,
  }),
  schemaWarning: (warning: string): Finding => ({
    code: "IST0133",
    level: "Warning",
    message: `Schema validation warning: ${warning}`,
  }),
  ingressRouteRulesNotAffected: (virtualService: string, gateway: string): Finding => ({
    code: "IST0140",
    level: "Warning",
    message: `Subset in virtual service ${virtualService} has no effect on ingress gateway ${gateway} requests`,
  }),
  externalNameServiceTypeInvalidPortName: (): Finding => ({
    code: "IST0150",
    level: "Warning",
    message:
      "Port name for ExternalName service is invalid. Proxy may prevent tcp named ports and unmatched traffic for ports serving TCP protocol from being forwarded correctly",
  }),
  invalidGatewayCredential: (gateway: string, namespace: string): Finding => ({
    code: "IST0161",
    level: "Error",
    message: `The credential referenced by the Gateway ${gateway} in namespace ${namespace} is invalid, which can cause the traffic not to work as expected.`,
  }),
  gatewayPortNotDefinedOnService: (port: number, selector: string): Finding => ({
    code: "IST0162",
    level: "Warning",
    message: `The gateway is listening on a target port (port ${port}) that is not defined in the Service associated with its workload instances (Pod selector ${selector}). If you need to access the gateway port through the gateway Service, it will not be available.`,
  }),
  destinationRuleSubsetNotSelectPods: (subset: string): Finding => ({
    code: "IST0173",
    level: "Error",
    message: `The Subset ${subset} defined in the DestinationRule does not select any pods. Which may lead to 503 UH (NoHealthyUpstream).`,
  }),
  namespaceInjectionEnabledByDefault: (): Finding => ({
    code: "IST0148",
    level: "Info",
    message: "is enabled for Istio injection, as Istio is installed with enableNamespacesByDefault as true.",
  }),
  unknownDestinationRuleHost: (host: string): Finding => ({
    code: "IST0174",
    level: "Warning",
    message: `The host ${host} defined in the DestinationRule does not match any services in the mesh.`,
  }),
} as const;

/** Where istio.io documents a code (as istioctl's JSON and YAML output link it). */
export function documentationUrl(code: string): string {
  return `https://istio.io/v1.27/docs/reference/config/analysis/${code.toLowerCase()}/`;
}
