// Short-lived user tokens: compact JWS (HS256, Web Crypto) that a customer's backend obtains for one of its users.
// Each issuing key signs with its own HMAC key, derived from the deployment's TOKEN_SIGNING_SECRET and the key id.
import { base64ToBytes, bytesToBase64 } from '@sd/shared/base64';

/** Longest lifetime a token may claim; a longer `exp` is refused even if correctly signed. */
export const MAX_TOKEN_TTL_SECONDS = 3600;
export const DEFAULT_TOKEN_TTL_SECONDS = 600;
/** Clock skew tolerated between the minting backend and the edge. */
const CLOCK_SKEW_SECONDS = 30;

export interface UserTokenClaims {
  /** The issuing secret key's id. */
  iss: string;
  /** The customer's own user id (opaque to us). */
  sub: string;
  /** The origin of the page the token is for: requests must carry exactly this `Origin`. */
  aud: string;
  /** Seconds since the epoch. */
  iat: number;
  exp: number;
  model?: string;
  max_steps?: number;
  max_outputs?: number;
  /** "visitor": a page's own token, minted with a publishable key (`sub` is a random visitor id). Absent: a user token. */
  kind?: 'visitor';
}

export interface MintUserTokenOptions {
  /** The deployment's TOKEN_SIGNING_SECRET. */
  signingSecret: string;
  keyId: string;
  subject: string;
  audience: string;
  model?: string;
  maxSteps?: number;
  maxOutputs?: number;
  ttlSeconds?: number;
  /** Milliseconds since the epoch (tests). */
  now?: number;
  /** A visitor token (issuer: a publishable key) instead of a user token (issuer: a secret key). */
  visitor?: boolean;
}

export type UserTokenVerification =
  | { ok: true; claims: UserTokenClaims }
  | { ok: false; reason: 'malformed' | 'signature' | 'expired' | 'lifetime'; message: string };

const encoder = new TextEncoder();

function base64url(bytes: Uint8Array): string {
  return bytesToBase64(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function jsonPart(value: unknown): string {
  return base64url(encoder.encode(JSON.stringify(value)));
}

/**
 * HMAC-SHA256(TOKEN_SIGNING_SECRET, "sd-user-token:v1:" + keyId) as an HMAC key: a token names its issuer, and a
 * token signed for one key cannot be replayed as another's. Rotating TOKEN_SIGNING_SECRET voids every token.
 * Visitor tokens use "sd-visitor-token:v1:", so neither kind of token can pass as the other.
 */
async function tokenKey(signingSecret: string, keyId: string, visitor: boolean): Promise<CryptoKey> {
  const root = await crypto.subtle.importKey('raw', encoder.encode(signingSecret), { name: 'HMAC', hash: 'SHA-256' }, false, [
    'sign',
  ]);
  const purpose = visitor ? 'sd-visitor-token' : 'sd-user-token';
  const derived = await crypto.subtle.sign('HMAC', root, encoder.encode(`${purpose}:v1:${keyId}`));
  return crypto.subtle.importKey('raw', derived, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
}

/** Mints a token (Node 20+ and workerd: Web Crypto only). Throws when an option is out of range. */
export async function mintUserToken(options: MintUserTokenOptions): Promise<{ token: string; claims: UserTokenClaims }> {
  const ttl = options.ttlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS;
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TOKEN_TTL_SECONDS) {
    throw new RangeError(`ttlSeconds must be an integer between 1 and ${MAX_TOKEN_TTL_SECONDS}, got ${ttl}`);
  }
  if (!options.signingSecret) throw new Error('signingSecret is empty: set TOKEN_SIGNING_SECRET');
  if (!options.subject) throw new Error('subject must be a non-empty string');
  const iat = Math.floor((options.now ?? Date.now()) / 1000);
  const claims: UserTokenClaims = {
    iss: options.keyId,
    sub: options.subject,
    aud: options.audience,
    iat,
    exp: iat + ttl,
    ...(options.model !== undefined ? { model: options.model } : {}),
    ...(options.maxSteps !== undefined ? { max_steps: options.maxSteps } : {}),
    ...(options.maxOutputs !== undefined ? { max_outputs: options.maxOutputs } : {}),
    ...(options.visitor ? { kind: 'visitor' as const } : {}),
  };
  const signingInput = `${jsonPart({ alg: 'HS256', typ: 'JWT', kid: options.keyId })}.${jsonPart(claims)}`;
  const mac = await crypto.subtle.sign(
    'HMAC',
    await tokenKey(options.signingSecret, options.keyId, options.visitor === true),
    encoder.encode(signingInput),
  );
  return { token: `${signingInput}.${base64url(new Uint8Array(mac))}`, claims };
}

/** Three base64url parts separated by dots: what distinguishes a token from an sk_/pk_ key in a header. */
export function looksLikeUserToken(text: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(text);
}

function decodeJson(part: string): unknown {
  return JSON.parse(new TextDecoder().decode(base64ToBytes(part)));
}

function parseClaims(value: unknown): UserTokenClaims | null {
  if (typeof value !== 'object' || value === null) return null;
  const c = value as Record<string, unknown>;
  const isPositiveInt = (x: unknown) => x === undefined || (Number.isInteger(x) && (x as number) > 0);
  if (typeof c.iss !== 'string' || typeof c.sub !== 'string' || typeof c.aud !== 'string') return null;
  if (!Number.isInteger(c.iat) || !Number.isInteger(c.exp)) return null;
  if (c.model !== undefined && typeof c.model !== 'string') return null;
  if (!isPositiveInt(c.max_steps) || !isPositiveInt(c.max_outputs)) return null;
  if (c.kind !== undefined && c.kind !== 'visitor') return null;
  return c as unknown as UserTokenClaims;
}

/**
 * Checks the signature (crypto.subtle.verify: constant time), then expiry and lifetime. The audience is left to the
 * caller, which knows the request's Origin. Claims are only read for the issuer id before the signature is checked.
 */
export async function verifyUserToken(
  token: string,
  signingSecret: string,
  { now = Date.now(), expiredGraceSeconds = 0 }: { now?: number; expiredGraceSeconds?: number } = {},
): Promise<UserTokenVerification> {
  const parts = token.split('.');
  if (parts.length !== 3 || !looksLikeUserToken(token)) {
    return { ok: false, reason: 'malformed', message: 'user token is malformed: expected header.payload.signature' };
  }
  let header: unknown;
  let claims: UserTokenClaims | null;
  let signature: Uint8Array;
  try {
    header = decodeJson(parts[0]);
    claims = parseClaims(decodeJson(parts[1]));
    signature = base64ToBytes(parts[2]);
  } catch {
    return { ok: false, reason: 'malformed', message: 'user token is malformed: a part is not base64url JSON' };
  }
  // Only HS256: never let the token pick its own algorithm ("alg": "none" and friends).
  if (typeof header !== 'object' || header === null || (header as { alg?: unknown }).alg !== 'HS256' || !claims) {
    return {
      ok: false,
      reason: 'malformed',
      message: 'user token is malformed: expected an HS256 header and iss, sub, aud, iat, exp claims',
    };
  }
  // The claimed kind only picks the key: a forged kind fails the signature check.
  const key = await tokenKey(signingSecret, claims.iss, claims.kind === 'visitor');
  const valid = await crypto.subtle.verify('HMAC', key, signature, encoder.encode(`${parts[0]}.${parts[1]}`));
  if (!valid) return { ok: false, reason: 'signature', message: 'user token signature is invalid' };
  const nowSeconds = Math.floor(now / 1000);
  if (claims.exp <= nowSeconds - CLOCK_SKEW_SECONDS - expiredGraceSeconds) {
    return { ok: false, reason: 'expired', message: `user token expired at ${new Date(claims.exp * 1000).toISOString()}` };
  }
  // Both bounds: a far-future iat must not stretch a token's life past the maximum from now.
  const limit = MAX_TOKEN_TTL_SECONDS + CLOCK_SKEW_SECONDS;
  if (claims.exp - claims.iat > limit || claims.exp - nowSeconds > limit) {
    return {
      ok: false,
      reason: 'lifetime',
      message: `user token lifetime exceeds the maximum of ${MAX_TOKEN_TTL_SECONDS} seconds`,
    };
  }
  return { ok: true, claims };
}
