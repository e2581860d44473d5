// istiod fetches the key sets RequestAuthentications name by `jwksUri` and hands them to the
// proxies inline (upstream's default "istiod" fetch mode): the proxies need no route to the
// issuer. Fetched in the background, at most one request per URI at a time, each bounded in
// time and size; refreshed every 20 minutes; a changed key set triggers a push. Until a URI's
// first fetch succeeds, its providers get a key set no token matches (fail closed).
const REFRESH_MS = 20 * 60_000;
/** After a failure: 5 s, doubling up to a minute (an issuer just deployed may not answer yet). */
const RETRY_MS = 60_000;
const FIRST_RETRY_MS = 5_000;
const TIMEOUT_MS = 5_000;
const MAX_BYTES = 1 << 20;
/** URIs kept at most (a user could name very many). */
const MAX_URIS = 1_000;

/** The wait before the next fetch after `failures` failures in a row. */
export function retryDelay(failures: number): number {
  return Math.min(RETRY_MS, FIRST_RETRY_MS * 2 ** Math.max(0, failures - 1));
}

interface Entry {
  keys?: string;
  /** When a push last asked for it: an entry nobody asks for stops being refreshed. */
  wantedAt: number;
  inFlight: boolean;
  timer?: NodeJS.Timeout;
  lastError?: string;
  failures: number;
}

export class JwksFetcher {
  private readonly entries = new Map<string, Entry>();

  private readonly onChange: () => void;
  private readonly log: { warn(obj: object, msg: string): void };
  private readonly fetchImpl: typeof fetch;

  constructor(onChange: () => void, log: { warn(obj: object, msg: string): void }, fetchImpl: typeof fetch = fetch) {
    this.onChange = onChange;
    this.log = log;
    this.fetchImpl = fetchImpl;
  }

  /** The key sets known for `uris` now; the first time a URI is asked for, it is fetched (in the background). */
  keysFor(uris: Iterable<string>): Map<string, string> {
    const out = new Map<string, string>();
    for (const uri of uris) {
      let entry = this.entries.get(uri);
      if (!entry) {
        if (this.entries.size >= MAX_URIS) continue;
        entry = { wantedAt: 0, inFlight: false, failures: 0 };
        this.entries.set(uri, entry);
        void this.fetch(uri, entry);
      }
      entry.wantedAt = Date.now();
      if (entry.keys) out.set(uri, entry.keys);
    }
    return out;
  }

  stop(): void {
    for (const entry of this.entries.values()) clearTimeout(entry.timer);
    this.entries.clear();
  }

  private async fetch(uri: string, entry: Entry): Promise<void> {
    entry.inFlight = true;
    try {
      if (!/^https?:\/\//.test(uri)) throw new Error("not an http(s) URI");
      const response = await this.fetchImpl(uri, { signal: AbortSignal.timeout(TIMEOUT_MS), redirect: "error" });
      if (!response.ok) throw new Error(`status ${response.status}`);
      if (Number(response.headers.get("content-length") ?? 0) > MAX_BYTES) throw new Error(`larger than ${MAX_BYTES} bytes`);
      const text = await response.text();
      if (text.length > MAX_BYTES) throw new Error(`larger than ${MAX_BYTES} bytes`);
      const parsed = JSON.parse(text) as { keys?: unknown };
      if (!Array.isArray(parsed.keys)) throw new Error("no keys array");
      const changed = entry.keys !== text;
      entry.keys = text;
      entry.lastError = undefined;
      entry.failures = 0;
      if (changed) this.onChange();
    } catch (err) {
      const message = (err as Error).message;
      if (entry.lastError !== message)
        this.log.warn({ jwksUri: uri, error: message }, "JWKS fetch failed: tokens for its issuer are refused");
      entry.lastError = message;
      entry.failures++;
    } finally {
      entry.inFlight = false;
      // Again in 20 minutes (after a failure: 5 s, 10 s, ... up to a minute), while some push still asks for it.
      entry.timer = setTimeout(
        () => {
          if (Date.now() - entry.wantedAt > 2 * REFRESH_MS) this.entries.delete(uri);
          else void this.fetch(uri, entry);
        },
        entry.lastError ? retryDelay(entry.failures) : REFRESH_MS,
      );
      entry.timer.unref();
    }
  }
}
