// The `Prefer` request header (RFC 7240) as both services read it: `respond-async` (Cog: answer at once) and
// `wait` / `wait=N` (Replicate: hold the answer until the prediction ends or N seconds pass).

/** The longest either service holds an answer for `Prefer: wait` (Replicate's limit); a bare `wait` means this. */
export const MAX_WAIT_SECONDS = 60;

export interface Preference {
  respondAsync: boolean;
  /** Seconds to hold the answer (1..MAX_WAIT_SECONDS), or null when the header does not ask to wait. */
  waitSeconds: number | null;
}

/** Reads the preferences; unknown ones (return=minimal, ...) are ignored, as RFC 7240 asks. */
export function parsePrefer(header: string | undefined | null): Preference {
  const preference: Preference = { respondAsync: false, waitSeconds: null };
  for (const part of (header ?? '').split(/[,;]/)) {
    if (/^\s*respond-async\s*$/i.test(part)) {
      preference.respondAsync = true;
      continue;
    }
    const wait = /^\s*wait(?:\s*=\s*"?(\d+)"?)?\s*$/i.exec(part);
    if (wait && preference.waitSeconds === null) {
      preference.waitSeconds =
        wait[1] === undefined ? MAX_WAIT_SECONDS : Math.min(Math.max(Number(wait[1]), 1), MAX_WAIT_SECONDS);
    }
  }
  return preference;
}
