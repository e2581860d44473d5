// AdmissionReview in, AdmissionReview out, for the injection webhook. No I/O: the
// HTTP server hands the parsed body here and sends back what it returns.
import type { V1Pod } from "@kubernetes/client-node";
import fastJsonPatch from "fast-json-patch";
import { openEnvelope } from "../admission-review.ts";
import { InjectionError, type InjectionSettings, inject, withoutManagedFields } from "./inject.ts";

export type ReviewOutcome =
  | { outcome: "injected"; review: object; patch: object[] }
  | { outcome: "skipped"; review: object; reason: string }
  | { outcome: "denied"; review: object; message: string }
  | { outcome: "invalid"; message: string };

/** Cluster and network overrides from the webhook path: /inject/cluster/<id>/net/<net>/<key>/<value>… */
export function proxyEnvsFromPath(path: string): Record<string, string> {
  const rest = path.replace(/\/+$/, "").split("/").slice(2); // drop "" and "inject"
  const names: Record<string, string> = { cluster: "ISTIO_META_CLUSTER_ID", net: "ISTIO_META_NETWORK" };
  const envs: Record<string, string> = {};
  for (let i = 0; i + 1 < rest.length; i += 2) {
    const key = decodeURIComponent(rest[i] ?? "");
    const value = decodeURIComponent(rest[i + 1] ?? "").replaceAll("--slash--", "/");
    const env = names[key] ?? key.toUpperCase();
    if (env) envs[env] = value;
  }
  return envs;
}

export function reviewInjection(body: unknown, path: string, settings: InjectionSettings): ReviewOutcome {
  const envelope = openEnvelope(body);
  if (!envelope.ok) return { outcome: "invalid", message: envelope.message };
  const { request, respond } = envelope;

  const pod = request.object as V1Pod | undefined;
  if (pod === null || typeof pod !== "object" || (pod.kind !== undefined && pod.kind !== "Pod")) {
    const message = `cannot inject into ${pod?.kind ?? "a missing object"}: only Pods are injected`;
    return { outcome: "denied", message, review: respond({ allowed: false, status: { message, code: 400 } }) };
  }
  // inject() copies what it changes, so the request's pod can be the patch's base as it is.
  const original = withoutManagedFields(pod);
  try {
    const result = inject({ pod: original, namespace: request.namespace, proxyEnvs: proxyEnvsFromPath(path) }, settings);
    if (result.kind === "skipped") return { outcome: "skipped", reason: result.reason, review: respond({ allowed: true }) };
    const patch = fastJsonPatch.compare(original, result.pod);
    return {
      outcome: "injected",
      patch,
      review: respond({ allowed: true, patchType: "JSONPatch", patch: Buffer.from(JSON.stringify(patch)).toString("base64") }),
    };
  } catch (err) {
    if (!(err instanceof InjectionError)) throw err;
    const message = `injection of pod ${podName(pod, request.namespace)} failed: ${err.message}`;
    return { outcome: "denied", message, review: respond({ allowed: false, status: { message } }) };
  }
}

function podName(pod: V1Pod, namespace: string | undefined): string {
  const name = pod.metadata?.name || `${pod.metadata?.generateName ?? ""}<generated>`;
  return `${pod.metadata?.namespace ?? namespace ?? ""}/${name}`;
}
