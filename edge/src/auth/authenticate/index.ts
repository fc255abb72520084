// authenticate(): turns `Authorization: Bearer <sk_ | pk_ | user token>` into c.var.principal, or answers 401/403.
// requireScope(): a route guard on the principal's scopes.

import { timingSafeEqual } from '@sd/shared/webhook-signature';
import type { Context, MiddlewareHandler } from 'hono';
import { httpError } from '../http-error.ts';
import {
  DEFAULT_SCOPES,
  hashApiKey,
  type KeyRecord,
  keyStatus,
  looksLikeApiKey,
  normalizeOrigin,
  parseApiKey,
  type Scope,
} from '../key-format.ts';
import { getKeyRecord, type KeyValueStore, kvStore } from '../key-store.ts';
import type { Principal } from '../principal.ts';
import { looksLikeUserToken, type UserTokenClaims, verifyUserToken } from '../user-token.ts';

declare module 'hono' {
  interface ContextVariableMap {
    principal: Principal;
  }
}

/** The bindings authenticate() reads when no accessor is given. */
export interface AuthBindings {
  KEYS: KVNamespace;
  TOKEN_SIGNING_SECRET?: string;
}

type AuthContext = Context<{ Bindings: AuthBindings }>;

export interface AuthenticateOptions {
  /** Where key records live. Default: the KEYS binding. */
  keys?: (c: AuthContext) => KeyValueStore;
  /** The secret user tokens are signed with. Default: the TOKEN_SIGNING_SECRET binding; absent = tokens refused. */
  tokenSigningSecret?: (c: AuthContext) => string | undefined;
  /**
   * Edge cache of key records in seconds (KV minimum 30). Default 60: a revocation is seen within about two minutes.
   * Each isolate also keeps the records it read for KEY_MEMORY_TTL_MS; 0 disables both.
   */
  cacheTtl?: number;
  /** WWW-Authenticate realm. */
  realm?: string;
  /** Milliseconds since the epoch (tests). */
  now?: () => number;
}

/** Scopes a user token can carry at most: it stands for an end user, who only creates and reads predictions. */
const TOKEN_SCOPES: readonly Scope[] = ['predictions:write', 'predictions:read'];

/**
 * How long an isolate reuses a key record it read. Without it every request paid a KV read and a zod parse of the
 * record; 10 s is short next to the KV edge cache, so revocation timing barely moves.
 */
export const KEY_MEMORY_TTL_MS = 10_000;
/** Distinct keys remembered per isolate before the memory is cleared (bounds memory under a flood of key ids). */
const KEY_MEMORY_MAX = 1_000;

/** Compared against when the key id is unknown, so an unknown id costs the same hash and compare as a wrong secret. */
const NO_SUCH_HASH = '0'.repeat(64);

/**
 * Authentication middleware. Accepts `Authorization: Bearer <credential>` (what the `replicate` and `openai` clients
 * send), `Token <credential>` (Replicate's older scheme) and `Basic` with the key as the password (A1111's clients). 401: missing, malformed, unknown, revoked or expired
 * credential, tampered or expired token. 403: a publishable key or token used from an origin it is not bound to.
 * Error messages never contain the credential. Running it twice is harmless: a set principal is kept.
 */
export function authenticate(options: AuthenticateOptions = {}): MiddlewareHandler<{ Bindings: AuthBindings }> {
  const cacheTtl = options.cacheTtl ?? 60;
  if (cacheTtl !== 0 && cacheTtl < 30)
    throw new Error(`authenticate: cacheTtl must be 0 or at least 30 seconds, got ${cacheTtl}`);
  const realm = (options.realm ?? 'sd-edge').replace(/[\\"]/g, '\\$&');
  const keysOf = options.keys ?? ((c: AuthContext) => kvStore(c.env.KEYS, cacheTtl ? { cacheTtl } : {}));
  const secretOf = options.tokenSigningSecret ?? ((c: AuthContext) => c.env.TOKEN_SIGNING_SECRET);
  const now = options.now ?? Date.now;
  const remembered = new Map<string, { record: KeyRecord; until: number }>();

  /** A key record from this isolate's memory, or from the store (and then remembered; unknown ids are not). */
  async function keyRecord(c: AuthContext, id: string): Promise<KeyRecord | null> {
    if (cacheTtl === 0) return getKeyRecord(keysOf(c), id);
    const t = now();
    const known = remembered.get(id);
    if (known && known.until > t) return known.record;
    const record = await getKeyRecord(keysOf(c), id);
    if (!record) {
      remembered.delete(id);
      return null;
    }
    if (remembered.size >= KEY_MEMORY_MAX) remembered.clear();
    remembered.set(id, { record, until: t + KEY_MEMORY_TTL_MS });
    return record;
  }

  const unauthorized = (message: string, error = 'invalid_token') =>
    httpError('unauthorized', message, { 'WWW-Authenticate': `Bearer realm="${realm}", error="${error}"` });
  const forbidden = (message: string) => httpError('forbidden', message);

  /** The request's Origin, normalized, or null when absent or not a valid origin. */
  const requestOrigin = (c: AuthContext): string | null => {
    const origin = c.req.header('Origin');
    if (!origin || origin === 'null') return null;
    try {
      return normalizeOrigin(origin);
    } catch {
      return null;
    }
  };

  const checkActive = (record: KeyRecord, what: string) => {
    const status = keyStatus(record, now());
    if (status === 'revoked') throw unauthorized(`${what} was revoked at ${record.revokedAt}`);
    if (status === 'expired') throw unauthorized(`${what} expired at ${record.expiresAt}`);
  };

  async function fromApiKey(c: AuthContext, credential: string): Promise<Principal> {
    const parsed = parseApiKey(credential);
    if (!parsed) throw unauthorized('malformed API key: expected sk_<id>_<secret> or pk_<id>_<secret>');
    const record = await keyRecord(c, parsed.id);
    const hash = await hashApiKey(credential);
    const matches = timingSafeEqual(hash, record?.hash ?? NO_SUCH_HASH);
    // Revocation and expiry are only told to whoever holds the real secret.
    if (!record || !matches || record.kind !== parsed.kind) throw unauthorized('invalid API key');
    checkActive(record, 'API key');
    if (record.kind === 'secret') {
      return { keyId: record.id, kind: 'secret', scopes: record.scopes, limits: record.limits };
    }
    const origin = requestOrigin(c);
    if (!origin) throw forbidden('a publishable key is only accepted with an Origin header from one of its listed origins');
    if (!record.origins.includes(origin)) throw forbidden(`origin ${origin} is not allowed for this publishable key`);
    const scopes = record.scopes.filter((s) => DEFAULT_SCOPES.publishable.includes(s));
    return { keyId: record.id, kind: 'publishable', scopes, origin, limits: record.limits };
  }

  async function fromUserToken(c: AuthContext, credential: string): Promise<Principal> {
    const secret = secretOf(c);
    if (!secret) throw unauthorized('user tokens are not enabled on this deployment (TOKEN_SIGNING_SECRET is not set)');
    const verified = await verifyUserToken(credential, secret, { now: now() });
    if (!verified.ok) throw unauthorized(verified.message);
    const claims = verified.claims;
    if (claims.kind === 'visitor') return fromVisitorToken(c, claims);
    const issuer = await keyRecord(c, claims.iss);
    if (issuer?.kind !== 'secret') throw unauthorized('user token issuer is not a valid secret key');
    checkActive(issuer, 'user token issuer key');
    if (!issuer.scopes.includes('tokens:write')) throw forbidden('user token issuer key lacks scope tokens:write');
    const origin = requestOrigin(c);
    if (!origin) throw forbidden(`user token is bound to origin ${claims.aud}; the request has no Origin header`);
    if (origin !== claims.aud) throw forbidden(`user token audience ${claims.aud} does not match Origin ${origin}`);
    const limits = { ...issuer.limits };
    if (claims.max_steps !== undefined) limits.maxSteps = Math.min(claims.max_steps, limits.maxSteps ?? claims.max_steps);
    if (claims.max_outputs !== undefined)
      limits.maxOutputs = Math.min(claims.max_outputs, limits.maxOutputs ?? claims.max_outputs);
    if (claims.model !== undefined) {
      if (limits.models && !limits.models.includes(claims.model)) {
        throw forbidden(`user token model ${claims.model} is not allowed for its issuer key`);
      }
      limits.models = [claims.model];
    }
    const scopes = issuer.scopes.filter((s) => TOKEN_SCOPES.includes(s));
    return { keyId: issuer.id, kind: 'token', scopes, origin, subject: claims.sub, limits };
  }

  /** A page's visitor token: its publishable key must still be active and still list the page's origin. */
  async function fromVisitorToken(c: AuthContext, claims: UserTokenClaims): Promise<Principal> {
    const issuer = await keyRecord(c, claims.iss);
    if (issuer?.kind !== 'publishable') throw unauthorized('visitor token issuer is not a valid publishable key');
    checkActive(issuer, 'visitor token issuer key');
    const origin = requestOrigin(c);
    if (!origin) throw forbidden(`visitor token is bound to origin ${claims.aud}; the request has no Origin header`);
    if (origin !== claims.aud) throw forbidden(`visitor token audience ${claims.aud} does not match Origin ${origin}`);
    if (!issuer.origins.includes(origin)) throw forbidden(`origin ${origin} is not allowed for this publishable key`);
    const scopes = issuer.scopes.filter((s) => DEFAULT_SCOPES.publishable.includes(s));
    return { keyId: issuer.id, kind: 'visitor', scopes, origin, subject: claims.sub, limits: issuer.limits };
  }

  return async function authenticate(c, next) {
    if (c.get('principal')) return next();
    const header = c.req.header('Authorization');
    if (!header) {
      throw unauthorized('missing Authorization header: send "Authorization: Bearer <API key or user token>"', 'invalid_request');
    }
    const m = /^(Bearer|Token|Basic)\s+(\S+)\s*$/i.exec(header);
    if (!m) throw unauthorized('Authorization header must be "Bearer <API key or user token>"', 'invalid_request');
    const credential = m[1].toLowerCase() === 'basic' ? basicCredential(m[2]) : m[2];
    if (credential === null) {
      throw unauthorized('Basic credentials must be base64 of "user:<API key>" (the key as the password)', 'invalid_request');
    }
    let principal: Principal;
    if (looksLikeApiKey(credential)) principal = await fromApiKey(c, credential);
    else if (looksLikeUserToken(credential)) principal = await fromUserToken(c, credential);
    else throw unauthorized('unrecognized credential: expected an sk_ or pk_ API key or a user token');
    c.set('principal', principal);
    await next();
  };
}

/**
 * The credential inside `Basic base64(user:password)`: AUTOMATIC1111's clients (Open WebUI, SillyTavern) only send
 * HTTP Basic (A1111's --api-auth). The key is the password; a key given as the user name with any password works too.
 */
function basicCredential(encoded: string): string | null {
  let decoded: string;
  try {
    decoded = atob(encoded);
  } catch {
    return null;
  }
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  const user = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  if (looksLikeApiKey(password) || looksLikeUserToken(password)) return password;
  if (looksLikeApiKey(user) || looksLikeUserToken(user)) return user;
  return password || null;
}

/** 403 unless the authenticated principal has `scope`. Must run after authenticate(). */
export function requireScope(scope: Scope): MiddlewareHandler {
  return async function requireScope(c, next) {
    const principal = c.get('principal');
    if (!principal) throw new Error('requireScope() ran before authenticate(): no principal on the context');
    if (principal.kind === 'publishable' && scope.startsWith('predictions:')) {
      // Every visitor of a page shares the pk_ key: predictions are owned per visitor, through a visitor token.
      throw httpError(
        'forbidden',
        'a publishable key cannot use this route directly: get a visitor token with POST /v1/visitor-tokens (same key and Origin) and send it as the Bearer credential',
      );
    }
    if (!principal.scopes.includes(scope)) {
      const has = principal.scopes.length ? principal.scopes.join(', ') : 'none';
      throw httpError('forbidden', `this route needs scope ${scope}; the ${principal.kind} credential has: ${has}`);
    }
    await next();
  };
}
