// One Durable Object per API key: the list of its predictions (newest first, cursor-paginated, per end user or all of
// the key's) and its idempotency keys (per end user). SQLite storage, so a claim is atomic and listing is strongly
// consistent (KV list is not).
import { DurableObject } from 'cloudflare:workers';

export type IdempotencyClaim =
  | { kind: 'new'; predictionId: string }
  | { kind: 'existing'; predictionId: string }
  | { kind: 'mismatch'; predictionId: string };

export interface IndexPage {
  ids: string[];
  /** Opaque cursor of the next (older) page, or null. */
  next: string | null;
}

/** How long an idempotency key is remembered (Stripe's 24 h). */
export const IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;

function encodeCursor(createdMs: number, id: string): string {
  return btoa(`${createdMs}:${id}`).replace(/=+$/, '');
}

export function decodeCursor(cursor: string): { createdMs: number; id: string } | null {
  try {
    const text = atob(cursor);
    const colon = text.indexOf(':');
    const createdMs = Number(text.slice(0, colon));
    const id = text.slice(colon + 1);
    if (colon < 1 || !Number.isInteger(createdMs) || !/^[a-z0-9]+$/.test(id)) return null;
    return { createdMs, id };
  } catch {
    return null;
  }
}

/** Idempotency keys are per end user: two visitors of one page may pick the same key for different requests. */
function scopedKey(clientKey: string, subject: string | null): string {
  return subject === null ? clientKey : `${subject}\u0000${clientKey}`;
}

export class PredictionIndex extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(`
      CREATE TABLE IF NOT EXISTS predictions (id TEXT PRIMARY KEY, created_ms INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS predictions_by_time ON predictions (created_ms DESC, id DESC);
      CREATE TABLE IF NOT EXISTS idempotency (key TEXT PRIMARY KEY, body_hash TEXT NOT NULL, prediction_id TEXT NOT NULL, created_ms INTEGER NOT NULL);
    `);
    // Rows written before per-user ownership have no subject: they belong to the key itself ('' = the key's own).
    const columns = ctx.storage.sql.exec<{ name: string }>('PRAGMA table_info(predictions)').toArray();
    if (!columns.some((c) => c.name === 'subject')) {
      ctx.storage.sql.exec(`ALTER TABLE predictions ADD COLUMN subject TEXT NOT NULL DEFAULT ''`);
    }
    ctx.storage.sql.exec('CREATE INDEX IF NOT EXISTS predictions_by_subject ON predictions (subject, created_ms DESC, id DESC)');
  }

  /** Atomically binds `key` (of end user `subject`) to `candidateId` unless it is already bound (then the bound id is returned). */
  async claimIdempotencyKey(
    clientKey: string,
    bodyHash: string,
    candidateId: string,
    subject: string | null,
  ): Promise<IdempotencyClaim> {
    const key = scopedKey(clientKey, subject);
    const now = Date.now();
    this.ctx.storage.sql.exec('DELETE FROM idempotency WHERE created_ms < ?', now - IDEMPOTENCY_TTL_MS);
    const rows = this.ctx.storage.sql
      .exec<{ body_hash: string; prediction_id: string }>('SELECT body_hash, prediction_id FROM idempotency WHERE key = ?', key)
      .toArray();
    if (rows.length > 0) {
      const row = rows[0];
      return row.body_hash === bodyHash
        ? { kind: 'existing', predictionId: row.prediction_id }
        : { kind: 'mismatch', predictionId: row.prediction_id };
    }
    this.ctx.storage.sql.exec(
      'INSERT INTO idempotency (key, body_hash, prediction_id, created_ms) VALUES (?, ?, ?, ?)',
      key,
      bodyHash,
      candidateId,
      now,
    );
    return { kind: 'new', predictionId: candidateId };
  }

  /** Forgets a claim whose prediction could not be created, so a retry with the same key can try again. */
  async releaseIdempotencyKey(clientKey: string, predictionId: string, subject: string | null): Promise<void> {
    this.ctx.storage.sql.exec(
      'DELETE FROM idempotency WHERE key = ? AND prediction_id = ?',
      scopedKey(clientKey, subject),
      predictionId,
    );
  }

  async add(id: string, createdMs: number, subject: string | null): Promise<void> {
    this.ctx.storage.sql.exec(
      'INSERT OR IGNORE INTO predictions (id, created_ms, subject) VALUES (?, ?, ?)',
      id,
      createdMs,
      subject ?? '',
    );
  }

  /** The key's predictions, newest first: all of them (`subject` null, the secret key's view) or one end user's. */
  async list(cursor: string | null, limit: number, subject: string | null): Promise<IndexPage> {
    const after = cursor ? decodeCursor(cursor) : null;
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (subject !== null) {
      where.push('subject = ?');
      args.push(subject);
    }
    if (after) {
      where.push('(created_ms < ? OR (created_ms = ? AND id < ?))');
      args.push(after.createdMs, after.createdMs, after.id);
    }
    const rows = this.ctx.storage.sql
      .exec<{ id: string; created_ms: number }>(
        `SELECT id, created_ms FROM predictions ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_ms DESC, id DESC LIMIT ?`,
        ...args,
        limit + 1,
      )
      .toArray();
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return { ids: page.map((r) => r.id), next: rows.length > limit && last ? encodeCursor(last.created_ms, last.id) : null };
  }
}
