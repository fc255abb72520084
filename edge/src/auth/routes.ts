// POST /v1/tokens: a customer's backend (secret key with scope tokens:write) mints a short-lived user token.
// The core app mounts this sub-app; it authenticates by itself (a no-op when the app already did).
import { validationErrorBody } from '@sd/shared/schemas/errors';
import { Hono } from 'hono';
import { z } from 'zod';
import { type AuthBindings, type AuthenticateOptions, authenticate, requireScope } from './authenticate/index.ts';
import { httpError } from './http-error.ts';
import { normalizeOrigin } from './key-format.ts';
import { getKeyRecord, kvStore } from './key-store.ts';
import { DEFAULT_TOKEN_TTL_SECONDS, MAX_TOKEN_TTL_SECONDS, mintUserToken } from './user-token.ts';

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

/** Builds the sub-app; `options` are passed to its authenticate(). */
export function tokenRoutes(options: AuthenticateOptions = {}) {
  const app = new Hono<{ Bindings: AuthBindings }>();
  app.post('/v1/tokens', authenticate(options), requireScope('tokens:write'), async (c) => {
    const principal = c.get('principal');
    if (principal.kind !== 'secret')
      throw httpError(403, 'forbidden', `user tokens can only be minted with a secret key, not a ${principal.kind} credential`);
    const secret = options.tokenSigningSecret ? options.tokenSigningSecret(c) : c.env.TOKEN_SIGNING_SECRET;
    if (!secret)
      throw httpError(503, 'not_configured', 'user tokens are not enabled on this deployment (TOKEN_SIGNING_SECRET is not set)');

    let json: unknown;
    try {
      json = await c.req.json();
    } catch {
      throw httpError(400, 'invalid_json', 'request body must be JSON');
    }
    const parsed = CreateTokenRequestSchema.safeParse(json);
    if (!parsed.success) return c.json(validationErrorBody(parsed.error), 422);
    const body = parsed.data;

    let origin: string;
    try {
      origin = normalizeOrigin(body.origin);
    } catch (err) {
      throw httpError(422, 'invalid_input', `origin: ${(err as Error).message}`);
    }
    const issuer = await getKeyRecord(options.keys ? options.keys(c) : kvStore(c.env.KEYS), principal.keyId);
    if (issuer && issuer.origins.length > 0 && !issuer.origins.includes(origin)) {
      throw httpError(403, 'forbidden', `origin ${origin} is not among this key's token origins: ${issuer.origins.join(', ')}`);
    }
    const { limits } = principal;
    if (body.max_steps !== undefined && limits.maxSteps !== undefined && body.max_steps > limits.maxSteps) {
      throw httpError(422, 'invalid_input', `max_steps must be at most ${limits.maxSteps} for this key, got ${body.max_steps}`);
    }
    if (body.max_outputs !== undefined && limits.maxOutputs !== undefined && body.max_outputs > limits.maxOutputs) {
      throw httpError(
        422,
        'invalid_input',
        `max_outputs must be at most ${limits.maxOutputs} for this key, got ${body.max_outputs}`,
      );
    }
    if (body.model !== undefined && limits.models && !limits.models.includes(body.model)) {
      throw httpError(403, 'forbidden', `model ${body.model} is not allowed for this key`);
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
  return app;
}

/** The sub-app with default options (KEYS and TOKEN_SIGNING_SECRET bindings): `app.route('/', tokenApp)`. */
export const tokenApp = tokenRoutes();
