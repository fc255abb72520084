// Which runner of a model's pool gets an attempt: a per-prediction starting point (spreads load without shared state),
// then the next runner on every retry, so a busy or dead runner is not asked again right away.
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** `attempt` is 1-based (the queue's message.attempts); `avoid`ed runners are asked only when no other is configured. */
export function pickRunner(
  runners: readonly string[],
  predictionId: string,
  attempt: number,
  avoid: readonly string[] = [],
): string {
  if (runners.length === 0) throw new Error('runners must not be empty');
  const preferred = runners.filter((r) => !avoid.includes(r));
  const pool = preferred.length > 0 ? preferred : runners;
  return pool[(fnv1a(predictionId) + attempt - 1) % pool.length];
}

/** Seconds before retry n (1-based): 2, 4, 8, 16, 32, then 60, with up to 25% jitter so refused messages spread out. */
export function retryDelaySeconds(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(2 ** attempt, 60);
  return Math.max(1, Math.round(base * (1 + 0.25 * random())));
}
