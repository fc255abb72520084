// The webhook destination check and the deliverer inside workerd. The DNS-over-HTTPS resolver is a fake (we cannot
// run a public resolver here): fakeDohResolver answers application/dns-json from a table, as cloudflare-dns.com does.
import { describe, expect, it } from 'vitest';
import { httpDeliverer, type OutboxItem } from './client-webhooks.ts';
import { checkWebhookDestination } from './webhook-destination.ts';

const RESOLVER = 'https://doh.fake.test/dns-query';

/** A fake DoH endpoint: records per name and type; unknown names are NXDOMAIN; other URLs are a webhook receiver. */
function fakeDohResolver(records: Record<string, { A?: string[]; AAAA?: string[] }>) {
  const queries: string[] = [];
  const posts: Array<{ url: string; redirect?: RequestInit['redirect'] }> = [];
  const outbound: typeof fetch = async (input, init) => {
    const url = new URL(String(input));
    if (url.origin === new URL(RESOLVER).origin) {
      const name = url.searchParams.get('name') ?? '';
      const type = url.searchParams.get('type') as 'A' | 'AAAA';
      queries.push(`${name} ${type}`);
      if (name === 'broken.example') return new Response('oops', { status: 502 });
      const known = records[name];
      const answers = (known?.[type] ?? []).map((data) => ({ name, type: type === 'A' ? 1 : 28, TTL: 60, data }));
      return Response.json({ Status: known ? 0 : 3, Answer: answers });
    }
    posts.push({ url: url.toString(), redirect: init?.redirect });
    return new Response(null, { status: 204 });
  };
  return { outbound, queries, posts };
}

const policy = { allowPrivate: false, dnsResolver: RESOLVER };

describe('checkWebhookDestination', () => {
  const doh = fakeDohResolver({
    'hooks.example': { A: ['93.184.215.14'], AAAA: ['2606:4700::1'] },
    'rebound.example': { A: ['93.184.215.14', '10.0.0.7'] },
    'mapped.example': { AAAA: ['::ffff:169.254.169.254'] },
    'nat64.example': { AAAA: ['64:ff9b::7f00:1'] },
    'empty.example': {},
  });

  it('accepts a name whose every address is public', async () => {
    expect(await checkWebhookDestination('https://hooks.example/h', policy, doh.outbound)).toEqual({ ok: true });
    expect(doh.queries).toEqual(['hooks.example A', 'hooks.example AAAA']);
  });

  it('refuses a name with any blocked address, in any IPv6 form, without naming the address', async () => {
    for (const [host, why] of [
      ['rebound.example', 'private-use'],
      ['mapped.example', 'cloud-metadata via ipv4-mapped'],
      ['nat64.example', 'loopback via nat64'],
    ]) {
      const verdict = await checkWebhookDestination(`https://${host}/h`, policy, doh.outbound);
      expect(verdict).toEqual({ ok: false, message: `webhook host ${host} resolves to a blocked address (${why})` });
    }
    expect(await checkWebhookDestination('https://empty.example/h', policy, doh.outbound)).toMatchObject({ ok: false });
    expect(await checkWebhookDestination('https://nxdomain.example/h', policy, doh.outbound)).toMatchObject({
      ok: false,
      message: 'webhook host nxdomain.example does not resolve to any address',
    });
  });

  it('a resolver failure is transient, not a verdict', async () => {
    expect(await checkWebhookDestination('https://broken.example/h', policy, doh.outbound)).toMatchObject({
      ok: false,
      transient: true,
    });
  });

  it('refuses literal blocked hosts and internal names without asking the resolver; the opt-out allows them', async () => {
    const before = doh.queries.length;
    for (const url of ['http://127.0.0.1:9/h', 'https://[::ffff:0:127.0.0.1]/h', 'https://db.internal/h', 'http://0x7f.1/h']) {
      const verdict = await checkWebhookDestination(url, policy, doh.outbound);
      expect(verdict.ok, url).toBe(false);
      if (!verdict.ok) expect(verdict.message).toMatch(/^webhook must not point to/);
    }
    expect(doh.queries.length).toBe(before);
    expect(await checkWebhookDestination('http://127.0.0.1:9/h', { allowPrivate: true }, doh.outbound)).toEqual({ ok: true });
    // Without a resolver a name passes here (Workers' egress reaches no private network in production).
    expect(await checkWebhookDestination('https://rebound.example/h', { allowPrivate: false }, doh.outbound)).toEqual({
      ok: true,
    });
  });
});

describe('httpDeliverer', () => {
  const item: OutboxItem = { msgId: 'm1', event: 'completed', body: '{"id":"p"}', attempts: 0, nextAt: 0 };
  const secret = 'whsec_dGVzdC13ZWJob29rLXNpZ25pbmctc2VjcmV0';

  it('checks the destination again at delivery time and never follows redirects', async () => {
    const doh = fakeDohResolver({ 'hooks.example': { A: ['93.184.215.14'] }, 'repointed.example': { A: ['192.168.1.5'] } });
    const deliver = httpDeliverer(secret, doh.outbound, 1000, policy);
    expect(await deliver('https://hooks.example/h', item)).toBe(true);
    expect(await deliver('https://repointed.example/h', item)).toBe(false);
    expect(await deliver('http://[::1]:8080/h', item)).toBe(false);
    expect(doh.posts).toEqual([{ url: 'https://hooks.example/h', redirect: 'manual' }]);
  });

  it('a redirect answer is a failed delivery (retried), not followed', async () => {
    const outbound: typeof fetch = async () => new Response(null, { status: 302, headers: { location: 'http://127.0.0.1/' } });
    expect(await httpDeliverer(secret, outbound, 1000, { allowPrivate: false })('https://hooks.example/h', item)).toBe(false);
  });
});
