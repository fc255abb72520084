// Files uploaded with POST /v1/files, in the FILES KV namespace: the bytes under files/<key id>/<file id>, the file
// record (Replicate's file object fields) in the KV metadata, an expiry of FILE_TTL_SECONDS. Keyed by the owner, so
// another key's file is simply absent.
import type { ImageType } from '../images/image-data.ts';

/** Replicate keeps uploaded files for a day; so do we (KV deletes them at expiry). */
export const FILE_TTL_SECONDS = 24 * 3600;
/** KV metadata is at most 1024 bytes: the caller's own metadata gets this much of it. */
export const MAX_FILE_METADATA_BYTES = 512;
const MAX_NAME_CHARS = 200;

export interface FileRecord {
  id: string;
  name: string;
  content_type: ImageType;
  size: number;
  sha256: string;
  metadata: Record<string, unknown>;
  created_at: string;
  expires_at: string;
}

async function sha256OfBytes(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

const keyOf = (ownerKeyId: string, id: string) => `files/${ownerKeyId}/${id}`;

/** 26 lowercase base32 characters, like prediction ids. */
export function newFileId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  let out = '';
  for (const b of crypto.getRandomValues(new Uint8Array(26))) out += alphabet[b & 31];
  return out;
}

export async function putFile(
  kv: KVNamespace,
  ownerKeyId: string,
  file: { name: string; type: ImageType; bytes: Uint8Array; metadata: Record<string, unknown> },
  now = Date.now(),
): Promise<FileRecord> {
  const record: FileRecord = {
    id: newFileId(),
    name: file.name.slice(0, MAX_NAME_CHARS),
    content_type: file.type,
    size: file.bytes.byteLength,
    sha256: await sha256OfBytes(file.bytes),
    metadata: file.metadata,
    created_at: new Date(now).toISOString(),
    expires_at: new Date(now + FILE_TTL_SECONDS * 1000).toISOString(),
  };
  await kv.put(keyOf(ownerKeyId, record.id), file.bytes, { expirationTtl: FILE_TTL_SECONDS, metadata: record });
  return record;
}

export async function getFileRecord(kv: KVNamespace, ownerKeyId: string, id: string): Promise<FileRecord | null> {
  // list() would be eventually consistent; a keyed read with metadata is not.
  const got = await kv.getWithMetadata<FileRecord>(keyOf(ownerKeyId, id), 'stream');
  await got.value?.cancel();
  return got.value === null ? null : got.metadata;
}

export async function getFileBytes(
  kv: KVNamespace,
  ownerKeyId: string,
  id: string,
): Promise<{ record: FileRecord; bytes: Uint8Array } | null> {
  const got = await kv.getWithMetadata<FileRecord>(keyOf(ownerKeyId, id), 'arrayBuffer');
  if (got.value === null || got.metadata === null) return null;
  return { record: got.metadata, bytes: new Uint8Array(got.value) };
}

export async function deleteFile(kv: KVNamespace, ownerKeyId: string, id: string): Promise<boolean> {
  const existing = await getFileRecord(kv, ownerKeyId, id);
  if (!existing) return false;
  await kv.delete(keyOf(ownerKeyId, id));
  return true;
}

/** The owner's files, newest first as far as one KV list page goes (KV lists are eventually consistent). */
export async function listFiles(kv: KVNamespace, ownerKeyId: string, cursor?: string) {
  const page = await kv.list<FileRecord>({ prefix: `files/${ownerKeyId}/`, cursor, limit: 100 });
  const records = page.keys.map((k) => k.metadata).filter((m): m is FileRecord => Boolean(m));
  records.sort((a, b) => b.created_at.localeCompare(a.created_at));
  return { records, cursor: page.list_complete ? null : page.cursor };
}
