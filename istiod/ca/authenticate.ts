// Who is asking for a certificate: the caller's Kubernetes ServiceAccount token, checked by
// the apiserver (TokenReview) for audience istio-ca. The identity comes from the review,
// never from anything the caller wrote in its CSR. The token itself is never logged.
import type { RawClient } from "../../controllers/runtime/raw-client.ts";

export const CA_AUDIENCE = "istio-ca";

export class AuthenticationError extends Error {}

export interface Caller {
  namespace: string;
  serviceAccount: string;
}

interface TokenReview {
  status?: { authenticated?: boolean; error?: string; audiences?: string[]; user?: { username?: string } };
}

/** The bearer token in an `authorization` metadata value, or an error saying what is missing. */
export function bearerToken(authorization: string | undefined): string {
  if (!authorization) throw new AuthenticationError("no authorization metadata: send 'authorization: Bearer <token>'");
  const match = /^Bearer\s+(\S+)$/i.exec(authorization.trim());
  if (!match?.[1]) throw new AuthenticationError("the authorization metadata is not 'Bearer <token>'");
  return match[1];
}

export async function authenticate(client: RawClient, token: string, audience = CA_AUDIENCE): Promise<Caller> {
  const review = await client.create<TokenReview>("/apis/authentication.k8s.io/v1/tokenreviews", {
    apiVersion: "authentication.k8s.io/v1",
    kind: "TokenReview",
    spec: { token, audiences: [audience] },
  });
  const status = review.status ?? {};
  if (!status.authenticated) throw new AuthenticationError(`the token was not accepted: ${status.error || "not authenticated"}`);
  if (!(status.audiences ?? []).includes(audience)) throw new AuthenticationError(`the token is not for audience ${audience}`);
  const match = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(status.user?.username ?? "");
  if (!match?.[1] || !match[2]) throw new AuthenticationError("the token does not belong to a ServiceAccount");
  return { namespace: match[1], serviceAccount: match[2] };
}
