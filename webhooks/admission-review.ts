// The AdmissionReview envelope both webhooks share: checking what came in, and wrapping
// an answer so it echoes the request's apiVersion and uid, as the apiserver requires.

export interface AdmissionRequest {
  uid: string;
  operation?: string;
  namespace?: string;
  object?: unknown;
}

export type Envelope =
  | { ok: true; request: AdmissionRequest; respond: (response: object) => object }
  | { ok: false; message: string };

const ACCEPTED_VERSIONS = new Set(["admission.k8s.io/v1", "admission.k8s.io/v1beta1"]);

export function openEnvelope(body: unknown): Envelope {
  if (body === null || typeof body !== "object" || Array.isArray(body))
    return { ok: false, message: "request body is not an AdmissionReview object" };
  const review = body as { apiVersion?: string; kind?: string; request?: Partial<AdmissionRequest> };
  if (review.kind !== "AdmissionReview" || !ACCEPTED_VERSIONS.has(review.apiVersion ?? "")) {
    return {
      ok: false,
      message: `expected kind AdmissionReview in admission.k8s.io/v1 or v1beta1, got ${review.kind ?? "no kind"} in ${review.apiVersion ?? "no apiVersion"}`,
    };
  }
  const request = review.request;
  if (!request?.uid) return { ok: false, message: "AdmissionReview has no request.uid" };
  const uid = request.uid;
  return {
    ok: true,
    request: { ...request, uid },
    respond: (response: object) => ({ apiVersion: review.apiVersion, kind: "AdmissionReview", response: { uid, ...response } }),
  };
}
