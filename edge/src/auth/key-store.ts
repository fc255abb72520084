// Reading and writing key records and the CORS origin index in the KEYS namespace.
// Written against a four-method store so the worker (KV binding) and the CLI (local Miniflare KV or `wrangler kv --remote`) share it.
import { type KeyRecord, KeyRecordSchema, kvKeys } from './key-format.ts';

export interface KeyValueStore {
  get(key: string): Promise<string | null>;
  put(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
  /** Every key name starting with `prefix`. */
  list(prefix: string): Promise<string[]>;
}

export interface KvStoreOptions {
  /**
   * Seconds an edge location may serve a cached read. KV's minimum is 30; revocation then takes effect within
   * this plus KV's own propagation (about a minute). Absent = no edge cache.
   */
  cacheTtl?: number;
}

/** Adapts a Workers KV binding (or Miniflare's KVNamespace, which has the same API) to KeyValueStore. */
export function kvStore(
  kv: Pick<KVNamespace, 'get' | 'put' | 'delete' | 'list'>,
  { cacheTtl }: KvStoreOptions = {},
): KeyValueStore {
  return {
    get: (key) => kv.get(key, cacheTtl ? { type: 'text', cacheTtl } : { type: 'text' }),
    put: (key, value) => kv.put(key, value),
    delete: (key) => kv.delete(key),
    async list(prefix) {
      const names: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await kv.list({ prefix, ...(cursor ? { cursor } : {}) });
        names.push(...page.keys.map((k) => k.name));
        cursor = page.list_complete ? undefined : page.cursor;
      } while (cursor);
      return names;
    },
  };
}

/** The record for `id`, or null. A stored record that no longer parses is an operator error and throws. */
export async function getKeyRecord(store: KeyValueStore, id: string): Promise<KeyRecord | null> {
  const raw = await store.get(kvKeys.record(id));
  if (raw === null) return null;
  const parsed = KeyRecordSchema.safeParse(JSON.parse(raw));
  if (!parsed.success) throw new Error(`key record ${id} in KV is invalid: ${parsed.error.message}`);
  return parsed.data;
}

export async function listKeyRecords(store: KeyValueStore): Promise<KeyRecord[]> {
  const names = await store.list(kvKeys.recordPrefix);
  const records = await Promise.all(names.map((n) => getKeyRecord(store, n.slice(kvKeys.recordPrefix.length))));
  return records.filter((r): r is KeyRecord => r !== null).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

async function readOriginIndex(store: KeyValueStore, origin: string): Promise<string[]> {
  const raw = await store.get(kvKeys.origin(origin));
  if (raw === null) return [];
  const ids: unknown = JSON.parse(raw);
  return Array.isArray(ids) ? ids.filter((x): x is string => typeof x === 'string') : [];
}

/** Stores a record and adds its origins to the index. (Read-modify-write: the CLI is the only writer.) */
export async function saveKeyRecord(store: KeyValueStore, record: KeyRecord): Promise<void> {
  await store.put(kvKeys.record(record.id), JSON.stringify(KeyRecordSchema.parse(record)));
  for (const origin of record.origins) {
    const ids = await readOriginIndex(store, origin);
    if (!ids.includes(record.id)) await store.put(kvKeys.origin(origin), JSON.stringify([...ids, record.id]));
  }
}

/** Marks a key revoked (kept for the audit trail) and drops it from the origin index. Null when there is no such key. */
export async function revokeKeyRecord(store: KeyValueStore, id: string, now = new Date()): Promise<KeyRecord | null> {
  const record = await getKeyRecord(store, id);
  if (!record) return null;
  const revoked: KeyRecord = { ...record, revokedAt: record.revokedAt ?? now.toISOString() };
  await store.put(kvKeys.record(id), JSON.stringify(revoked));
  for (const origin of record.origins) {
    const ids = (await readOriginIndex(store, origin)).filter((x) => x !== id);
    if (ids.length === 0) await store.delete(kvKeys.origin(origin));
    else await store.put(kvKeys.origin(origin), JSON.stringify(ids));
  }
  return revoked;
}

/** Whether some unrevoked key lists `origin` (used to answer CORS preflights, which carry no key). */
export async function isIndexedOrigin(store: KeyValueStore, origin: string): Promise<boolean> {
  return (await readOriginIndex(store, origin)).length > 0;
}
