import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlockedDestinationError, createGuardedAgent, type GuardedFetchOptions, guardedFetch } from './guarded-fetch.ts';

// The test machine reaches only loopback, so 127.0.0.1 stands in for "a public address" and 127.0.0.2 for "a private
// one": the policy under test is the guard's mechanics (one lookup, every answer checked, hops checked), while the
// shared policy's ranges have their own tests (shared/src/net/address-policy.test.ts).
const PUBLIC = '127.0.0.1';
const PRIVATE = '127.0.0.2';
const isBlocked = (address: string) => (address === PUBLIC ? null : 'private-use');

describe('guardedFetch', () => {
  let server: Server;
  let port: number;
  const hits: string[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      hits.push(`${req.socket.localAddress} ${req.url}`);
      if (req.url === '/img') return res.end('pixels');
      if (req.url === '/loop') return res.writeHead(302, { location: '/loop' }).end();
      if (req.url?.startsWith('/to?')) return res.writeHead(302, { location: decodeURIComponent(req.url.slice(4)) }).end();
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, PUBLIC, r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  async function get(url: string, options: GuardedFetchOptions) {
    const full: GuardedFetchOptions = { protocols: ['http:'], isBlocked, ...options };
    const agent = createGuardedAgent(full);
    try {
      const { response, redirects } = await guardedFetch(url, {}, agent, full);
      return { status: response.status, text: await response.text(), redirects };
    } finally {
      await agent.destroy();
    }
  }

  it('resolves a name once and connects to the address it checked (a rebinding resolver gets no second question)', async () => {
    let calls = 0;
    const flipping = async () => (calls++ === 0 ? [PUBLIC] : [PRIVATE]);
    hits.length = 0;
    const reply = await get(`http://flip.test:${port}/img`, { resolveHost: flipping });
    expect(reply).toMatchObject({ status: 200, text: 'pixels' });
    expect(calls).toBe(1);
    expect(hits).toEqual([`${PUBLIC} /img`]);
  });

  it('refuses a name if any address it resolves to is blocked, without naming that address', async () => {
    hits.length = 0;
    const err = await get(`http://mixed.test:${port}/img`, { resolveHost: async () => [PUBLIC, PRIVATE] }).catch((e) => e);
    expect(err).toBeInstanceOf(BlockedDestinationError);
    expect(err.message).toBe('host mixed.test resolves to a blocked address (private-use)');
    expect(err.message).not.toContain(PRIVATE);
    expect(hits).toEqual([]);
  });

  it('checks every redirect hop: a literal blocked address, an internal name, a name resolving inside', async () => {
    const resolveHost = async (host: string) => (host === 'inside.test' ? [PRIVATE] : [PUBLIC]);
    for (const target of [`http://${PRIVATE}:${port}/img`, `http://localhost:${port}/img`, `http://inside.test:${port}/img`]) {
      hits.length = 0;
      const err = await get(`http://ok.test:${port}/to?${encodeURIComponent(target)}`, { resolveHost }).catch((e) => e);
      expect(err, target).toBeInstanceOf(BlockedDestinationError);
      expect(err.message).toMatch(/^a redirect from ok\.test:\d+/);
      expect(hits).toEqual([`${PUBLIC} /to?${encodeURIComponent(target)}`]);
    }
    const other = await get(`http://ok.test:${port}/to?${encodeURIComponent('ftp://ok.test/a')}`, { resolveHost }).catch(
      (e) => e,
    );
    expect(other.message).toMatch(/leads to a ftp: URL; allowed: http:/);
    const fine = await get(`http://ok.test:${port}/to?${encodeURIComponent(`http://ok.test:${port}/img`)}`, { resolveHost });
    expect(fine).toMatchObject({ status: 200, text: 'pixels', redirects: 1 });
  });

  it('stops after the redirect cap', async () => {
    hits.length = 0;
    const err = await get(`http://ok.test:${port}/loop`, { resolveHost: async () => [PUBLIC], maxRedirects: 3 }).catch((e) => e);
    expect(err.message).toBe(`more than 3 redirects from ok.test:${port}`);
    expect(hits).toHaveLength(4);
  });

  it('reports a connection failure by code and the host it was given, never the address it resolved to', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, PUBLIC, r));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const err = await get(`http://down.test:${closedPort}/img`, { resolveHost: async () => [PUBLIC] }).catch((e) => e);
    expect(err.message).toBe(`connection to down.test:${closedPort} failed (ECONNREFUSED)`);
    expect(err.message).not.toContain(PUBLIC);
  });

  it('with allowPrivate, goes where it is told (ALLOW_PRIVATE_IMAGE_URLS)', async () => {
    const reply = await get(`http://${PUBLIC}:${port}/img`, { allowPrivate: true, isBlocked: () => 'everything' });
    expect(reply).toMatchObject({ status: 200, text: 'pixels' });
  });

  it('the default policy refuses loopback by name and literal, before any connection', async () => {
    hits.length = 0;
    const options: GuardedFetchOptions = { protocols: ['http:'], resolveHost: async () => ['127.0.0.1'] };
    for (const url of [`http://127.0.0.1:${port}/img`, `http://[::ffff:7f00:1]:${port}/img`, `http://img.test:${port}/img`]) {
      const agent = createGuardedAgent(options);
      const err = await guardedFetch(url, {}, agent, options).catch((e) => e);
      await agent.destroy();
      expect(err, url).toBeInstanceOf(BlockedDestinationError);
      expect(err.message).toMatch(/loopback/);
    }
    expect(hits).toEqual([]);
  });
});
