// Replicate's `Prefer: wait` / `Prefer: wait=N`: hold the create response until the prediction ends or N seconds pass.
export const MAX_WAIT_SECONDS = 60;

/** Seconds to wait, or null when the header does not ask to wait. Bare `wait` means the maximum, as on Replicate. */
export function parsePreferWait(header: string | undefined | null): number | null {
  if (!header) return null;
  for (const part of header.split(/[,;]/)) {
    const m = /^\s*wait(?:\s*=\s*"?(\d+)"?)?\s*$/i.exec(part);
    if (!m) continue;
    if (m[1] === undefined) return MAX_WAIT_SECONDS;
    return Math.min(Math.max(Number(m[1]), 1), MAX_WAIT_SECONDS);
  }
  return null;
}
