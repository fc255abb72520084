// Who is calling: the identity and limits that authenticate() derives from an API key or a user token.
import type { KeyLimits, Scope } from './key-format.ts';

/**
 * secret: sk_ key. publishable: pk_ key sent from a listed page origin (it may only mint visitor tokens).
 * token: a user token minted by a customer's backend. visitor: a visitor token a page got for itself with a pk_ key.
 */
export type PrincipalKind = 'secret' | 'publishable' | 'token' | 'visitor';

export type PrincipalLimits = KeyLimits;

export interface Principal {
  /** The API key's id; for a user or visitor token, the id of the key that issued it (limits and ownership go there). */
  keyId: string;
  kind: PrincipalKind;
  scopes: Scope[];
  /** The verified request Origin (publishable keys and user tokens). */
  origin?: string;
  /** A user token's `sub` (the customer's own user) or a visitor token's visitor id. */
  subject?: string;
  limits: PrincipalLimits;
}
