import { BlockList, isIP } from 'node:net';

/**
 * SSRF guard: which addresses an outbound call to a buyer-supplied URL may reach.
 * Refused unless allowed: loopback, private (RFC 1918, RFC 6598), link-local (incl. the cloud
 * metadata address 169.254.169.254), multicast, reserved, documentation ranges and their IPv6
 * equivalents. `OUTBOUND_ALLOW` (comma-separated CIDRs) opens ranges explicitly.
 */
const DENIED_V4: Array<[string, number]> = [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16],
  ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16],
  ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
];
const DENIED_V6: Array<[string, number]> = [
  ['::', 128], ['::1', 128], ['64:ff9b::', 96], ['64:ff9b:1::', 48], ['100::', 64], ['2001::', 23],
  ['2001:db8::', 32], ['2002::', 16], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8],
];

export class AddressGuard {
  private readonly denied = new BlockList();
  private readonly allowed = new BlockList();
  readonly allowList: string[];

  constructor(allow: string | string[] = '') {
    for (const [net, prefix] of DENIED_V4) this.denied.addSubnet(net, prefix, 'ipv4');
    for (const [net, prefix] of DENIED_V6) this.denied.addSubnet(net, prefix, 'ipv6');
    this.allowList = (Array.isArray(allow) ? allow : allow.split(',')).map((s) => s.trim()).filter(Boolean);
    for (const cidr of this.allowList) {
      const [net, bits] = cidr.split('/');
      const family = net ? isIP(net) : 0;
      if (!net || family === 0) throw new Error(`OUTBOUND_ALLOW: "${cidr}" is not a CIDR such as 127.0.0.0/8 or ::1/128`);
      const prefix = bits === undefined ? (family === 4 ? 32 : 128) : Number(bits);
      if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) {
        throw new Error(`OUTBOUND_ALLOW: "${cidr}" has a bad prefix length`);
      }
      this.allowed.addSubnet(net, prefix, family === 4 ? 'ipv4' : 'ipv6');
    }
  }

  /** Why an address is refused, or undefined when it may be reached. */
  refusal(address: string): string | undefined {
    const plain = unmapIPv4(address.replace(/^\[|\]$/g, ''));
    const family = isIP(plain);
    if (family === 0) return `"${address}" is not an IP address`;
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (this.allowed.check(plain, type)) return undefined;
    if (this.denied.check(plain, type)) return `${plain} is a private, loopback, link-local, multicast or reserved address`;
    return undefined;
  }
}

/** ::ffff:10.0.0.1 (and ::ffff:a00:1) → 10.0.0.1, so a mapped address cannot slip past the v4 list. */
function unmapIPv4(address: string): string {
  const lower = address.toLowerCase();
  const dotted = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted) return dotted[1]!;
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (hex) {
    const hi = parseInt(hex[1]!, 16);
    const lo = parseInt(hex[2]!, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return address;
}
