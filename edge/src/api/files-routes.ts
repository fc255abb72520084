// Replicate's files API: POST /v1/files (multipart `content` + optional `metadata`, what the replicate client sends
// for a Buffer or Blob input), GET/DELETE /v1/files/{id}, GET /v1/files/{id}/download, GET /v1/files. Only images
// are taken (they are the only file inputs); a file URL given as an input is inlined at create (files/file-inputs.ts).

import { DomainError, invalidInput, notFound } from '@sd/shared/domain-error';
import { DEFAULT_LIMITS } from '@sd/shared/schemas/limits';
import type { Hono } from 'hono';
import { requireScope } from '../auth/authenticate/index.ts';
import { fileScopeOf } from '../auth/ownership.ts';
import {
  deleteFile,
  type FileRecord,
  getFileBytes,
  getFileRecord,
  listFiles,
  MAX_FILE_METADATA_BYTES,
  putFile,
} from '../files/file-store.ts';
import { sniffImageType } from '../images/image-data.ts';
import { type AppContext, type AppEnv, configOf, requestLog } from './app-env.ts';
import { callerOf } from './caller.ts';

const ID_PATTERN = /^[a-z0-9]{1,64}$/;

/** The largest upload: the largest image input any configured model takes. */
function maxFileBytes(c: AppContext): number {
  return Math.max(DEFAULT_LIMITS.maxImageBytes, ...configOf(c).models.map((m) => m.limits.maxImageBytes));
}

function fileObject(c: AppContext, f: FileRecord) {
  return {
    id: f.id,
    name: f.name,
    content_type: f.content_type,
    size: f.size,
    etag: `"${f.sha256}"`,
    checksums: { sha256: f.sha256 },
    metadata: f.metadata,
    created_at: f.created_at,
    expires_at: f.expires_at,
    urls: { get: `${configOf(c).publicBaseUrl}/v1/files/${f.id}` },
  };
}

async function metadataOf(value: File | string | null): Promise<Record<string, unknown>> {
  if (value === null) return {};
  const text = typeof value === 'string' ? value : await value.text();
  if (new TextEncoder().encode(text).byteLength > MAX_FILE_METADATA_BYTES) {
    throw invalidInput('metadata', `metadata must be at most ${MAX_FILE_METADATA_BYTES} bytes of JSON, got ${text.length}`);
  }
  try {
    const parsed: unknown = JSON.parse(text || '{}');
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // fall through to the error below
  }
  throw invalidInput('metadata', `metadata must be a JSON object, got ${JSON.stringify(text.slice(0, 40))}`);
}

async function owned(c: AppContext, id: string): Promise<FileRecord> {
  const record = ID_PATTERN.test(id) ? await getFileRecord(c.env.FILES, fileScopeOf(callerOf(c)), id) : null;
  if (!record) throw notFound(`file ${JSON.stringify(id)}`);
  return record;
}

export function registerFileRoutes(app: Hono<AppEnv>): void {
  const write = requireScope('predictions:write');
  const read = requireScope('predictions:read');

  app.post('/v1/files', write, async (c) => {
    const type = c.req.header('content-type') ?? '';
    if (!/^multipart\/form-data/i.test(type)) {
      const message = `Content-Type must be multipart/form-data with a "content" file, got ${JSON.stringify(type.slice(0, 60))}`;
      throw new DomainError('unsupported_media_type', message, [{ field: 'Content-Type', message }]);
    }
    let form: FormData;
    try {
      form = await c.req.raw.formData();
    } catch {
      throw invalidInput('(body)', 'body must be a valid multipart/form-data body');
    }
    const content = form.get('content');
    if (content === null || typeof content === 'string') {
      throw invalidInput('content', 'content must be a file part (multipart field "content" with a filename)');
    }
    const max = maxFileBytes(c);
    if (content.size > max) {
      throw new DomainError('payload_too_large', `content must be at most ${max} bytes, got ${content.size}`, [
        { field: 'content', message: `content must be at most ${max} bytes` },
      ]);
    }
    const bytes = new Uint8Array(await content.arrayBuffer());
    const imageType = sniffImageType(bytes);
    if (!imageType) {
      const message = `content must be a PNG, JPEG or WebP image (files are image inputs), got ${JSON.stringify(content.type || 'unknown')} bytes that are none of them`;
      throw new DomainError('unsupported_media_type', message, [{ field: 'content', message }]);
    }
    const filename = form.get('filename');
    const name = typeof filename === 'string' && filename ? filename : content.name || 'file';
    const principal = callerOf(c);
    const record = await putFile(c.env.FILES, fileScopeOf(principal), {
      name,
      type: imageType,
      bytes,
      metadata: await metadataOf(form.get('metadata')),
    });
    requestLog(c, { keyId: principal.keyId }).info('file stored', { fileId: record.id, size: record.size, type: imageType });
    return c.json(fileObject(c, record), 201);
  });

  app.get('/v1/files', read, async (c) => {
    const cursor = c.req.query('cursor') || undefined;
    const page = await listFiles(c.env.FILES, fileScopeOf(callerOf(c)), cursor);
    const base = `${configOf(c).publicBaseUrl}/v1/files`;
    return c.json({
      previous: null,
      next: page.cursor ? `${base}?cursor=${encodeURIComponent(page.cursor)}` : null,
      results: page.records.map((r) => fileObject(c, r)),
    });
  });

  app.get('/v1/files/:id', read, async (c) => c.json(fileObject(c, await owned(c, c.req.param('id')))));

  app.get('/v1/files/:id/download', read, async (c) => {
    const id = c.req.param('id');
    const file = ID_PATTERN.test(id) ? await getFileBytes(c.env.FILES, fileScopeOf(callerOf(c)), id) : null;
    if (!file) throw notFound(`file ${JSON.stringify(id)}`);
    return new Response(file.bytes, {
      headers: {
        'content-type': file.record.content_type,
        'content-length': String(file.bytes.byteLength),
        etag: `"${file.record.sha256}"`,
        'cache-control': 'private, no-store',
      },
    });
  });

  app.delete('/v1/files/:id', write, async (c) => {
    const id = c.req.param('id');
    if (!ID_PATTERN.test(id) || !(await deleteFile(c.env.FILES, fileScopeOf(callerOf(c)), id)))
      throw notFound(`file ${JSON.stringify(id)}`);
    return c.body(null, 204);
  });
}
