// Who is asking for a certificate: the caller's Kubernetes ServiceAccount token, checked by
// the apiserver (TokenReview) for audience istio-ca. The identity comes from the review,
// never from anything the caller wrote in its CSR. The token itself is never logged.
//
// TokenReviewer keeps answers briefly (accepted: 60 s, and never past the token's own `exp`;
// refused: 10 s), keyed by the token's SHA-256, in a bounded map; identical reviews in flight
// share one call; a token that is not even shaped like a JWT is refused without asking the
// apiserver. A flood of garbage therefore costs the apiserver nothing, and a proxy renewing
// with the token it used a minute ago is answered from memory.
import { createHash } from "node:crypto";
import type { RawClient } from "../../kube/raw-client.ts";

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

/** Asks the apiserver, uncached. */
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

/** Largest token looked at (ServiceAccount tokens are about 1 KiB). */
const MAX_TOKEN_BYTES = 16 * 1024;

/** The token's `exp` (seconds), when it is a JWT; throws when it is not shaped like one. */
export function jwtExpiry(token: string): number | undefined {
  if (token.length > MAX_TOKEN_BYTES) throw new AuthenticationError(`the token is longer than ${MAX_TOKEN_BYTES} bytes`);
  const parts = token.split(".");
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]+$/.test(p)))
    throw new AuthenticationError("the token is not a JWT");
  try {
    const header = JSON.parse(Buffer.from(parts[0] ?? "", "base64url").toString());
    if (typeof header?.alg !== "string") throw new Error("no alg");
    const payload = JSON.parse(Buffer.from(parts[1] ?? "", "base64url").toString());
    return typeof payload?.exp === "number" ? payload.exp : undefined;
  } catch {
    throw new AuthenticationError("the token is not a JWT");
  }
}

export interface TokenReviewerOptions {
  acceptedTtlMs?: number;
  refusedTtlMs?: number;
  maxEntries?: number;
  now?: () => number;
}

type Answer = { caller: Caller } | { refused: string };

export class TokenReviewer {
  private readonly cache = new Map<string, { answer: Answer; until: number }>();
  private readonly inFlight = new Map<string, Promise<Answer>>();
  private readonly acceptedTtlMs: number;
  private readonly refusedTtlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  /** TokenReviews actually sent (for tests and metrics). */
  reviews = 0;

  private readonly review: (token: string) => Promise<Caller>;

  constructor(review: (token: string) => Promise<Caller>, options: TokenReviewerOptions = {}) {
    this.review = review;
    this.acceptedTtlMs = options.acceptedTtlMs ?? 60_000;
    this.refusedTtlMs = options.refusedTtlMs ?? 10_000;
    this.maxEntries = options.maxEntries ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /** The cached answer, if any: a Caller, or throws the cached refusal. Undefined when not cached. */
  cached(token: string): Caller | undefined {
    const exp = jwtExpiry(token);
    const key = keyOf(token);
    const hit = this.cache.get(key);
    if (!hit) return undefined;
    if (hit.until <= this.now() || (exp !== undefined && exp * 1000 <= this.now())) {
      this.cache.delete(key);
      return undefined;
    }
    if ("refused" in hit.answer) throw new AuthenticationError(hit.answer.refused);
    return hit.answer.caller;
  }

  /** Reviews the token (from cache when fresh); throws AuthenticationError when refused. */
  async authenticate(token: string): Promise<Caller> {
    const cached = this.cached(token);
    if (cached) return cached;
    const exp = jwtExpiry(token);
    const key = keyOf(token);
    let pending = this.inFlight.get(key);
    if (!pending) {
      this.reviews++;
      pending = this.review(token).then(
        (caller): Answer => ({ caller }),
        (err): Answer => {
          if (err instanceof AuthenticationError) return { refused: err.message };
          throw err; // the apiserver could not answer: nothing to remember
        },
      );
      this.inFlight.set(key, pending);
      pending
        .then((answer) => {
          const ttl = "caller" in answer ? this.acceptedTtlMs : this.refusedTtlMs;
          const until = Math.min(this.now() + ttl, exp !== undefined ? exp * 1000 : Number.POSITIVE_INFINITY);
          this.remember(key, answer, until);
        })
        .catch(() => {})
        .finally(() => this.inFlight.delete(key));
    }
    const answer = await pending;
    if ("refused" in answer) throw new AuthenticationError(answer.refused);
    return answer.caller;
  }

  get size(): number {
    return this.cache.size;
  }

  private remember(key: string, answer: Answer, until: number): void {
    this.cache.delete(key);
    this.cache.set(key, { answer, until });
    // Oldest first out (Map keeps insertion order).
    while (this.cache.size > this.maxEntries) this.cache.delete(this.cache.keys().next().value as string);
  }
}

function keyOf(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** What grpc-js says about a TLS peer (its certificate only when the handshake verified it). */
export interface PeerAuth {
  transportSecurityType?: string;
  sslPeerCertificate?: { subjectaltname?: string };
}

/**
 * The caller named by a mesh client certificate: the `spiffe://<trust domain>/ns/<ns>/sa/<sa>`
 * URI of a certificate the TLS handshake verified against the mesh roots (grpc-js reports a
 * peer certificate only then). Undefined when there is none; an error when there is one that
 * names no workload of this trust domain.
 */
export function certificateCaller(auth: PeerAuth | null | undefined, trustDomain: string): Caller | undefined {
  const sans = auth?.sslPeerCertificate?.subjectaltname;
  if (auth?.transportSecurityType !== "ssl" || !auth.sslPeerCertificate) return undefined;
  const uris = (sans ?? "")
    .split(/,\s*/)
    .filter((san) => san.startsWith("URI:"))
    .map((san) => san.slice(4));
  for (const uri of uris) {
    const match = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(uri);
    if (match?.[1] === trustDomain && match[2] && match[3]) return { namespace: match[2], serviceAccount: match[3] };
  }
  throw new AuthenticationError(`the client certificate names no workload of trust domain ${trustDomain}`);
}
