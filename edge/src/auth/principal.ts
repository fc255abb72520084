// Who is calling: the identity and limits that authenticate() derives from an API key or a user token.
import type { KeyLimits, Scope } from './key-format.ts';

export type PrincipalKind = 'secret' | 'publishable' | 'token';

export type PrincipalLimits = KeyLimits;

export interface Principal {
  /** The API key's id; for a user token, the id of the secret key that issued it (limits and ownership go there). */
  keyId: string;
  kind: PrincipalKind;
  scopes: Scope[];
  /** The verified request Origin (publishable keys and user tokens). */
  origin?: string;
  /** A user token's `sub`: the customer's own user. */
  subject?: string;
  limits: PrincipalLimits;
}
