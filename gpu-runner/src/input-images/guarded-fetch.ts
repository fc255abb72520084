// Outbound HTTP on a caller's behalf that cannot be pointed inside the network: the host is resolved once, at
// connect time, every address it resolves to is checked against the shared address policy, and the socket connects
// to a checked address (no second lookup a DNS rebinding could answer differently). Redirects are followed by hand,
// each hop checked again, with a cap.
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import { checkAddress, checkHost, describeBlock } from '@sd/shared/net/address-policy';
import { Agent, fetch as undiciFetch } from 'undici';

/** Every address a name resolves to (DNS by default; injectable for tests, which have no DNS). */
export type ResolveHost = (host: string) => Promise<string[]>;

/** A URL or a resolved address the policy refuses; its message names the host the caller gave, never an address it resolved to. */
export class BlockedDestinationError extends Error {
  override name = 'BlockedDestinationError';
  readonly code = 'EBLOCKEDDESTINATION';
}

export interface GuardedFetchOptions {
  /** Skip every address check (ALLOW_PRIVATE_IMAGE_URLS: tests and private deployments). */
  allowPrivate?: boolean;
  resolveHost?: ResolveHost;
  /** Redirects followed before giving up (default 5). */
  maxRedirects?: number;
  /** URL schemes allowed on every hop (default https only). */
  protocols?: readonly string[];
  /** Which addresses are refused; the shared policy by default (a test may stand in loopback for "public"). */
  isBlocked?: (address: string) => string | null;
}

const defaultIsBlocked = (address: string): string | null => {
  const verdict = checkAddress(address);
  // A resolver answer that is no address at all is refused too: nothing to check means nothing to trust.
  if (!verdict) return 'not an IP address';
  return verdict.blocked ? describeBlock(verdict) : null;
};

const dnsResolve: ResolveHost = (host) =>
  new Promise((resolve, reject) =>
    dnsLookup(host, { all: true, verbatim: true }, (err, addresses: LookupAddress[]) =>
      err ? reject(err) : resolve(addresses.map((a) => a.address)),
    ),
  );

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * An undici Agent whose connect-time lookup resolves the name once, refuses it if ANY address is blocked (a name
 * that answers one public and one private address is not trusted), and hands net.connect the checked addresses.
 * Literal IP hosts never reach a lookup (net connects to them directly): guardedFetch checks those per hop.
 */
export function createGuardedAgent(options: GuardedFetchOptions = {}): Agent {
  const resolveHost = options.resolveHost ?? dnsResolve;
  const isBlocked = options.isBlocked ?? defaultIsBlocked;
  const lookup = (hostname: string, lookupOptions: { all?: boolean }, callback: LookupCallback): void => {
    resolveHost(hostname).then(
      (addresses) => {
        if (addresses.length === 0) {
          callback(Object.assign(new Error(`host ${hostname} has no addresses`), { code: 'ENOTFOUND' }), []);
          return;
        }
        if (!options.allowPrivate) {
          for (const address of addresses) {
            const reason = isBlocked(address);
            if (reason) {
              callback(new BlockedDestinationError(`host ${hostname} resolves to a blocked address (${reason})`), []);
              return;
            }
          }
        }
        const entries = addresses.map((address) => ({ address, family: isIP(address) === 6 ? 6 : 4 }));
        if (lookupOptions.all) callback(null, entries);
        else callback(null, entries[0].address, entries[0].family);
      },
      (err: NodeJS.ErrnoException) => callback(err, []),
    );
  };
  return new Agent({ connect: { lookup } });
}

/** Why a URL host is refused as written: an IP literal the policy blocks, or an internal name (null if neither). */
function literalHostProblem(hostname: string, isBlocked: (address: string) => string | null): string | null {
  if (checkAddress(hostname)) return isBlocked(hostname);
  const verdict = checkHost(hostname);
  return verdict.blocked ? describeBlock(verdict) : null;
}

/** The host of a URL as the caller wrote it (brackets kept for IPv6), for messages. */
function hostOf(url: URL): string {
  return url.host;
}

/**
 * Fetches `input` through `agent` with redirects followed by hand: every hop must use an allowed scheme and pass the
 * literal-host policy before it is requested, and its name is checked at connect time by the agent. Returns the
 * final response. Failures are BlockedDestinationError (policy) or an Error whose message carries an error code,
 * never the resolver's addresses or the network's own wording (which names internal addresses).
 */
export async function guardedFetch(
  input: string | URL,
  init: { signal?: AbortSignal; headers?: Record<string, string>; method?: string },
  agent: Agent,
  options: GuardedFetchOptions = {},
): Promise<{ response: Response; url: URL; redirects: number }> {
  const protocols = options.protocols ?? ['https:'];
  const maxRedirects = options.maxRedirects ?? 5;
  const first = new URL(input);
  let url = first;
  for (let hop = 0; ; hop++) {
    if (!protocols.includes(url.protocol)) {
      throw new BlockedDestinationError(
        `${hop > 0 ? `a redirect from ${hostOf(first)} leads to` : 'got'} a ${url.protocol} URL; allowed: ${protocols.join(', ')}`,
      );
    }
    const reason = options.allowPrivate ? null : literalHostProblem(url.hostname, options.isBlocked ?? defaultIsBlocked);
    if (reason) {
      const where = hop > 0 ? `a redirect from ${hostOf(first)} leads to a blocked host` : `host ${hostOf(url)} is blocked`;
      throw new BlockedDestinationError(`${where} (${reason})`);
    }
    let response: Response;
    try {
      // undici's fetch and Response are the engine of Node's own: the types differ only in name.
      response = (await undiciFetch(url, { ...init, redirect: 'manual', dispatcher: agent })) as unknown as Response;
    } catch (err) {
      throw fetchFailure(err, first, hop);
    }
    const location = response.headers.get('location');
    if (response.status < 300 || response.status >= 400 || !location) return { response, url, redirects: hop };
    await response.body?.cancel();
    if (hop >= maxRedirects) throw new Error(`more than ${maxRedirects} redirects from ${hostOf(first)}`);
    url = new URL(location, url);
  }
}

function fetchFailure(err: unknown, first: URL, hop: number): Error {
  const cause = (err as { cause?: unknown }).cause ?? err;
  if (cause instanceof BlockedDestinationError) {
    return hop > 0 ? new BlockedDestinationError(`a redirect from ${hostOf(first)}: ${cause.message}`) : cause;
  }
  if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')) return err;
  // Node's messages ("connect ECONNREFUSED 10.0.0.7:443") name the address a name resolved to: keep the code only.
  const code = (cause as { code?: string }).code ?? (cause instanceof Error ? cause.name : 'error');
  const after = hop > 0 ? ` after ${hop} redirect(s)` : '';
  return Object.assign(new Error(`connection to ${hostOf(first)}${after} failed (${code})`), { code });
}
