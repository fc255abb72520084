// Loads an input image (img2img source or inpainting mask) named by the request: a data URI is decoded in place,
// an https URL is fetched with a timeout and a size cap, so a slow or huge remote file cannot stall a GPU slot.
import { base64ToBytes } from '@sd/shared/base64';

export interface InputImageLimits {
  maxBytes: number;
  timeoutMs: number;
}

const DATA_URI = /^data:[^;,]+;base64,(.*)$/s;

/** The image bytes behind `ref` (field names the input field, for the error messages). */
export async function loadInputImage(
  field: string,
  ref: string,
  limits: InputImageLimits,
  signal?: AbortSignal,
  fetchImpl: typeof fetch = fetch,
): Promise<Uint8Array> {
  const data = DATA_URI.exec(ref);
  if (data) {
    const bytes = base64ToBytes(data[1].replace(/\s+/g, ''));
    if (bytes.byteLength > limits.maxBytes) throw new Error(`${field} must be at most ${limits.maxBytes} bytes, got ${bytes.byteLength}`);
    return bytes;
  }
  const url = new URL(ref);
  if (url.protocol !== 'https:') throw new Error(`${field} must be an https URL or a data URI, got ${url.protocol} URL`);
  const timeout = AbortSignal.timeout(limits.timeoutMs);
  const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
  let response: Response;
  try {
    response = await fetchImpl(url, { signal: combined, redirect: 'follow' });
  } catch (err) {
    if (timeout.aborted) throw new Error(`${field} could not be fetched within ${limits.timeoutMs} ms from ${url.host}`);
    throw new Error(`${field} could not be fetched from ${url.host}: ${(err as Error).message}`);
  }
  if (!response.ok) throw new Error(`${field} could not be fetched from ${url.host}: HTTP ${response.status}`);
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (declared > limits.maxBytes) {
    await response.body?.cancel();
    throw new Error(`${field} must be at most ${limits.maxBytes} bytes, got ${declared} (content-length)`);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = response.body?.getReader();
  if (!reader) throw new Error(`${field} response from ${url.host} has no body`);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > limits.maxBytes) {
        await reader.cancel();
        throw new Error(`${field} must be at most ${limits.maxBytes} bytes, got more than that from ${url.host}`);
      }
      chunks.push(value);
    }
  } catch (err) {
    if (timeout.aborted) throw new Error(`${field} could not be fetched within ${limits.timeoutMs} ms from ${url.host}`);
    throw err;
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out;
}
