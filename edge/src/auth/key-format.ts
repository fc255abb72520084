// API keys: their text format (sk_<id>_<secret>, pk_<id>_<secret>), their SHA-256 hash and the stored key record.
// Pure Web Crypto + zod, so the worker and the Node key-management CLI hash and parse keys with the same code.

import { sha256Hex } from '@sd/shared/sha256';
import { z } from 'zod';

export const SCOPES = ['predictions:write', 'predictions:read', 'tokens:write'] as const;
export const ScopeSchema = z.enum(SCOPES);
export type Scope = z.infer<typeof ScopeSchema>;

export type KeyKind = 'secret' | 'publishable';
const PREFIX: Record<KeyKind, string> = { secret: 'sk', publishable: 'pk' };

/** Ids are public (they appear in `keys list` and as a token's `iss`); only the secret part is a credential. */
const ID_LENGTH = 12;
/** 32 characters of base62: about 190 bits, so a plain (unsalted) SHA-256 is as strong as a slow hash here. */
const SECRET_LENGTH = 32;
const KEY_PATTERN = /^(sk|pk)_([a-z0-9]{12})_([A-Za-z0-9]{32})$/;
const ID_PATTERN = /^[a-z0-9]{12}$/;

export const KeyLimitsSchema = z.strictObject({
  ratePerMinute: z.number().int().positive(),
  maxInFlight: z.number().int().positive(),
  maxSteps: z.number().int().positive().optional(),
  maxOutputs: z.number().int().positive().optional(),
  maxPixels: z.number().int().positive().optional(),
  /** Model ids this key may run; absent = every configured model. */
  models: z.array(z.string().min(1)).optional(),
});
export type KeyLimits = z.infer<typeof KeyLimitsSchema>;

/** Defaults when a key is created without explicit limits. Publishable keys live in web pages, so they get less. */
export const DEFAULT_KEY_LIMITS: Readonly<Record<KeyKind, KeyLimits>> = Object.freeze({
  secret: { ratePerMinute: 60, maxInFlight: 8 },
  publishable: { ratePerMinute: 10, maxInFlight: 2, maxSteps: 30, maxOutputs: 1, maxPixels: 512 * 512 },
});

export const DEFAULT_SCOPES: Readonly<Record<KeyKind, readonly Scope[]>> = Object.freeze({
  secret: ['predictions:write', 'predictions:read', 'tokens:write'],
  /** A publishable key can only create and read predictions, whatever its record says. */
  publishable: ['predictions:write', 'predictions:read'],
});

export const KeyRecordSchema = z.strictObject({
  id: z.string().regex(ID_PATTERN),
  kind: z.enum(['secret', 'publishable']),
  /** Lower-case hex SHA-256 of the whole key text. */
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  name: z.string(),
  scopes: z.array(ScopeSchema),
  /**
   * Publishable keys: the only origins the key is valid from. Secret keys: the audiences its user tokens may name
   * (empty = any). Every listed origin is also answered by CORS.
   */
  origins: z.array(z.string()).default([]),
  createdAt: z.iso.datetime(),
  expiresAt: z.iso.datetime().optional(),
  revokedAt: z.iso.datetime().optional(),
  limits: KeyLimitsSchema,
});
export type KeyRecord = z.infer<typeof KeyRecordSchema>;

/** KV layout of the KEYS namespace. */
export const kvKeys = {
  record: (id: string) => `key:${id}`,
  recordPrefix: 'key:',
  /** JSON array of the key ids that list this origin: lets a CORS preflight (which carries no key) be answered. */
  origin: (origin: string) => `origin:${origin}`,
} as const;

export interface ParsedApiKey {
  kind: KeyKind;
  id: string;
}

/** The kind and id of a key, or null when the text is not shaped like one of our keys. */
export function parseApiKey(text: string): ParsedApiKey | null {
  const m = KEY_PATTERN.exec(text);
  if (!m) return null;
  return { kind: m[1] === 'sk' ? 'secret' : 'publishable', id: m[2] };
}

export function looksLikeApiKey(text: string): boolean {
  return text.startsWith('sk_') || text.startsWith('pk_');
}

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const BASE36 = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** Uniform random characters from `alphabet` (rejection sampling, so no modulo bias). */
function randomChars(alphabet: string, length: number): string {
  const limit = 256 - (256 % alphabet.length);
  let out = '';
  while (out.length < length) {
    for (const b of crypto.getRandomValues(new Uint8Array(length * 2))) {
      if (b < limit && out.length < length) out += alphabet[b % alphabet.length];
    }
  }
  return out;
}

/** A fresh key: its text (shown once) and the hash that is all the store keeps. */
export async function generateApiKey(kind: KeyKind): Promise<{ key: string; id: string; hash: string }> {
  const id = randomChars(BASE36, ID_LENGTH);
  const key = `${PREFIX[kind]}_${id}_${randomChars(BASE62, SECRET_LENGTH)}`;
  return { key, id, hash: await hashApiKey(key) };
}

/** SHA-256 over the whole key text (prefix and id included, so a secret cannot be moved to another id). */
export function hashApiKey(key: string): Promise<string> {
  return sha256Hex(key);
}

/** `scheme://host[:port]` exactly as browsers send it in `Origin`; throws with the value on anything else. */
export function normalizeOrigin(origin: string): string {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    throw new Error(`origin must be an absolute http(s) origin like https://example.com, got ${JSON.stringify(origin)}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new Error(`origin must use http or https, got ${JSON.stringify(origin)}`);
  }
  if (url.pathname !== '/' || url.search || url.hash || url.username) {
    throw new Error(`origin must not carry a path, query or credentials, got ${JSON.stringify(origin)}`);
  }
  return url.origin;
}

export type KeyStatus = 'active' | 'revoked' | 'expired';

export function keyStatus(record: Pick<KeyRecord, 'revokedAt' | 'expiresAt'>, now = Date.now()): KeyStatus {
  if (record.revokedAt) return 'revoked';
  if (record.expiresAt && Date.parse(record.expiresAt) <= now) return 'expired';
  return 'active';
}

export interface NewApiKeyOptions {
  kind: KeyKind;
  name: string;
  /** Default: DEFAULT_SCOPES[kind]. Publishable keys are capped to create/read predictions whatever is asked. */
  scopes?: readonly Scope[];
  origins?: readonly string[];
  expiresAt?: Date;
  /** Merged over DEFAULT_KEY_LIMITS[kind]. */
  limits?: Partial<KeyLimits>;
  now?: Date;
}

/** A new key and its record (what the CLI stores). Throws with the value on a bad origin or a publishable key without one. */
export async function newApiKey(options: NewApiKeyOptions): Promise<{ key: string; record: KeyRecord }> {
  const origins = [...new Set((options.origins ?? []).map(normalizeOrigin))];
  if (options.kind === 'publishable' && origins.length === 0) {
    throw new Error('a publishable key needs at least one origin (--origin https://example.com)');
  }
  const now = options.now ?? new Date();
  if (options.expiresAt && options.expiresAt.getTime() <= now.getTime()) {
    throw new Error(`expiry must be in the future, got ${options.expiresAt.toISOString()}`);
  }
  const scopes = (options.scopes ?? DEFAULT_SCOPES[options.kind]).filter(
    (s) => options.kind === 'secret' || DEFAULT_SCOPES.publishable.includes(s),
  );
  const { key, id, hash } = await generateApiKey(options.kind);
  const record = KeyRecordSchema.parse({
    id,
    kind: options.kind,
    hash,
    name: options.name,
    scopes: [...new Set(scopes)],
    origins,
    createdAt: now.toISOString(),
    ...(options.expiresAt ? { expiresAt: options.expiresAt.toISOString() } : {}),
    limits: {
      ...DEFAULT_KEY_LIMITS[options.kind],
      ...Object.fromEntries(Object.entries(options.limits ?? {}).filter(([, v]) => v !== undefined)),
    },
  });
  return { key, record };
}
