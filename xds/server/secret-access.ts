// Whether a gateway's ServiceAccount may read Secrets of its namespace, as upstream's
// credentials controller decides it before sending a gateway its credentialName certificates:
// a SubjectAccessReview (user system:serviceaccount:<ns>:<sa>, verb list, resource secrets in
// <ns>). Generators ask synchronously, so an identity not asked about yet is answered "no" and
// a review starts; its answer is reported, with whether it differs from what was said (istiod
// then pushes again). Answers are kept a while (allowed 5 min, denied 30 s, so a binding added
// later takes effect soon); a failed review counts as denied and is asked again after that.
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
  onError?: (who: Identity, err: Error) => void;
  allowedTtlMs?: number;
  deniedTtlMs?: number;
  now?: () => number;
  maxEntries?: number;
}

export class SecretAccess {
  private readonly answers = new Map<string, { allowed: boolean; until: number }>();
  private readonly asking = new Set<string>();
  private readonly options: SecretAccessOptions;

  constructor(options: SecretAccessOptions) {
    this.options = options;
  }

  /** What is known now; an unknown or stale identity is (re)reviewed in the background. */
  allowed(who: Identity): boolean {
    const key = `${who.namespace}/${who.serviceAccount}`;
    const now = (this.options.now ?? Date.now)();
    const known = this.answers.get(key);
    if (!known || known.until <= now) this.ask(key, who, known?.allowed ?? false);
    return known?.allowed ?? false;
  }

  private ask(key: string, who: Identity, said: boolean): void {
    if (this.asking.has(key)) return;
    this.asking.add(key);
    const settle = (allowed: boolean) => {
      this.asking.delete(key);
      const ttl = allowed ? (this.options.allowedTtlMs ?? 300_000) : (this.options.deniedTtlMs ?? 30_000);
      if (this.answers.size >= (this.options.maxEntries ?? 10_000)) this.answers.clear();
      this.answers.set(key, { allowed, until: (this.options.now ?? Date.now)() + ttl });
      this.options.onAnswer(who, allowed, allowed !== said);
    };
    this.options.review(who).then(settle, (err: Error) => {
      this.options.onError?.(who, err);
      settle(false);
    });
  }
}
