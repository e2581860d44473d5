// Durations as Istio's resources write them ("1.5s", "100ms", "2m", "1h"), as protobuf Durations.
/** "1.5s", "100ms", "2m", "1h" as a Duration. */
export function duration(value: string | undefined): { seconds: number; nanos?: number } | undefined {
  const m = /^(\d+(?:\.\d+)?)(h|m|s|ms|us|µs|ns)$/.exec(value ?? "");
  if (!m) return undefined;
  const scale: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6, µs: 1e-6, ns: 1e-9 };
  const total = Number(m[1]) * (scale[m[2] as string] as number);
  const seconds = Math.floor(total);
  const nanos = Math.round((total - seconds) * 1e9);
  return nanos ? { seconds, nanos } : { seconds };
}
