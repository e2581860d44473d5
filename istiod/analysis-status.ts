// Findings where users already look: istiod runs analyze() (analysis/analyze.ts, the checks of
// `rigger analyze`) over what it watches, and writes each Istio config object's findings into
// its status: `validationMessages` in upstream's form (code, name, level, documentation link)
// and a condition `Analyzed` whose message holds the findings' text, so `kubectl get -o yaml`
// and `kubectl describe` say "Referenced host+subset in destinationrule not found" without a
// tool. An Event is recorded when an object gains findings.
//
// Writes only on change (the status already saying it is left alone: no write loop), by
// server-side apply to the status subresource under its own field manager, for the objects
// this revision serves (their istio.io/rev label, "default" when unset, names it or one of its
// tags). Runs at most once per `intervalMs`, the latest input winning.
import type pino from "pino";
import { type AnalysisMessage, type AnalysisResource, analyze } from "../analysis/analyze.ts";
import { documentationUrl, type Level } from "../analysis/messages.ts";
import type { EventRecorder } from "../kube/events.ts";
import type { RawClient } from "../kube/raw-client.ts";

export const ANALYSIS_FIELD_MANAGER = "rigger-istiod-analysis";
export const ANALYZED_CONDITION = "Analyzed";

/** Upstream's names for the codes, as validationMessages carry them (type.name). */
const NAMES: Record<string, string> = {
  IST0101: "ReferencedResourceNotFound",
  IST0102: "NamespaceNotInjected",
  IST0103: "PodMissingProxy",
  IST0106: "SchemaValidationError",
  IST0109: "ConflictingMeshGatewayVirtualServiceHosts",
  IST0110: "ConflictingSidecarWorkloadSelectors",
  IST0111: "MultipleSidecarsWithoutWorkloadSelectors",
  IST0112: "VirtualServiceDestinationPortSelectorRequired",
  IST0118: "PortNameIsNotUnderNamingConvention",
  IST0123: "NamespaceMultipleInjectionLabels",
  IST0127: "NoMatchingWorkloadsFound",
  IST0128: "NoServerCertificateVerificationDestinationLevel",
  IST0129: "NoServerCertificateVerificationPortLevel",
  IST0130: "VirtualServiceUnreachableRule",
  IST0131: "VirtualServiceIneffectiveMatch",
  IST0132: "VirtualServiceHostNotFoundInGateway",
  IST0133: "SchemaWarning",
  IST0140: "IngressRouteRulesNotAffected",
  IST0148: "NamespaceInjectionEnabledByDefault",
  IST0150: "ExternalNameServiceTypeInvalidPortName",
  IST0161: "InvalidGatewayCredential",
  IST0162: "GatewayPortNotDefinedOnService",
  IST0173: "DestinationRuleSubsetNotSelectPods",
  IST0174: "UnknownDestinationRuleHost",
};

interface ValidationMessage {
  documentationUrl?: string;
  level?: string;
  type?: { code?: string; name?: string };
}
interface StatusCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}
interface IstioStatus {
  validationMessages?: ValidationMessage[];
  conditions?: StatusCondition[];
}

/** What an object's status should say about `messages` (empty: nothing to say). */
export function desiredStatus(messages: readonly AnalysisMessage[]): {
  validationMessages: ValidationMessage[];
  condition?: StatusCondition;
} {
  if (messages.length === 0) return { validationMessages: [] };
  return {
    validationMessages: messages.map((m) => ({
      documentationUrl: documentationUrl(m.code),
      level: m.level.toUpperCase(),
      type: { code: m.code, name: NAMES[m.code] ?? m.code },
    })),
    condition: {
      type: ANALYZED_CONDITION,
      status: "False",
      reason: messages
        .map((m) => m.code)
        .filter((c, i, all) => all.indexOf(c) === i)
        .join(","),
      message: messages.map((m) => `${m.level} [${m.code}] ${m.message}`).join("\n"),
    },
  };
}

/** Whether the status already says what `desired` says (the condition's time aside). */
export function statusSays(current: IstioStatus | undefined, desired: ReturnType<typeof desiredStatus>): boolean {
  const have = current?.validationMessages ?? [];
  const key = (v: ValidationMessage) => `${v.type?.code}|${v.level}|${v.documentationUrl}`;
  if (have.map(key).join("\n") !== desired.validationMessages.map(key).join("\n")) return false;
  const condition = current?.conditions?.find((c) => c.type === ANALYZED_CONDITION);
  if (!desired.condition) return condition === undefined;
  return (
    condition?.status === desired.condition.status &&
    condition.reason === desired.condition.reason &&
    condition.message === desired.condition.message
  );
}

const PLURALS: Record<string, string> = {
  VirtualService: "virtualservices",
  DestinationRule: "destinationrules",
  Gateway: "gateways",
  ServiceEntry: "serviceentries",
  Sidecar: "sidecars",
  WorkloadEntry: "workloadentries",
  AuthorizationPolicy: "authorizationpolicies",
  PeerAuthentication: "peerauthentications",
  RequestAuthentication: "requestauthentications",
  Telemetry: "telemetries",
};

interface Options {
  client: RawClient;
  log: pino.Logger;
  events?: EventRecorder;
  /** Whether this istiod speaks for an object (its istio.io/rev label, or "default"). */
  serves: (revisionLabel: string) => boolean;
  intervalMs?: number;
}

/**
 * What istiod's informers stand for in full: Services, Pods and Namespaces (Secrets are kept
 * only as certificates, so the credentialName checks are left to the Gateway's own status).
 */
const RUNTIME_KINDS = new Set(["Service.core", "Pod.core", "Namespace.core"]);

export class AnalysisStatus {
  private readonly options: Options;
  private latest: (() => AnalysisResource[]) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private lastRun = 0;
  /** Status writes made (for tests and /debug). */
  writes = 0;

  constructor(options: Options) {
    this.options = options;
  }

  /** Analyze again soon with the objects `input` returns then. */
  update(input: () => AnalysisResource[]): void {
    this.latest = input;
    if (this.timer || this.running) return;
    const wait = Math.max(0, this.lastRun + (this.options.intervalMs ?? 2_000) - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = true;
      this.lastRun = Date.now();
      void this.run()
        .catch((err: Error) => this.options.log.warn({ error: err.message }, "analysis failed"))
        .finally(() => {
          this.running = false;
        });
    }, wait);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.latest = undefined;
  }

  private async run(): Promise<void> {
    const input = this.latest?.();
    if (!input) return;
    const byObject = new Map<string, AnalysisMessage[]>();
    const key = (kind: string, namespace: string | undefined, name: string) => `${kind}/${namespace ?? ""}/${name}`;
    for (const m of analyze(input, { runtimeKinds: RUNTIME_KINDS })) {
      const k = key(m.resource.kind, m.resource.namespace, m.resource.name);
      byObject.set(k, [...(byObject.get(k) ?? []), m]);
    }
    for (const r of input) {
      const { apiVersion = "", kind = "", metadata } = r.object;
      if (!apiVersion.split("/")[0]?.endsWith("istio.io") || !PLURALS[kind] || !metadata?.name) continue;
      if (!this.options.serves(metadata.labels?.["istio.io/rev"] || "default")) continue;
      const messages = byObject.get(key(kind, metadata.namespace, metadata.name)) ?? [];
      const desired = desiredStatus(messages);
      const current = (r.object as { status?: IstioStatus }).status;
      if (statusSays(current, desired)) continue;
      await this.write(r.object as Parameters<AnalysisStatus["write"]>[0], desired, messages);
    }
  }

  private async write(
    object: { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; uid?: string } },
    desired: ReturnType<typeof desiredStatus>,
    messages: AnalysisMessage[],
  ): Promise<void> {
    const { apiVersion, kind, metadata } = object;
    const path = `/apis/${apiVersion}/namespaces/${metadata.namespace}/${PLURALS[kind]}/${metadata.name}/status`;
    // Applying without a field releases it: findings gone, the condition goes. The empty list stays
    // (owned by us) because releasing every field would leave `status: null`, which the CRDs refuse.
    const status = desired.condition
      ? {
          validationMessages: desired.validationMessages,
          conditions: [{ ...desired.condition, lastTransitionTime: new Date().toISOString() }],
        }
      : { validationMessages: [] };
    try {
      await this.options.client.apply(
        path,
        { apiVersion, kind, metadata: { name: metadata.name, namespace: metadata.namespace }, status },
        ANALYSIS_FIELD_MANAGER,
      );
      this.writes++;
    } catch (err) {
      const code = (err as { status?: number }).status;
      if (code !== 404)
        this.options.log.warn(
          { object: `${kind} ${metadata.namespace}/${metadata.name}`, error: (err as Error).message },
          "analysis status not written",
        );
      return;
    }
    if (messages.length > 0 && this.options.events) {
      const worst: Level = messages.some((m) => m.level === "Error")
        ? "Error"
        : messages.some((m) => m.level === "Warning")
          ? "Warning"
          : "Info";
      await this.options.events.record(
        { apiVersion, kind, metadata: { name: metadata.name, namespace: metadata.namespace, uid: metadata.uid } } as never,
        worst === "Info" ? "Normal" : "Warning",
        "AnalysisFindings",
        messages.map((m) => `${m.code}: ${m.message}`).join("; "),
      );
    }
  }
}
