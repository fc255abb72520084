// Durable Object storage for values that may exceed one storage value (2 MiB): a prediction's input can hold two
// 10 MiB data URIs and a runner without a bucket returns its images as data URLs. Large values are stored as JSON
// split across keys, written in one atomic put.

/** Characters per chunk: at most 3 bytes each in UTF-8, so a chunk stays well under the 2 MiB value limit. */
export const CHUNK_CHARS = 512 * 1024;

interface ChunkHeader {
  __chunks: number;
}

const isHeader = (v: unknown): v is ChunkHeader =>
  typeof v === 'object' && v !== null && typeof (v as ChunkHeader).__chunks === 'number' && Object.keys(v).length === 1;

const chunkKey = (key: string, i: number) => `${key}#${i}`;

export async function putLarge(storage: DurableObjectStorage, key: string, value: unknown): Promise<void> {
  const previous = await storage.get(key);
  const previousChunks = isHeader(previous) ? previous.__chunks : 0;
  const json = JSON.stringify(value);
  let chunks = 0;
  if (json.length <= CHUNK_CHARS) {
    await storage.put(key, value);
  } else {
    chunks = Math.ceil(json.length / CHUNK_CHARS);
    if (chunks > 120) throw new Error(`value for ${key} is ${json.length} characters, more than storage allows`);
    const entries: Record<string, unknown> = { [key]: { __chunks: chunks } satisfies ChunkHeader };
    for (let i = 0; i < chunks; i++) entries[chunkKey(key, i)] = json.slice(i * CHUNK_CHARS, (i + 1) * CHUNK_CHARS);
    await storage.put(entries);
  }
  if (previousChunks > chunks) {
    await storage.delete(Array.from({ length: previousChunks - chunks }, (_, i) => chunkKey(key, chunks + i)));
  }
}

export async function getLarge<T>(storage: DurableObjectStorage, key: string): Promise<T | undefined> {
  const head = await storage.get(key);
  if (!isHeader(head)) return head as T | undefined;
  const keys = Array.from({ length: head.__chunks }, (_, i) => chunkKey(key, i));
  const parts = await storage.get<string>(keys);
  let json = '';
  for (const k of keys) {
    const part = parts.get(k);
    if (typeof part !== 'string') throw new Error(`stored value ${key} is missing chunk ${k}`);
    json += part;
  }
  return JSON.parse(json) as T;
}
