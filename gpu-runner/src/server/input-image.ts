// Loads an input image (img2img source or inpainting mask) named by the request: a data URI is decoded in place,
// an https URL is fetched with a timeout and a size cap, so a slow or huge remote file cannot stall a GPU slot.
// URLs that name or resolve to loopback, private or link-local addresses are refused (SSRF) unless allowed.
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { base64ToBytes } from '@sd/shared/base64';

export interface InputImageLimits {
  maxBytes: number;
  timeoutMs: number;
  /** Skip the SSRF guard (ALLOW_PRIVATE_IMAGE_URLS; tests and private deployments). */
  allowPrivateAddresses?: boolean;
  /** Every address a host name resolves to (DNS by default; injectable for tests). */
  resolveHost?: (host: string) => Promise<string[]>;
}

const DATA_URI = /^data:[^;,]+;base64,(.*)$/s;
const MAX_REDIRECTS = 5;

/** Where a request from inside the runner's network must not go: its own host, the VPC, the cloud metadata service. */
const PRIVATE_RANGES = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['224.0.0.0', 3],
] as const) {
  PRIVATE_RANGES.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  PRIVATE_RANGES.addSubnet(net, prefix, 'ipv6');
}

/** True for loopback, private, link-local, CGNAT, multicast and unspecified addresses (IPv4-mapped IPv6 included). */
export function isPrivateAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, '');
  const family = isIP(bare);
  if (family === 4) return PRIVATE_RANGES.check(bare, 'ipv4');
  if (family !== 6) return false;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  if (mapped) return PRIVATE_RANGES.check(mapped[1], 'ipv4');
  return PRIVATE_RANGES.check(bare, 'ipv6');
}

/**
 * Checks an image reference that needs no network: an https URL whose host is a literal private address or a
 * localhost name is refused here (422 at the entrance); names that resolve to one are caught when fetched.
 */
export function privateUrlProblem(field: string, ref: string): string | null {
  if (ref.startsWith('data:')) return null;
  let url: URL;
  try {
    url = new URL(ref);
  } catch {
    return null; // the schema reports malformed URLs
  }
  const host = url.hostname.toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost') || isPrivateAddress(host)) {
    return `${field} must not point to a loopback, private or link-local address (ALLOW_PRIVATE_IMAGE_URLS is off), got host ${host}`;
  }
  return null;
}

async function dnsAddresses(host: string): Promise<string[]> {
  return (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
}

async function checkHost(field: string, url: URL, limits: InputImageLimits): Promise<void> {
  if (limits.allowPrivateAddresses) return;
  const literal = privateUrlProblem(field, url.href);
  if (literal) throw new Error(literal);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host)) return;
  let addresses: string[];
  try {
    addresses = await (limits.resolveHost ?? dnsAddresses)(host);
  } catch (err) {
    throw new Error(
      `${field} host ${host} could not be resolved: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  const bad = addresses.find(isPrivateAddress);
  if (bad) {
    throw new Error(
      `${field} must not point to a loopback, private or link-local address (ALLOW_PRIVATE_IMAGE_URLS is off), ${host} resolves to ${bad}`,
    );
  }
}

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
    let bytes: Uint8Array;
    try {
      bytes = base64ToBytes(data[1].replace(/\s+/g, ''));
    } catch (err) {
      throw new Error(`${field} data URI is not valid base64: ${(err as Error).message}`);
    }
    if (bytes.byteLength > limits.maxBytes)
      throw new Error(`${field} must be at most ${limits.maxBytes} bytes, got ${bytes.byteLength}`);
    return bytes;
  }
  let url = new URL(ref);
  const timeout = AbortSignal.timeout(limits.timeoutMs);
  const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
  let response: Response;
  // Redirects are followed by hand so every hop passes the same https and address checks.
  for (let hop = 0; ; hop++) {
    if (url.protocol !== 'https:') throw new Error(`${field} must be an https URL or a data URI, got ${url.protocol} URL`);
    await checkHost(field, url, limits);
    try {
      response = await fetchImpl(url, { signal: combined, redirect: 'manual' });
    } catch (err) {
      if (timeout.aborted) throw new Error(`${field} could not be fetched within ${limits.timeoutMs} ms from ${url.host}`);
      throw new Error(`${field} could not be fetched from ${url.host}: ${(err as Error).message}`);
    }
    const location = response.headers.get('location');
    if (response.status < 300 || response.status >= 400 || !location) break;
    await response.body?.cancel();
    if (hop >= MAX_REDIRECTS)
      throw new Error(`${field} could not be fetched from ${url.host}: more than ${MAX_REDIRECTS} redirects`);
    url = new URL(location, url);
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
