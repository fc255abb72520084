// Reads a JSON request body with a size cap, as text too (idempotency hashes and webhook signatures need the exact bytes).
import { DomainError, invalidInput } from '../errors.ts';

export const MAX_BODY_BYTES = 16 * 1024 * 1024;

export async function readJsonBody(request: Request, maxBytes = MAX_BODY_BYTES): Promise<{ text: string; json: unknown }> {
  const declared = Number(request.headers.get('content-length') ?? '0');
  if (declared > maxBytes) throw new DomainError('payload_too_large', `request body must be at most ${maxBytes} bytes, got ${declared}`);
  const text = await request.text();
  if (text.length > maxBytes) throw new DomainError('payload_too_large', `request body must be at most ${maxBytes} bytes, got ${text.length}`);
  try {
    return { text, json: JSON.parse(text) };
  } catch {
    throw invalidInput('(body)', `body must be JSON, got ${JSON.stringify(text.slice(0, 40))}`);
  }
}
