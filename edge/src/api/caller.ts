// The authenticated caller as the routes see it: authenticate() (edge/src/auth/) sets c.var.principal.
import type { Context } from 'hono';
import type { Principal } from '../auth/principal.ts';

export type { Principal };

export function callerOf(c: Context): Principal {
  const principal = c.get('principal');
  // Reaching a route without a principal means the app was assembled without auth: fail closed.
  if (!principal) throw new Error('no principal on the request: the auth middleware is not mounted');
  return principal;
}
