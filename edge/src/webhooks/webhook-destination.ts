// Where a client webhook may be delivered (SSRF): the shared address policy on the URL's host as written, and, since
// workerd has no DNS API, on what a DNS-over-HTTPS resolver says a name resolves to when WEBHOOK_DNS_RESOLVER is set.
// Checked when the prediction is created (422 naming `webhook`) and again before every delivery.
import { errorMessage } from '@sd/shared/error-message';
import { checkAddress, describeBlock, urlHostProblem } from '@sd/shared/net/address-policy';

export interface WebhookPolicy {
  /** WEBHOOK_ALLOW_PRIVATE: skip every check (a local stack whose receiver listens on loopback). */
  allowPrivate: boolean;
  /** WEBHOOK_DNS_RESOLVER: a DoH endpoint answering application/dns-json (e.g. https://cloudflare-dns.com/dns-query). */
  dnsResolver?: string;
}

export type WebhookVerdict = { ok: true } | { ok: false; message: string; transient?: boolean };

const DNS_TYPES = { A: 1, AAAA: 28 } as const;
const DOH_TIMEOUT_MS = 3000;

interface DohAnswer {
  Status?: number;
  Answer?: Array<{ type?: number; data?: string }>;
}

/** The A and AAAA records of `host` from the DoH resolver; throws on a resolver failure (not on NXDOMAIN: []). */
async function resolveViaDoh(resolver: string, host: string, outbound: typeof fetch): Promise<string[]> {
  const addresses: string[] = [];
  for (const [type, code] of Object.entries(DNS_TYPES)) {
    const url = new URL(resolver);
    url.searchParams.set('name', host);
    url.searchParams.set('type', type);
    const res = await outbound(url.toString(), {
      headers: { accept: 'application/dns-json' },
      signal: AbortSignal.timeout(DOH_TIMEOUT_MS),
    });
    if (!res.ok) throw new Error(`DNS resolver answered HTTP ${res.status}`);
    const body = (await res.json()) as DohAnswer;
    if (body.Status !== 0 && body.Status !== 3) throw new Error(`DNS resolver answered status ${body.Status}`);
    for (const answer of body.Answer ?? []) {
      if (answer.type === code && typeof answer.data === 'string') addresses.push(answer.data);
    }
  }
  return addresses;
}

/**
 * Whether `url` may receive a client webhook. A name is checked through the resolver when one is configured: every
 * address it answers must be public, and a name with none is refused. A resolver failure is `transient` (delivery
 * retries later; creation lets it through, since delivery checks again). Messages name only the host the client sent.
 */
export async function checkWebhookDestination(
  url: string,
  policy: WebhookPolicy,
  outbound: typeof fetch = (input, init) => fetch(input, init),
): Promise<WebhookVerdict> {
  if (policy.allowPrivate) return { ok: true };
  const literal = urlHostProblem('webhook', url);
  if (literal) return { ok: false, message: `${literal} (set WEBHOOK_ALLOW_PRIVATE for a local receiver)` };
  const host = new URL(url).hostname;
  if (checkAddress(host) || !policy.dnsResolver) return { ok: true };
  let addresses: string[];
  try {
    addresses = await resolveViaDoh(policy.dnsResolver, host, outbound);
  } catch (err) {
    return { ok: false, transient: true, message: `webhook host ${host} could not be resolved: ${errorMessage(err)}` };
  }
  if (addresses.length === 0) return { ok: false, message: `webhook host ${host} does not resolve to any address` };
  for (const address of addresses) {
    const verdict = checkAddress(address);
    if (!verdict || verdict.blocked) {
      const why = verdict?.blocked ? describeBlock(verdict) : 'not an address';
      return { ok: false, message: `webhook host ${host} resolves to a blocked address (${why})` };
    }
  }
  return { ok: true };
}
