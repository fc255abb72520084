// Properties of the address policy (fast-check): every address of every blocked range is refused in every spelling a
// URL or a resolver can give it (legacy IPv4 forms, IPv4 embedded in IPv6), and the embedded forms of a public IPv4
// address are judged as that address. The forms the outside review found passing the old list are among them.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkAddress, checkHost, formatIPv4, formatIPv6, parseIPv4, parseIPv6, urlHostProblem } from './address-policy.ts';

const BLOCKED_V4: ReadonlyArray<readonly [number, number]> = [
  [0x00000000, 8],
  [0x0a000000, 8],
  [0x64400000, 10],
  [0x7f000000, 8],
  [0xa9fe0000, 16],
  [0xac100000, 12],
  [0xc0000000, 24],
  [0xc0000200, 24],
  [0xc0586300, 24],
  [0xc0a80000, 16],
  [0xc6120000, 15],
  [0xc6336400, 24],
  [0xcb007100, 24],
  [0xe0000000, 4],
  [0xf0000000, 4],
];

const blockedV4 = fc
  .tuple(fc.constantFrom(...BLOCKED_V4), fc.nat())
  .map(([[base, prefix], r]) => (base + (r % 2 ** (32 - prefix))) >>> 0);
const anyV4 = fc.nat({ max: 0xffffffff });
const publicV4 = anyV4.filter((v) => !checkAddress(formatIPv4(v))?.blocked);

const hex = (n: number) => n.toString(16);
/** Every way the policy may meet an IPv4 address written as IPv6. */
const embeddings = (v: number) => {
  const hi = v >>> 16;
  const lo = v & 0xffff;
  return {
    mapped: [`::ffff:${formatIPv4(v)}`, `::ffff:${hex(hi)}:${hex(lo)}`, `0:0:0:0:0:ffff:${formatIPv4(v)}`],
    translated: [`::ffff:0:${formatIPv4(v)}`, `::ffff:0:${hex(hi)}:${hex(lo)}`],
    nat64: [`64:ff9b::${formatIPv4(v)}`, `64:ff9b::${hex(hi)}:${hex(lo)}`],
    sixToFour: [`2002:${hex(hi)}:${hex(lo)}::1`],
  };
};

/** Legacy spellings the WHATWG URL parser (and inet_aton) accept for the same address. */
const legacySpellings = (v: number) => {
  const b = [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
  return [
    String(v),
    `0x${hex(v)}`,
    b.map((x) => `0${x.toString(8)}`).join('.'),
    b.map((x) => `0x${hex(x)}`).join('.'),
    `${b[0]}.${(b[1] << 16) + (b[2] << 8) + b[3]}`,
    `${b[0]}.${b[1]}.${(b[2] << 8) + b[3]}`,
    `${formatIPv4(v)}.`,
  ];
};

describe('address policy properties', () => {
  it('every blocked IPv4 address is refused in every legacy spelling, and the URL parser agrees on the address', () => {
    fc.assert(
      fc.property(blockedV4, (v) => {
        const reason = checkAddress(formatIPv4(v));
        expect(reason?.blocked).toBe(true);
        for (const spelling of legacySpellings(v)) {
          expect(parseIPv4(spelling), spelling).toBe(v);
          expect(checkHost(spelling), spelling).toMatchObject({ blocked: true, address: formatIPv4(v) });
          expect(new URL(`https://${spelling}/`).hostname, spelling).toBe(formatIPv4(v));
          expect(urlHostProblem('webhook', `https://${spelling}/x`), spelling).not.toBeNull();
        }
      }),
      { numRuns: 500 },
    );
  });

  it('every blocked IPv4 address is refused when embedded in IPv6 (mapped, translated, NAT64, 6to4, compatible)', () => {
    fc.assert(
      fc.property(blockedV4, (v) => {
        const forms = embeddings(v);
        for (const address of [...forms.mapped, ...forms.translated, ...forms.nat64, ...forms.sixToFour]) {
          expect(checkAddress(address), address).toMatchObject({ blocked: true });
          expect(urlHostProblem('image', `https://[${address}]/a.png`), address).not.toBeNull();
        }
        expect(checkAddress(`::${formatIPv4(v)}`)).toMatchObject({ blocked: true });
      }),
      { numRuns: 500 },
    );
  });

  it('an embedded public IPv4 address is judged as that address (mapped, translated, NAT64, 6to4)', () => {
    fc.assert(
      fc.property(publicV4, (v) => {
        const forms = embeddings(v);
        for (const address of [...forms.mapped, ...forms.translated, ...forms.nat64, ...forms.sixToFour]) {
          expect(checkAddress(address), address).toMatchObject({ blocked: false });
        }
      }),
      { numRuns: 300 },
    );
  });

  it('whole IPv6 ranges are refused: ULA, link-local, site-local, multicast, documentation, Teredo, local NAT64', () => {
    const prefixed = (prefix: number[], mask: number) =>
      fc.array(fc.nat({ max: 0xffff }), { minLength: 8, maxLength: 8 }).map((g) => {
        const groups = [...g];
        groups[0] = (prefix[0] & mask) | (groups[0] & ~mask & 0xffff);
        for (let i = 1; i < prefix.length; i++) groups[i] = prefix[i];
        return formatIPv6(groups);
      });
    const ranges = fc.oneof(
      prefixed([0xfc00], 0xfe00),
      prefixed([0xfe80], 0xffc0),
      prefixed([0xfec0], 0xffc0),
      prefixed([0xff00], 0xff00),
      prefixed([0x2001, 0xdb8], 0xffff),
      prefixed([0x2001, 0], 0xffff),
      prefixed([0x64, 0xff9b, 1], 0xffff),
    );
    fc.assert(
      fc.property(ranges, (address) => {
        expect(checkAddress(address), address).toMatchObject({ blocked: true });
        expect(checkAddress(`[${address.toUpperCase()}]`), address).toMatchObject({ blocked: true });
      }),
      { numRuns: 500 },
    );
  });

  it('IPv6 text round-trips through parse and format, and the URL parser agrees with the verdict', () => {
    fc.assert(
      fc.property(fc.ipV6(), (text) => {
        const groups = parseIPv6(text);
        expect(groups, text).not.toBeNull();
        expect(parseIPv6(formatIPv6(groups!))).toEqual(groups);
        const viaUrl = checkHost(new URL(`https://[${text}]/`).hostname);
        expect(viaUrl.blocked, text).toBe(checkAddress(text)!.blocked);
      }),
      { numRuns: 1000 },
    );
  });

  it('any IPv4 in dotted form: checkHost and checkAddress agree, and fast-check IPv4 forms parse', () => {
    fc.assert(
      fc.property(fc.ipV4Extended(), (text) => {
        const v = parseIPv4(text);
        expect(v, text).not.toBeNull();
        expect(checkHost(text).blocked).toBe(checkAddress(formatIPv4(v!))!.blocked);
        expect(new URL(`https://${text}/`).hostname).toBe(formatIPv4(v!));
      }),
      { numRuns: 1000 },
    );
  });
});
