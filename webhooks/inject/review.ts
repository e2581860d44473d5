// AdmissionReview in, AdmissionReview out, for the injection webhook. No I/O: the
// HTTP server hands the parsed body here and sends back what it returns.
import type { V1Pod } from "@kubernetes/client-node";
import fastJsonPatch from "fast-json-patch";
import { openEnvelope } from "../admission-review.ts";
import { InjectionError, type InjectionSettings, inject, withoutManagedFields } from "./inject.ts";
import { withoutNulls } from "./pod-shape.ts";

export type ReviewOutcome =
  | { outcome: "injected"; review: object; patch: object[] }
  | { outcome: "skipped"; review: object; reason: string }
  | { outcome: "denied"; review: object; message: string }
  | { outcome: "invalid"; message: string };

/**
 * Cluster and network overrides from the webhook path: /inject/cluster/<id>/net/<net>/<key>/<value>…
 * A string is a problem with the path (bad percent-encoding).
 */
export function proxyEnvsFromPath(path: string): Record<string, string> | string {
  const decode = (part: string) => {
    try {
      return decodeURIComponent(part);
    } catch {
      return undefined;
    }
  };
  const rest = path.replace(/\/+$/, "").split("/").slice(2); // drop "" and "inject"
  const names: Record<string, string> = { cluster: "ISTIO_META_CLUSTER_ID", net: "ISTIO_META_NETWORK" };
  const envs: Record<string, string> = {};
  for (let i = 0; i + 1 < rest.length; i += 2) {
    const key = decode(rest[i] ?? "");
    const value = decode(rest[i + 1] ?? "")?.replaceAll("--slash--", "/");
    if (key === undefined || value === undefined) return `webhook path ${path} is not valid percent-encoding`;
    const env = names[key] ?? key.toUpperCase();
    if (env) envs[env] = value;
  }
  return envs;
}

export function reviewInjection(body: unknown, path: string, settings: InjectionSettings): ReviewOutcome {
  const envelope = openEnvelope(body);
  if (!envelope.ok) return { outcome: "invalid", message: envelope.message };
  const proxyEnvs = proxyEnvsFromPath(path);
  if (typeof proxyEnvs === "string") return { outcome: "invalid", message: proxyEnvs };
  const { request, respond } = envelope;

  const pod = request.object as V1Pod | undefined;
  if (pod === null || typeof pod !== "object" || (pod.kind !== undefined && pod.kind !== "Pod")) {
    const kind =
      typeof pod?.kind === "string"
        ? pod.kind
        : pod?.kind === undefined
          ? "a missing object"
          : "an object whose kind is not a string";
    const message = `cannot inject into ${kind}: only Pods are injected`;
    return { outcome: "denied", message, review: respond({ allowed: false, status: { message, code: 400 } }) };
  }
  // inject() copies what it changes, so the request's pod can be the patch's base as it is
  // (without nulls, which inject() drops too: the patch then adds where a null stood).
  const original = withoutNulls(withoutManagedFields(pod));
  try {
    const result = inject({ pod: original, namespace: request.namespace, proxyEnvs }, settings);
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
  // Only strings: this names pods whose shape was found wrong, too.
  const text = (v: unknown) => (typeof v === "string" ? v : "");
  const name = text(pod.metadata?.name) || `${text(pod.metadata?.generateName)}<generated>`;
  return `${text(pod.metadata?.namespace) || text(namespace)}/${name}`;
}
