// Whether a gateway's ServiceAccount may read Secrets of its namespace, as upstream's
// credentials controller decides it before sending a gateway its credentialName certificates:
// a SubjectAccessReview (user system:serviceaccount:<ns>:<sa>, verb list, resource secrets in
// <ns>). Generators ask synchronously, so an identity not asked about yet is answered "no" and
// a review starts; its answer is reported, with whether it differs from what was said (istiod
// then pushes again). Answers are asked again when they expire (allowed 5 min, denied 30 s, so
// a Role granted or revoked later takes effect by itself) for as long as `active` says a proxy
// with that identity is still connected; a failed review counts as denied.
import type { RawClient } from "../../kube/raw-client.ts";

export interface Identity {
  namespace: string;
  serviceAccount: string;
}

interface SubjectAccessReview {
  status?: { allowed?: boolean; reason?: string };
}

/** Asks the apiserver whether this ServiceAccount may list Secrets in its namespace. */
export async function reviewSecretAccess(client: RawClient, who: Identity): Promise<boolean> {
  const review = await client.create<SubjectAccessReview>("/apis/authorization.k8s.io/v1/subjectaccessreviews", {
    apiVersion: "authorization.k8s.io/v1",
    kind: "SubjectAccessReview",
    spec: {
      user: `system:serviceaccount:${who.namespace}:${who.serviceAccount}`,
      groups: ["system:serviceaccounts", `system:serviceaccounts:${who.namespace}`, "system:authenticated"],
      resourceAttributes: { namespace: who.namespace, verb: "list", resource: "secrets" },
    },
  });
  return review.status?.allowed === true;
}

export interface SecretAccessOptions {
  review: (who: Identity) => Promise<boolean>;
  /** An answer came: `changed` when it differs from what `allowed` said for `who` until now. */
  onAnswer: (who: Identity, allowed: boolean, changed: boolean) => void;
  /** Whether a proxy with this identity is still connected (its answer is then kept fresh). */
  active: (who: Identity) => boolean;
  onError?: (who: Identity, err: Error) => void;
  allowedTtlMs?: number;
  deniedTtlMs?: number;
  maxEntries?: number;
}

export class SecretAccess {
  private readonly answers = new Map<string, { allowed: boolean; timer: NodeJS.Timeout }>();
  private readonly asking = new Set<string>();
  private readonly options: SecretAccessOptions;

  constructor(options: SecretAccessOptions) {
    this.options = options;
  }

  /** What is known now; an identity not known yet is reviewed in the background. */
  allowed(who: Identity): boolean {
    const known = this.answers.get(key(who));
    if (!known) this.ask(who, false);
    return known?.allowed ?? false;
  }

  /** Forgets every answer and stops re-asking. */
  stop(): void {
    for (const { timer } of this.answers.values()) clearTimeout(timer);
    this.answers.clear();
  }

  private ask(who: Identity, said: boolean): void {
    const k = key(who);
    if (this.asking.has(k)) return;
    this.asking.add(k);
    const settle = (allowed: boolean) => {
      this.asking.delete(k);
      const ttl = allowed ? (this.options.allowedTtlMs ?? 300_000) : (this.options.deniedTtlMs ?? 30_000);
      clearTimeout(this.answers.get(k)?.timer);
      if (this.answers.size >= (this.options.maxEntries ?? 10_000)) this.stop();
      // When it expires: asked again while such a proxy is connected, else forgotten.
      const timer = setTimeout(() => {
        if (this.options.active(who)) this.ask(who, allowed);
        else this.answers.delete(k);
      }, ttl);
      timer.unref();
      this.answers.set(k, { allowed, timer });
      this.options.onAnswer(who, allowed, allowed !== said);
    };
    this.options.review(who).then(settle, (err: Error) => {
      this.options.onError?.(who, err);
      settle(false);
    });
  }
}

const key = (who: Identity) => `${who.namespace}/${who.serviceAccount}`;
