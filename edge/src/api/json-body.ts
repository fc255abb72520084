// Reads a JSON request body with a size cap, as text too (idempotency hashes and webhook signatures need the exact bytes).
import { DomainError, invalidInput } from '@sd/shared/domain-error';

/**
 * The largest request body: room for an image and a mask at the input limit (10 MiB each, base64 in JSON) and
 * for a runner's completed webhook carrying data-URL outputs.
 */
export const MAX_BODY_BYTES = 32 * 1024 * 1024;

/** application/json or a +json type; an absent Content-Type is tolerated (some webhook senders omit it). */
const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

export async function readJsonBody(request: Request, maxBytes = MAX_BODY_BYTES): Promise<{ text: string; json: unknown }> {
  const type = request.headers.get('content-type');
  if (type !== null && !JSON_TYPE.test(type.trim())) {
    const message = `Content-Type must be application/json, got ${JSON.stringify(type.slice(0, 100))}`;
    throw new DomainError('unsupported_media_type', message, [{ field: 'Content-Type', message }]);
  }
  const declared = Number(request.headers.get('content-length') ?? '0');
  if (declared > maxBytes)
    throw new DomainError('payload_too_large', `request body must be at most ${maxBytes} bytes, got ${declared}`);
  const text = await readCappedText(request, maxBytes);
  try {
    return { text, json: JSON.parse(text) };
  } catch {
    throw invalidInput('(body)', `body must be JSON, got ${JSON.stringify(text.slice(0, 40))}`);
  }
}

/** The body as text, reading no more than `maxBytes` of it (a chunked body declares no length): 413 past the cap. */
export async function readCappedText(request: Request, maxBytes: number): Promise<string> {
  if (!request.body) return '';
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new DomainError('payload_too_large', `request body must be at most ${maxBytes} bytes, got more`);
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return new TextDecoder().decode(all);
}
