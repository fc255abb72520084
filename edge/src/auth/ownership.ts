// Who owns a prediction, and who may see it. A prediction belongs to its API key and, below the key, to one end user:
// the `sub` of a user token ("u:<sub>") or the visitor of a page with a publishable key ("v:<visitor id>"). The key's
// secret holder sees every prediction of its key; an end user sees only their own.
import type { Principal } from './principal.ts';

export interface Owner {
  keyId: string;
  /** null: made with the secret key itself. */
  subject: string | null;
}

/** The end user a principal stands for below its key, or null for the secret key itself. */
export function subjectOf(principal: Principal): string | null {
  if (principal.kind === 'secret') return null;
  if (principal.kind === 'token' && principal.subject) return `u:${principal.subject}`;
  if (principal.kind === 'visitor' && principal.subject) return `v:${principal.subject}`;
  // A publishable key without a visitor identity owns nothing it could read back: fail closed.
  throw new Error(`a ${principal.kind} credential has no end-user identity to own predictions with`);
}

export function ownerOf(principal: Principal): Owner {
  return { keyId: principal.keyId, subject: subjectOf(principal) };
}

/** May `principal` read, stream or cancel a prediction owned by `owner`? */
export function canAccess(principal: Principal, owner: Owner): boolean {
  if (owner.keyId !== principal.keyId) return false;
  if (principal.kind === 'secret') return true;
  if (principal.kind === 'publishable') return false;
  return owner.subject !== null && owner.subject === subjectOf(principal);
}

/**
 * The folder a caller's uploaded files live in: the key's own for its secret holder, one per end user otherwise, so a
 * visitor of a page neither lists nor reads another visitor's uploads. ("/" cannot occur in a key id.)
 */
export function fileScopeOf(principal: Principal): string {
  const subject = subjectOf(principal);
  return subject === null ? principal.keyId : `${principal.keyId}:${encodeURIComponent(subject)}`;
}
