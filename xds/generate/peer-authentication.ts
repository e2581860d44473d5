// Which mutual TLS mode a workload's inbound ports take, from PeerAuthentication objects, as
// upstream composes them (pilot/pkg/security/authn ComposePeerAuthentication): PERMISSIVE unless
// set; the oldest mesh-wide policy (root namespace, no selector), then the oldest namespace-wide
// one, then the oldest selecting the workload in its namespace, each overriding the one before
// unless its mode is UNSET; a workload policy's portLevelMtls sets single ports (UNSET inherits).
import type { MtlsMode } from "./listeners.ts";

export interface PeerAuthentication {
  metadata?: { name?: string; namespace?: string; creationTimestamp?: string };
  spec?: {
    selector?: { matchLabels?: Record<string, string> };
    mtls?: { mode?: string };
    portLevelMtls?: Record<string, { mode?: string }>;
  };
}

export interface ComposedMtls {
  mode: MtlsMode;
  perPort: Map<number, MtlsMode>;
}

const modeOf = (mtls: { mode?: string } | undefined): MtlsMode | undefined =>
  mtls?.mode === "STRICT" || mtls?.mode === "PERMISSIVE" || mtls?.mode === "DISABLE" ? mtls.mode : undefined;

/** The oldest of `policies` (creationTimestamp; then name, for a stable choice). */
function oldest(policies: PeerAuthentication[]): PeerAuthentication | undefined {
  return [...policies].sort(
    (a, b) =>
      (a.metadata?.creationTimestamp ?? "").localeCompare(b.metadata?.creationTimestamp ?? "") ||
      (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? ""),
  )[0];
}

export function composeMtls(
  policies: PeerAuthentication[],
  rootNamespace: string,
  workload: { namespace: string; labels: Record<string, string> },
): ComposedMtls {
  const hasSelector = (p: PeerAuthentication) => Object.keys(p.spec?.selector?.matchLabels ?? {}).length > 0;
  const mesh = oldest(policies.filter((p) => p.metadata?.namespace === rootNamespace && !hasSelector(p)));
  const namespace = oldest(
    policies.filter(
      (p) => p.metadata?.namespace === workload.namespace && p.metadata?.namespace !== rootNamespace && !hasSelector(p),
    ),
  );
  const selected = oldest(
    policies.filter(
      (p) =>
        p.metadata?.namespace === workload.namespace &&
        p.metadata?.namespace !== rootNamespace &&
        hasSelector(p) &&
        Object.entries(p.spec?.selector?.matchLabels ?? {}).every(([k, v]) => workload.labels[k] === v),
    ),
  );
  let mode: MtlsMode = "PERMISSIVE";
  for (const policy of [mesh, namespace, selected]) mode = modeOf(policy?.spec?.mtls) ?? mode;
  const perPort = new Map<number, MtlsMode>();
  for (const [port, mtls] of Object.entries(selected?.spec?.portLevelMtls ?? {})) perPort.set(Number(port), modeOf(mtls) ?? mode);
  return { mode, perPort };
}

/** The mode for one inbound port (0: the catch-all chains, which take the workload's mode). */
export function portMode(composed: ComposedMtls, port: number): MtlsMode {
  return composed.perPort.get(port) ?? composed.mode;
}
