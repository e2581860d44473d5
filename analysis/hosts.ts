// Host name helpers the checks share, with upstream's meaning (pkg/config/host).

/** Whether two host names, either possibly a wildcard (`*`, `*.example.com`), can name the same host. */
export function hostMatches(a: string, b: string): boolean {
  const aWild = a.startsWith("*");
  const bWild = b.startsWith("*");
  if (aWild && bWild) return a.length < b.length ? b.slice(1).endsWith(a.slice(1)) : a.slice(1).endsWith(b.slice(1));
  if (aWild) return b.endsWith(a.slice(1));
  if (bWild) return a.endsWith(b.slice(1));
  return a === b;
}

/**
 * A Gateway's server hosts (`[<namespace>/]<host>`) that a VirtualService of `namespace` may bind:
 * those without a namespace, with the namespace `*`, or with its own; the namespace part dropped.
 */
export function namesForNamespace(hosts: readonly string[], namespace: string): string[] {
  return hosts.flatMap((h) => {
    const slash = h.indexOf("/");
    if (slash < 0) return [h];
    const ns = h.slice(0, slash);
    return ns === "*" || ns === namespace ? [h.slice(slash + 1)] : [];
  });
}

/** Byte order, as Go's string comparison sorts (not the locale's). */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function sortedBy<T>(items: readonly T[], key: (item: T) => string): T[] {
  return [...items].sort((x, y) => compare(key(x), key(y)));
}

/** A label map as Kubernetes prints a selector: `a=1,b=2`, keys sorted. */
export function selectorString(labels: Record<string, string> | undefined): string {
  return Object.keys(labels ?? {})
    .sort(compare)
    .map((k) => `${k}=${labels?.[k]}`)
    .join(",");
}

/** Whether `labels` has every key and value of `selector` (an empty selector selects everything). */
export function selects(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  return Object.entries(selector ?? {}).every(([k, v]) => labels?.[k] === v);
}
