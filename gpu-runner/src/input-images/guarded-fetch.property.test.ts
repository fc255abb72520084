// Properties of the runner's guarded fetch (fast-check): whatever a resolver answers, one blocked address among any
// number of public ones refuses the name before any connection, in any IPv4/IPv6 form, and the message never carries
// an address the resolver gave (only the host the caller sent). The DNS rebinding and IPv6-form findings, as properties.
import { errorMessage } from '@sd/shared/error-message';
import { checkAddress } from '@sd/shared/net/address-policy';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadInputImage } from './input-image.ts';

const v4 = (v: number) => [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.');
const LOOPBACK_LIKE = fc.nat({ max: 0xffffff }).map((r) => (0x7f000000 + r) >>> 0);
const PRIVATE_LIKE = fc.oneof(
  LOOPBACK_LIKE,
  fc.nat({ max: 0xffffff }).map((r) => (0x0a000000 + r) >>> 0),
  fc.nat({ max: 0xffff }).map((r) => (0xa9fe0000 + r) >>> 0),
  fc.nat({ max: 0xfffff }).map((r) => (0xac100000 + r) >>> 0),
);
/** A blocked address as a resolver might hand it back: dotted IPv4 or one of its IPv6 embeddings, or IPv6 ranges. */
const blockedAnswer = fc.oneof(
  PRIVATE_LIKE.map(v4),
  PRIVATE_LIKE.map((v) => `::ffff:${v4(v)}`),
  PRIVATE_LIKE.map((v) => `::ffff:0:${v4(v)}`),
  PRIVATE_LIKE.map((v) => `64:ff9b::${v4(v)}`),
  PRIVATE_LIKE.map((v) => `::${v4(v)}`),
  fc.constantFrom('::1', 'fd00:ec2::254', 'fe80::1', 'fc00::7', 'ff02::1', '64:ff9b:1::a'),
);
const publicAnswer = fc.oneof(fc.ipV4(), fc.ipV6()).filter((a) => checkAddress(a)?.blocked === false);

describe('guarded image fetch properties', () => {
  it('a name is refused if any one of its addresses is blocked, and no resolved address is ever named', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(publicAnswer, { maxLength: 4 }),
        blockedAnswer,
        fc.nat(),
        fc.domain().filter((d) => !checkAddress(d)),
        async (publicOnes, blocked, at, host) => {
          const answers = [...publicOnes];
          answers.splice(at % (answers.length + 1), 0, blocked);
          let calls = 0;
          const limits = {
            maxBytes: 1024,
            timeoutMs: 2000,
            resolveHost: async () => {
              calls++;
              return answers;
            },
          };
          const err = await loadInputImage('image', `https://${host}/a.png`, limits).catch((e: unknown) => e);
          expect(err).toBeInstanceOf(Error);
          const message = errorMessage(err);
          expect(message).toMatch(/^image must not point to/);
          for (const a of answers) expect(message.includes(a), `${a} named in ${message}`).toBe(false);
          expect(calls).toBeLessThanOrEqual(1);
        },
      ),
      { numRuns: 60 },
    );
  });
});
