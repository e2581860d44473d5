// Status conditions as Kubernetes API conventions define them: one per type;
// lastTransitionTime moves only when the status does (pruning and humans rely on it).
export interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  lastTransitionTime?: string;
  observedGeneration?: number;
}

/** `conditions` with `next` set, keeping the old transition time when the status did not change. */
export function setCondition(conditions: Condition[] | undefined, next: Condition, now: Date): Condition[] {
  const list = [...(conditions ?? [])];
  const index = list.findIndex((c) => c.type === next.type);
  const previous = index >= 0 ? list[index] : undefined;
  const merged: Condition = {
    ...next,
    lastTransitionTime:
      previous && previous.status === next.status && previous.lastTransitionTime
        ? previous.lastTransitionTime
        : now.toISOString(),
  };
  if (index >= 0) list[index] = merged;
  else list.push(merged);
  return list;
}

export function condition(conditions: Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}
