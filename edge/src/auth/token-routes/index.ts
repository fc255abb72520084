// POST /v1/tokens: a customer's backend (secret key with scope tokens:write) mints a short-lived user token.
// POST /v1/visitor-tokens: a page with a publishable key gets a token for its visitor (its own predictions only).
// The core app mounts this sub-app; it authenticates by itself (a no-op when the app already did).
import { errorMessage } from '@sd/shared/error-message';
import { validationErrorBody } from '@sd/shared/schemas/errors';
import { Hono } from 'hono';
import { z } from 'zod';
import { type AuthBindings, type AuthenticateOptions, authenticate, requireScope } from '../authenticate/index.ts';
import { httpError } from '../http-error.ts';
import { normalizeOrigin } from '../key-format.ts';
import { getKeyRecord, kvStore } from '../key-store.ts';
import { DEFAULT_TOKEN_TTL_SECONDS, MAX_TOKEN_TTL_SECONDS, mintUserToken, verifyUserToken } from '../user-token.ts';

export const CreateTokenRequestSchema = z.strictObject({
  /** The customer's id for its user; shows up as the token's `sub`. */
  subject: z.string().min(1).max(256),
  /** The page origin the token will be used from, e.g. https://app.example.com. */
  origin: z.string(),
  model: z.string().min(1).optional(),
  max_steps: z.number().int().positive().optional(),
  max_outputs: z.number().int().positive().optional(),
  ttl_seconds: z.number().int().min(1).max(MAX_TOKEN_TTL_SECONDS).default(DEFAULT_TOKEN_TTL_SECONDS),
});

export const CreateTokenResponseSchema = z.object({
  token: z.string(),
  expires_at: z.iso.datetime(),
  claims: z.record(z.string(), z.unknown()),
});

export const CreateVisitorTokenRequestSchema = z.strictObject({
  /** The visitor's previous token (even expired, up to VISITOR_RENEWAL_SECONDS): renewing keeps the visitor id. */
  visitor_token: z.string().max(4096).optional(),
});

/** A visitor token lives an hour; an expired one can be renewed for a week, so a returning visitor keeps their work. */
export const VISITOR_TOKEN_TTL_SECONDS = 3600;
export const VISITOR_RENEWAL_SECONDS = 7 * 24 * 3600;

function newVisitorId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `vis_${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/** Builds the sub-app; `options` are passed to its authenticate(). */
export function tokenRoutes(options: AuthenticateOptions = {}) {
  const app = new Hono<{ Bindings: AuthBindings }>();
  app.post('/v1/tokens', authenticate(options), requireScope('tokens:write'), async (c) => {
    const principal = c.get('principal');
    if (principal.kind !== 'secret')
      throw httpError('forbidden', `user tokens can only be minted with a secret key, not a ${principal.kind} credential`);
    const secret = options.tokenSigningSecret ? options.tokenSigningSecret(c) : c.env.TOKEN_SIGNING_SECRET;
    if (!secret)
      throw httpError('not_configured', 'user tokens are not enabled on this deployment (TOKEN_SIGNING_SECRET is not set)');

    let json: unknown;
    try {
      json = await c.req.json();
    } catch {
      throw httpError('invalid_json', 'request body must be JSON');
    }
    const parsed = CreateTokenRequestSchema.safeParse(json);
    if (!parsed.success) return c.json(validationErrorBody(parsed.error), 422);
    const body = parsed.data;

    let origin: string;
    try {
      origin = normalizeOrigin(body.origin);
    } catch (err) {
      throw httpError('invalid_input', `origin: ${errorMessage(err)}`);
    }
    const issuer = await getKeyRecord(options.keys ? options.keys(c) : kvStore(c.env.KEYS), principal.keyId);
    if (issuer && issuer.origins.length > 0 && !issuer.origins.includes(origin)) {
      throw httpError('forbidden', `origin ${origin} is not among this key's token origins: ${issuer.origins.join(', ')}`);
    }
    const { limits } = principal;
    if (body.max_steps !== undefined && limits.maxSteps !== undefined && body.max_steps > limits.maxSteps) {
      throw httpError('invalid_input', `max_steps must be at most ${limits.maxSteps} for this key, got ${body.max_steps}`);
    }
    if (body.max_outputs !== undefined && limits.maxOutputs !== undefined && body.max_outputs > limits.maxOutputs) {
      throw httpError('invalid_input', `max_outputs must be at most ${limits.maxOutputs} for this key, got ${body.max_outputs}`);
    }
    if (body.model !== undefined && limits.models && !limits.models.includes(body.model)) {
      throw httpError('forbidden', `model ${body.model} is not allowed for this key`);
    }

    const { token, claims } = await mintUserToken({
      signingSecret: secret,
      keyId: principal.keyId,
      subject: body.subject,
      audience: origin,
      ttlSeconds: body.ttl_seconds,
      ...(body.model !== undefined ? { model: body.model } : {}),
      ...(body.max_steps !== undefined ? { maxSteps: body.max_steps } : {}),
      ...(body.max_outputs !== undefined ? { maxOutputs: body.max_outputs } : {}),
    });
    return c.json({ token, expires_at: new Date(claims.exp * 1000).toISOString(), claims }, 201);
  });

  app.post('/v1/visitor-tokens', authenticate(options), async (c) => {
    const principal = c.get('principal');
    if (principal.kind !== 'publishable' && principal.kind !== 'visitor') {
      throw httpError(
        'forbidden',
        `visitor tokens are minted with a publishable key (or renewed with a visitor token), not a ${principal.kind} credential`,
      );
    }
    const secret = options.tokenSigningSecret ? options.tokenSigningSecret(c) : c.env.TOKEN_SIGNING_SECRET;
    if (!secret)
      throw httpError('not_configured', 'visitor tokens are not enabled on this deployment (TOKEN_SIGNING_SECRET is not set)');
    const text = await c.req.text();
    let json: unknown = {};
    if (text.trim() !== '') {
      try {
        json = JSON.parse(text);
      } catch {
        throw httpError('invalid_json', 'request body must be JSON (or empty)');
      }
    }
    const parsed = CreateVisitorTokenRequestSchema.safeParse(json);
    if (!parsed.success) return c.json(validationErrorBody(parsed.error), 422);
    // The origin was verified by authenticate() against the key's origins.
    const origin = principal.origin as string;
    let subject = principal.kind === 'visitor' ? principal.subject : undefined;
    const previous = parsed.data.visitor_token;
    if (!subject && previous) {
      const verified = await verifyUserToken(previous, secret, { expiredGraceSeconds: VISITOR_RENEWAL_SECONDS });
      const claims = verified.ok ? verified.claims : null;
      if (claims?.kind !== 'visitor' || claims.iss !== principal.keyId || claims.aud !== origin) {
        throw httpError(
          'invalid_input',
          'visitor_token must be a visitor token this key issued for this origin in the last 7 days',
        );
      }
      subject = claims.sub;
    }
    subject ??= newVisitorId();
    const { token, claims } = await mintUserToken({
      signingSecret: secret,
      keyId: principal.keyId,
      subject,
      audience: origin,
      ttlSeconds: VISITOR_TOKEN_TTL_SECONDS,
      visitor: true,
    });
    return c.json({ token, visitor_id: subject, expires_at: new Date(claims.exp * 1000).toISOString() }, 201);
  });
  return app;
}

/** The sub-app with default options (KEYS and TOKEN_SIGNING_SECRET bindings): `app.route('/', tokenApp)`. */
export const tokenApp = tokenRoutes();
