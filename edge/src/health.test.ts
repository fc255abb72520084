import { exports } from 'cloudflare:workers';
import { expect, it } from 'vitest';

it('answers /health inside workerd', async () => {
  const res = await exports.default.fetch('http://edge.test/health');
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ status: 'ok' });
});
