// Loads an input image (img2img source or inpainting mask) named by the request: a data URI is decoded in place, an
// output of this runner's own storage is read back through the storage (so a local stack's http://127.0.0.1 outputs
// work as inputs without opening the guard), any other URL must be https and is fetched with a timeout and a size cap,
// so a slow or huge remote file cannot stall a GPU slot.
// URLs that name or resolve to an internal address are refused (SSRF; the shared address policy, checked at connect
// time by guarded-fetch.ts) unless ALLOW_PRIVATE_IMAGE_URLS allows them. Messages name only the host the caller sent.

import { base64ToBytes } from '@sd/shared/base64';
import { errorMessage } from '@sd/shared/error-message';
import { urlHostProblem } from '@sd/shared/net/address-policy';
import { BlockedDestinationError, createGuardedAgent, guardedFetch, type ResolveHost } from './guarded-fetch.ts';

/** The runner's own output storage, as image loading sees it (storage/output-storage.ts implements it). */
export interface OwnOutputs {
  /** The key of one of its own outputs named by this URL, or null. */
  ownOutputKey(url: URL): string | null;
  /** Whether the URL still grants reading that output (its own signature, not expired; or a public URL). */
  grantsRead(url: URL, key: string): Promise<boolean>;
  readOutput(key: string, maxBytes: number, signal?: AbortSignal): Promise<Uint8Array>;
}

export interface InputImageLimits {
  maxBytes: number;
  /** Read URLs of these outputs through the storage; every other URL goes through the guard. */
  ownOutputs?: OwnOutputs;
  timeoutMs: number;
  /** Skip the SSRF guard (ALLOW_PRIVATE_IMAGE_URLS; tests and private deployments). */
  allowPrivateAddresses?: boolean;
  /** Every address a host name resolves to (DNS by default; injectable for tests). */
  resolveHost?: ResolveHost;
}

/**
 * How the bytes are fetched: the guarded fetch by default; a test may hand back canned responses. release() frees the
 * connection once the body is read (or abandoned).
 */
export type FetchImage = (
  url: URL,
  signal: AbortSignal,
) => Promise<{ response: Response; redirects: number; release?: () => void }>;

const DATA_URI = /^data:[^;,]+;base64,(.*)$/s;
const MAX_REDIRECTS = 5;

/**
 * Checks an image reference that needs no network: an URL whose host is a literal blocked address or an internal
 * name is refused here (422 at the entrance); names that resolve to one are caught when fetched.
 */
export function privateUrlProblem(field: string, ref: string, ownOutputs?: OwnOutputs): string | null {
  if (ref.startsWith('data:')) return null;
  let url: URL;
  try {
    url = new URL(ref);
  } catch {
    return null; // the schema reports malformed URLs
  }
  if (ownOutputs?.ownOutputKey(url)) return null;
  const problem = urlHostProblem(field, ref);
  return problem && `${problem}; ALLOW_PRIVATE_IMAGE_URLS is off`;
}

function guardedImageFetch(limits: InputImageLimits): FetchImage {
  return async (url, signal) => {
    const options = { allowPrivate: limits.allowPrivateAddresses, resolveHost: limits.resolveHost, maxRedirects: MAX_REDIRECTS };
    const agent = createGuardedAgent(options);
    try {
      const { response, redirects } = await guardedFetch(url, { signal }, agent, options);
      return { response, redirects, release: () => void agent.destroy() };
    } catch (err) {
      void agent.destroy();
      throw err;
    }
  };
}

/** The image bytes behind `ref` (field names the input field, for the error messages). */
export async function loadInputImage(
  field: string,
  ref: string,
  limits: InputImageLimits,
  signal?: AbortSignal,
  fetchImage?: FetchImage,
): Promise<Uint8Array> {
  const data = DATA_URI.exec(ref);
  if (data) return decodeDataUri(field, data[1], limits.maxBytes);
  const url = new URL(ref);
  const own = limits.ownOutputs;
  const ownKey = own?.ownOutputKey(url);
  if (own && ownKey) {
    if (await own.grantsRead(url, ownKey)) return own.readOutput(ownKey, limits.maxBytes, signal);
    // Not a URL this runner handed out (or one past its expiry): an https one goes to the network like any other, where
    // the bucket judges it; a loopback one has nothing else to go to.
    if (url.protocol !== 'https:') {
      throw new Error(
        `${field} names an output of this runner's bucket without a valid signature, or past its X-Amz-Expires: give the URL a prediction returned, while it is valid`,
      );
    }
  }
  // The messages name only what the caller sent (its host); never an address it resolved to or a redirect target.
  const from = url.host;
  if (url.protocol !== 'https:') throw new Error(`${field} must be an https URL or a data URI, got ${url.protocol} URL`);
  const timeout = AbortSignal.timeout(limits.timeoutMs);
  const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
  const timedOut = () => new Error(`${field} could not be fetched within ${limits.timeoutMs} ms from ${from}`);
  let fetched: Awaited<ReturnType<FetchImage>>;
  try {
    fetched = await (fetchImage ?? guardedImageFetch(limits))(url, combined);
  } catch (err) {
    if (timeout.aborted) throw timedOut();
    if (signal?.aborted) throw err;
    if (err instanceof BlockedDestinationError) {
      throw new Error(`${field} must not point to an internal address (ALLOW_PRIVATE_IMAGE_URLS is off): ${err.message}`);
    }
    throw new Error(`${field} could not be fetched from ${from}: ${errorMessage(err)}`);
  }
  try {
    return await readCappedBody(field, from, fetched.response, limits.maxBytes);
  } catch (err) {
    if (timeout.aborted) throw timedOut();
    throw err;
  } finally {
    fetched.release?.();
  }
}

function decodeDataUri(field: string, base64: string, maxBytes: number): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = base64ToBytes(base64.replace(/\s+/g, ''));
  } catch (err) {
    throw new Error(`${field} data URI is not valid base64: ${errorMessage(err)}`);
  }
  if (bytes.byteLength > maxBytes) throw new Error(`${field} must be at most ${maxBytes} bytes, got ${bytes.byteLength}`);
  return bytes;
}

/** The response's body, refused past maxBytes (declared or streamed); whatever is not read is dropped. */
async function readCappedBody(field: string, from: string, response: Response, maxBytes: number): Promise<Uint8Array> {
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  try {
    if (!response.ok) throw new Error(`${field} could not be fetched from ${from}: HTTP ${response.status}`);
    const declared = Number(response.headers.get('content-length') ?? Number.NaN);
    if (declared > maxBytes) throw new Error(`${field} must be at most ${maxBytes} bytes, got ${declared} (content-length)`);
    reader = response.body?.getReader();
    if (!reader) throw new Error(`${field} response from ${from} has no body`);
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel();
        throw new Error(`${field} must be at most ${maxBytes} bytes, got more than that from ${from}`);
      }
      chunks.push(value);
    }
    const out = new Uint8Array(total);
    let offset = 0;
    for (const chunk of chunks) {
      out.set(chunk, offset);
      offset += chunk.byteLength;
    }
    return out;
  } finally {
    // Whatever was not read (an early refusal) is dropped before the connection goes.
    await (reader ? reader.cancel() : response.body?.cancel())?.catch(() => {});
  }
}
