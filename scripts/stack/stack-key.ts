// The local stack's own secret key ("local-stack") in a persistent state folder: kept in <state>/local-stack-key.json
// (readable by its owner only) and given again at the next start, so starts do not pile up keys and the key a person
// pasted somewhere keeps working. A key that was revoked (or a folder whose KV was wiped) gets a new one in its place.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** What the stack asked of its key: a saved key is given again only for the same limits. */
export interface StackKeySpec {
  ratePerMinute?: number;
  maxInFlight?: number;
}

export interface SavedStackKey {
  id: string;
  key: string;
  spec: StackKeySpec;
}

export const STACK_KEY_FILE = 'local-stack-key.json';

const sameSpec = (a: StackKeySpec, b: StackKeySpec) =>
  (a.ratePerMinute ?? null) === (b.ratePerMinute ?? null) && (a.maxInFlight ?? null) === (b.maxInFlight ?? null);

/**
 * The saved key of this state folder: `reuse` when it was made with `spec`, `replace` (its id, to revoke) when with
 * other limits, null when there is none (or the file is not one we wrote).
 */
export async function savedStackKey(
  stateDir: string,
  spec: StackKeySpec,
): Promise<{ kind: 'reuse'; key: SavedStackKey } | { kind: 'replace'; id: string } | null> {
  let saved: SavedStackKey;
  try {
    saved = JSON.parse(await readFile(join(stateDir, STACK_KEY_FILE), 'utf8')) as SavedStackKey;
  } catch {
    return null;
  }
  if (typeof saved?.id !== 'string' || typeof saved.key !== 'string' || typeof saved.spec !== 'object') return null;
  return sameSpec(saved.spec ?? {}, spec) ? { kind: 'reuse', key: saved } : { kind: 'replace', id: saved.id };
}

export async function saveStackKey(stateDir: string, key: SavedStackKey): Promise<void> {
  // 0600: the key is a credential; the folder's KV holds only its hash.
  await writeFile(join(stateDir, STACK_KEY_FILE), `${JSON.stringify(key, null, 2)}\n`, { mode: 0o600 });
}
