// Where an outbound request on a caller's behalf (client webhooks on the edge, image inputs on the runner) may go:
// one pure policy over IPv4/IPv6 addresses, host names and URLs, with no Node or Workers API, so both sides agree.

/** Why an address or host is refused; also the words used in error messages. */
export type BlockReason =
  | 'unspecified'
  | 'this-network'
  | 'loopback'
  | 'private-use'
  | 'shared-address-space'
  | 'link-local'
  | 'cloud-metadata'
  | 'ietf-protocol-assignments'
  | 'documentation'
  | 'benchmarking'
  | '6to4-relay'
  | 'multicast'
  | 'reserved'
  | 'broadcast'
  | 'ipv4-compatible'
  | 'discard-only'
  | 'teredo'
  | 'nat64-local-use'
  | 'unique-local'
  | 'site-local'
  | 'not-global-unicast'
  | 'internal-name';

export type AddressVerdict =
  | { blocked: false; address: string }
  | { blocked: true; address: string; reason: BlockReason; via?: 'ipv4-mapped' | 'ipv4-translated' | 'nat64' | '6to4' };

// ---------------------------------------------------------------------------------------------------------------
// IPv4

/** IANA special-purpose ranges that must not be reached (RFC 6890 and successors), most specific first. */
const IPV4_BLOCKS: ReadonlyArray<readonly [string, number, BlockReason]> = [
  ['169.254.169.254', 32, 'cloud-metadata'],
  ['255.255.255.255', 32, 'broadcast'],
  ['0.0.0.0', 8, 'this-network'],
  ['10.0.0.0', 8, 'private-use'],
  ['100.64.0.0', 10, 'shared-address-space'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'],
  ['172.16.0.0', 12, 'private-use'],
  ['192.0.0.0', 24, 'ietf-protocol-assignments'],
  ['192.0.2.0', 24, 'documentation'],
  ['192.88.99.0', 24, '6to4-relay'],
  ['192.168.0.0', 16, 'private-use'],
  ['198.18.0.0', 15, 'benchmarking'],
  ['198.51.100.0', 24, 'documentation'],
  ['203.0.113.0', 24, 'documentation'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'],
];

const IPV4_BLOCK_NUMBERS = IPV4_BLOCKS.map(([net, prefix, reason]) => {
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return { base: (parseIPv4(net) as number) & mask, mask, reason };
});

/**
 * Parses an IPv4 host the way the WHATWG URL parser (and inet_aton) does: one to four parts, each decimal, octal
 * (leading 0) or hex (0x), the last part filling the remaining bytes, so 2130706433, 0177.0.0.1, 0x7f.1 and 127.1
 * all mean 127.0.0.1. Returns the address as an unsigned 32-bit number, or null if `host` is not IPv4.
 */
export function parseIPv4(host: string): number | null {
  const parts = host.endsWith('.') ? host.slice(0, -1).split('.') : host.split('.');
  if (parts.length === 0 || parts.length > 4) return null;
  const numbers: number[] = [];
  for (const part of parts) {
    if (part === '') return null;
    let digits = part;
    let radix = 10;
    if (/^0x/i.test(part)) {
      digits = part.slice(2);
      radix = 16;
      if (digits === '') {
        numbers.push(0); // "0x" alone is 0 for the URL parser
        continue;
      }
    } else if (part.length > 1 && part.startsWith('0')) {
      digits = part.slice(1);
      radix = 8;
    }
    const valid = radix === 16 ? /^[0-9a-f]+$/i : radix === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
    if (!valid.test(digits)) return null;
    const n = Number.parseInt(digits, radix);
    if (!Number.isFinite(n)) return null;
    numbers.push(n);
  }
  const last = numbers[numbers.length - 1];
  if (last >= 256 ** (5 - numbers.length)) return null;
  let value = last;
  for (const [i, n] of numbers.slice(0, -1).entries()) {
    if (n > 255) return null;
    value += n * 256 ** (3 - i);
  }
  return value;
}

export function formatIPv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

function ipv4Reason(value: number): BlockReason | null {
  for (const { base, mask, reason } of IPV4_BLOCK_NUMBERS) {
    if ((value & mask) >>> 0 === base >>> 0) return reason;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------------------------
// IPv6

/**
 * Parses an IPv6 address (brackets and a %zone allowed; `::` compression; a trailing dotted IPv4) into its eight
 * 16-bit groups, or null if it is not one.
 */
export function parseIPv6(text: string): number[] | null {
  let s = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  if (!s.includes(':') || !/^[0-9a-f:.]+$/i.test(s)) return null;
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const parseSide = (side: string, isLast: boolean): number[] | null => {
    if (side === '') return [];
    const groups: number[] = [];
    const pieces = side.split(':');
    for (const [i, piece] of pieces.entries()) {
      if (piece.includes('.')) {
        // A dotted IPv4 tail: only strict dotted-decimal, only as the very last piece.
        if (!isLast || i !== pieces.length - 1 || !/^\d{1,3}(\.\d{1,3}){3}$/.test(piece)) return null;
        const bytes = piece.split('.').map(Number);
        if (bytes.some((b) => b > 255)) return null;
        groups.push((bytes[0] << 8) | bytes[1], (bytes[2] << 8) | bytes[3]);
      } else {
        if (!/^[0-9a-f]{1,4}$/i.test(piece)) return null;
        groups.push(Number.parseInt(piece, 16));
      }
    }
    return groups;
  };
  if (halves.length === 1) {
    const groups = parseSide(halves[0], true);
    return groups && groups.length === 8 ? groups : null;
  }
  const head = parseSide(halves[0], false);
  const tail = parseSide(halves[1], true);
  if (!head || !tail || head.length + tail.length > 7) return null;
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

export function formatIPv6(groups: readonly number[]): string {
  // RFC 5952: lower case, the longest run (of two or more) of zero groups compressed.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

const v4From = (hi: number, lo: number): number => ((hi << 16) >>> 0) + lo;

function ipv6Verdict(groups: readonly number[], address: string): AddressVerdict {
  const g = groups;
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  const block = (reason: BlockReason): AddressVerdict => ({ blocked: true, address, reason });
  const embedded = (v4: number, via: 'ipv4-mapped' | 'ipv4-translated' | 'nat64' | '6to4'): AddressVerdict => {
    const reason = ipv4Reason(v4);
    return reason ? { blocked: true, address, reason, via } : { blocked: false, address };
  };
  // ::ffff:a.b.c.d (mapped) and ::ffff:0:a.b.c.d (translated) reach the IPv4 address they carry.
  if (zeros(0, 5) && g[5] === 0xffff) return embedded(v4From(g[6], g[7]), 'ipv4-mapped');
  if (zeros(0, 4) && g[4] === 0xffff && g[5] === 0) return embedded(v4From(g[6], g[7]), 'ipv4-translated');
  if (zeros(0, 8)) return block('unspecified');
  if (zeros(0, 7) && g[7] === 1) return block('loopback');
  // ::a.b.c.d, IPv4-compatible (deprecated by RFC 4291; nothing legitimate uses it), and the rest of ::/96.
  if (zeros(0, 6)) return block('ipv4-compatible');
  // NAT64 well-known prefix 64:ff9b::/96 reaches the IPv4 address it embeds; a public one is allowed (DNS64).
  if (g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6)) return embedded(v4From(g[6], g[7]), 'nat64');
  // 64:ff9b:1::/48, local-use NAT64 (RFC 8215): where the IPv4 part sits is the operator's choice.
  if (g[0] === 0x64 && g[1] === 0xff9b && g[2] === 1) return block('nat64-local-use');
  if (g[0] === 0x100 && zeros(1, 4)) return block('discard-only');
  if ((g[0] & 0xfe00) === 0xfc00) return block(g[0] === 0xfd00 && g[1] === 0xec2 ? 'cloud-metadata' : 'unique-local');
  if ((g[0] & 0xffc0) === 0xfe80) return block('link-local');
  if ((g[0] & 0xffc0) === 0xfec0) return block('site-local');
  if ((g[0] & 0xff00) === 0xff00) return block('multicast');
  // Everything outside 2000::/3 that is left is unassigned or special: not a destination.
  if ((g[0] & 0xe000) !== 0x2000) return block('not-global-unicast');
  // Teredo 2001::/32 tunnels to an obfuscated IPv4 client behind a server address it names: refuse it whole.
  if (g[0] === 0x2001 && g[1] === 0) return block('teredo');
  if (g[0] === 0x2001 && g[1] === 0xdb8) return block('documentation');
  // 2001::/23, IETF protocol assignments (ORCHID, benchmarking 2001:2::/48, AMT, ...).
  if (g[0] === 0x2001 && g[1] < 0x200) return block(g[1] === 2 && g[2] === 0 ? 'benchmarking' : 'ietf-protocol-assignments');
  // 6to4 2002::/16 carries an IPv4 address in its next 32 bits.
  if (g[0] === 0x2002) return embedded(v4From(g[1], g[2]), '6to4');
  if (g[0] === 0x3fff && g[1] < 0x1000) return block('documentation'); // 3fff::/20, RFC 9637
  return { blocked: false, address };
}

// ---------------------------------------------------------------------------------------------------------------
// Addresses, names, URLs

/** The verdict on an IP address literal (IPv4 in any legacy spelling, IPv6 with or without brackets); null if `text` is no IP. */
export function checkAddress(text: string): AddressVerdict | null {
  const v4 = parseIPv4(text);
  if (v4 !== null) {
    const address = formatIPv4(v4);
    const reason = ipv4Reason(v4);
    return reason ? { blocked: true, address, reason } : { blocked: false, address };
  }
  const v6 = parseIPv6(text);
  if (v6) return ipv6Verdict(v6, formatIPv6(v6));
  return null;
}

/** True when `text` is an IP address that must not be reached. */
export function isBlockedAddress(text: string): boolean {
  return checkAddress(text)?.blocked === true;
}

/**
 * Names that only mean something inside a network: localhost (RFC 6761), mDNS .local, the suffixes RFC 6762
 * Appendix G and RFC 8375 list for private use, and cloud metadata names (metadata.google.internal sits in .internal).
 */
const INTERNAL_SUFFIXES = [
  'localhost',
  'local',
  'internal',
  'intranet',
  'private',
  'corp',
  'home',
  'lan',
  'localdomain',
  'home.arpa',
];
const INTERNAL_NAMES = new Set(['metadata', 'instance-data', 'metadata.azure.com', 'metadata.platformequinix.com']);

/** True for a host name (not an address) that names something inside the network; single-label names included. */
export function isInternalName(host: string): boolean {
  const name = host.toLowerCase().replace(/\.+$/, '');
  if (name === '' || !name.includes('.')) return true; // single labels resolve through search domains: internal
  if (INTERNAL_NAMES.has(name)) return true;
  return INTERNAL_SUFFIXES.some((suffix) => name === suffix || name.endsWith(`.${suffix}`));
}

/** The verdict on a URL host (as `new URL(...).hostname` gives it): an address literal or a name. */
export function checkHost(host: string): AddressVerdict {
  const address = checkAddress(host);
  if (address) return address;
  const name = host.toLowerCase().replace(/\.+$/, '');
  return isInternalName(name) ? { blocked: true, address: name, reason: 'internal-name' } : { blocked: false, address: name };
}

/**
 * Why `url` must not be requested, as a sentence naming `field` (null if its host is acceptable as written). A
 * name that passes may still resolve to a blocked address: the caller checks what it resolves to at connect time.
 */
export function urlHostProblem(field: string, url: URL | string): string | null {
  let parsed: URL;
  try {
    parsed = typeof url === 'string' ? new URL(url) : url;
  } catch {
    return `${field} must be a valid URL`;
  }
  const verdict = checkHost(parsed.hostname);
  if (!verdict.blocked) return null;
  return `${field} must not point to a loopback, private, link-local or otherwise internal address, got host ${parsed.hostname} (${describeBlock(verdict)})`;
}

/** "loopback", or "loopback, via IPv4-mapped IPv6" for an address that embeds a blocked IPv4 one. */
export function describeBlock(verdict: AddressVerdict & { blocked: true }): string {
  return verdict.via ? `${verdict.reason} via ${verdict.via}` : verdict.reason;
}
