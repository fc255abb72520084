import { describe, expect, it } from 'vitest';
import {
  checkAddress,
  checkHost,
  formatIPv6,
  isBlockedAddress,
  isInternalName,
  parseIPv4,
  parseIPv6,
  urlHostProblem,
} from './address-policy.ts';

/** [address, reason it is blocked for] — one row per range of the block list. */
const BLOCKED: ReadonlyArray<readonly [string, string]> = [
  ['0.0.0.0', 'this-network'],
  ['0.1.2.3', 'this-network'],
  ['10.0.0.1', 'private-use'],
  ['10.255.255.255', 'private-use'],
  ['100.64.0.1', 'shared-address-space'],
  ['100.127.255.254', 'shared-address-space'],
  ['127.0.0.1', 'loopback'],
  ['127.255.255.254', 'loopback'],
  ['169.254.0.1', 'link-local'],
  ['169.254.169.254', 'cloud-metadata'],
  ['172.16.0.1', 'private-use'],
  ['172.31.255.255', 'private-use'],
  ['192.0.0.8', 'ietf-protocol-assignments'],
  ['192.0.2.1', 'documentation'],
  ['192.88.99.1', '6to4-relay'],
  ['192.168.1.1', 'private-use'],
  ['198.18.0.1', 'benchmarking'],
  ['198.19.255.255', 'benchmarking'],
  ['198.51.100.7', 'documentation'],
  ['203.0.113.9', 'documentation'],
  ['224.0.0.1', 'multicast'],
  ['239.255.255.250', 'multicast'],
  ['240.0.0.1', 'reserved'],
  ['255.255.255.254', 'reserved'],
  ['255.255.255.255', 'broadcast'],
  ['::', 'unspecified'],
  ['::1', 'loopback'],
  ['::127.0.0.1', 'ipv4-compatible'],
  ['::8.8.8.8', 'ipv4-compatible'],
  ['::ffff:127.0.0.1', 'loopback'],
  ['::ffff:7f00:1', 'loopback'],
  ['::ffff:10.1.2.3', 'private-use'],
  ['::ffff:169.254.169.254', 'cloud-metadata'],
  ['::ffff:0:127.0.0.1', 'loopback'],
  ['::ffff:0:192.168.0.1', 'private-use'],
  ['64:ff9b::127.0.0.1', 'loopback'],
  ['64:ff9b::a9fe:a9fe', 'cloud-metadata'],
  ['64:ff9b:1::1', 'nat64-local-use'],
  ['64:ff9b:1:ffff::8.8.8.8', 'nat64-local-use'],
  ['100::1', 'discard-only'],
  ['2001::1', 'teredo'],
  ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'teredo'],
  ['2001:2::1', 'benchmarking'],
  ['2001:10::1', 'ietf-protocol-assignments'],
  ['2001:db8::1', 'documentation'],
  ['2002:7f00:1::', 'loopback'],
  ['2002:c0a8:101::1', 'private-use'],
  ['2002:a9fe:a9fe::1', 'cloud-metadata'],
  ['3fff::1', 'documentation'],
  ['fc00::1', 'unique-local'],
  ['fd12:3456::1', 'unique-local'],
  ['fd00:ec2::254', 'cloud-metadata'],
  ['fe80::1', 'link-local'],
  ['febf::1', 'link-local'],
  ['fec0::1', 'site-local'],
  ['ff02::1', 'multicast'],
  ['ff0e::101', 'multicast'],
  ['4000::1', 'not-global-unicast'],
  ['1::1', 'not-global-unicast'],
];

const ALLOWED = [
  '8.8.8.8',
  '1.1.1.1',
  '93.184.215.14',
  '100.63.255.255',
  '100.128.0.0',
  '172.15.255.255',
  '172.32.0.1',
  '192.0.1.1',
  '192.169.0.1',
  '198.17.255.255',
  '198.20.0.0',
  '223.255.255.255',
  '2606:4700:4700::1111',
  '2a00:1450:4001:80e::200e',
  '::ffff:8.8.8.8',
  '::ffff:0:8.8.8.8',
  '64:ff9b::8.8.8.8',
  '2002:808:808::1',
  '2001:200::1',
  '3fff:1000::1',
];

describe('address policy', () => {
  it.each(BLOCKED)('blocks %s (%s)', (address, reason) => {
    const verdict = checkAddress(address);
    expect(verdict).toMatchObject({ blocked: true, reason });
    expect(checkAddress(`[${address}]`)?.blocked, 'bracketed').toBe(address.includes(':') ? true : undefined);
  });

  it.each(ALLOWED)('allows %s', (address) => {
    expect(checkAddress(address)).toMatchObject({ blocked: false });
  });

  it('names the IPv4 address an IPv6 form reaches', () => {
    expect(checkAddress('::ffff:0:127.0.0.1')).toMatchObject({ reason: 'loopback', via: 'ipv4-translated' });
    expect(checkAddress('::ffff:127.0.0.1')).toMatchObject({ reason: 'loopback', via: 'ipv4-mapped' });
    expect(checkAddress('64:ff9b::127.0.0.1')).toMatchObject({ reason: 'loopback', via: 'nat64' });
    expect(checkAddress('2002:7f00:1::')).toMatchObject({ reason: 'loopback', via: '6to4' });
  });

  // The forms the outside review found passing the runner's old block list.
  it.each(['[::127.0.0.1]', '[::ffff:0:127.0.0.1]', '[64:ff9b::127.0.0.1]'])('refuses the URL host %s', (host) => {
    expect(urlHostProblem('image', `https://${host}/a.png`)).toMatch(/image must not point to .*got host/);
  });

  describe('legacy IPv4 spellings', () => {
    const forms: ReadonlyArray<readonly [string, string]> = [
      ['decimal', '2130706433'],
      ['octal', '0177.0.0.1'],
      ['octal, every part', '0177.00.00.01'],
      ['hex', '0x7f.1'],
      ['hex, one number', '0x7f000001'],
      ['hex, every part', '0x7f.0x0.0x0.0x1'],
      ['short form a.b', '127.1'],
      ['short form a.b.c', '127.0.1'],
      ['mixed', '0x7f.0.01'],
      ['trailing dot', '127.0.0.1.'],
    ];
    it.each(forms)('%s (%s) is 127.0.0.1 to the policy and to the URL parser', (_form, host) => {
      expect(parseIPv4(host)).toBe(0x7f000001);
      expect(checkHost(host)).toMatchObject({ blocked: true, reason: 'loopback', address: '127.0.0.1' });
      // The URL parser normalizes the same way, so a URL check sees the real address too.
      expect(new URL(`https://${host}/`).hostname).toBe('127.0.0.1');
      expect(urlHostProblem('webhook', `https://${host}/hook`)).toMatch(/webhook must not point/);
    });
    it('decimal and octal spellings of the metadata address', () => {
      expect(checkHost('2852039166')).toMatchObject({ reason: 'cloud-metadata' });
      expect(checkHost('0251.0376.0251.0376')).toMatchObject({ reason: 'cloud-metadata' });
      expect(checkHost('0xa9fea9fe')).toMatchObject({ reason: 'cloud-metadata' });
    });
    it('is not fooled into reading names or bad numbers as addresses', () => {
      for (const host of ['08.1.1.1', '1.2.3.4.5', '256.1.1.1', '0x1g.1', 'example.com', '1.2.3.4a']) {
        expect(parseIPv4(host), host).toBeNull();
      }
      expect(parseIPv4('1.16777216')).toBeNull(); // the last part overflows its 3 bytes
    });
  });

  it('parses and formats IPv6 as RFC 5952 does', () => {
    expect(formatIPv6(parseIPv6('2001:0db8:0000:0000:0000:0000:0000:0001')!)).toBe('2001:db8::1');
    expect(formatIPv6(parseIPv6('::ffff:127.0.0.1')!)).toBe('::ffff:7f00:1');
    expect(parseIPv6('fe80::1%eth0')).toEqual([0xfe80, 0, 0, 0, 0, 0, 0, 1]);
    for (const bad of ['1:2:3:4:5:6:7:8:9', '1::2::3', ':::', '12345::', '1.2.3.4::', 'example.com', '::1.2.3']) {
      expect(parseIPv6(bad), bad).toBeNull();
    }
  });

  it('refuses internal names and allows public ones', () => {
    for (const name of [
      'localhost',
      'LOCALHOST.',
      'app.localhost',
      'printer.local',
      'metadata.google.internal',
      'db.internal',
      'metadata',
      'instance-data',
      'router.lan',
      'nas.home.arpa',
      'intranet',
      'box.localdomain',
    ]) {
      expect(isInternalName(name), name).toBe(true);
      expect(checkHost(name)).toMatchObject({ blocked: true, reason: 'internal-name' });
    }
    for (const name of ['example.com', 'hooks.example.org', 'localhost.example.com', 'internal.example.com']) {
      expect(checkHost(name), name).toMatchObject({ blocked: false });
    }
  });

  it('isBlockedAddress says no for names (they are checked where they resolve)', () => {
    expect(isBlockedAddress('example.com')).toBe(false);
    expect(isBlockedAddress('127.0.0.1')).toBe(true);
  });
});
