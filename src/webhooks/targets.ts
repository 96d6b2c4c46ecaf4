import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { BlockList, isIP, type LookupFunction } from 'node:net'

/**
 * SSRF rules for webhook targets: which addresses a delivery may connect to.
 * Refused: unspecified, loopback, private (RFC 1918, unique local), shared
 * (CGNAT), link-local, multicast, reserved, documentation and benchmark
 * ranges — in IPv4, in IPv6, and in the IPv6 forms that embed an IPv4 address
 * (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`).
 */
const refused = new BlockList()
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24],
  ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4]
] as const) refused.addSubnet(net, prefix, 'ipv4')
for (const [net, prefix] of [
  ['::', 128], ['::1', 128], ['100::', 64], ['2001::', 23], ['2001:db8::', 32], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8]
] as const) refused.addSubnet(net, prefix, 'ipv6')

/** The 16 bytes of an IPv6 address (any textual form, `::` and a dotted IPv4 tail included). */
function ipv6Bytes (address: string): Buffer {
  let text = address.toLowerCase()
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)
  if (dotted !== null) {
    const [a, b, c, d] = (dotted[1] as string).split('.').map(Number) as [number, number, number, number]
    text = text.slice(0, -(dotted[1] as string).length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [head, tail] = text.includes('::') ? text.split('::') as [string, string] : [text, null]
  const part = (s: string): string[] => s === '' ? [] : s.split(':')
  const groups = tail === null ? part(head) : [...part(head), ...Array<string>(8 - part(head).length - part(tail).length).fill('0'), ...part(tail)]
  const bytes = Buffer.alloc(16)
  groups.forEach((g, i) => bytes.writeUInt16BE(parseInt(g, 16), i * 2))
  return bytes
}

const v4 = (b: Buffer, at: number): string => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`

/** The IPv4 address an IPv6 address embeds (mapped, compatible, NAT64, 6to4), or null. */
function embeddedIpv4 (address: string): string | null {
  const b = ipv6Bytes(address)
  const zeros = (from: number, to: number): boolean => b.subarray(from, to).every((x) => x === 0)
  if (zeros(0, 10) && b.readUInt16BE(10) === 0xffff) return v4(b, 12) // ::ffff:a.b.c.d
  if (zeros(0, 12) && !zeros(12, 16) && !(zeros(12, 15) && b[15] === 1)) return v4(b, 12) // ::a.b.c.d (not :: or ::1)
  if (b.readUInt32BE(0) === 0x0064ff9b && zeros(4, 12)) return v4(b, 12) // 64:ff9b::a.b.c.d
  if (b.readUInt16BE(0) === 0x2002) return v4(b, 2) // 2002:aabb:ccdd::
  return null
}

/** Whether a webhook may connect to this IP address (v4 or v6, any textual form). */
export function isPublicAddress (address: string): boolean {
  const family = isIP(address)
  if (family === 4) return !refused.check(address, 'ipv4')
  if (family !== 6) return false
  const inner = embeddedIpv4(address)
  if (inner !== null) return !refused.check(inner, 'ipv4')
  return !refused.check(address, 'ipv6')
}

/** Raised for a target the SSRF rules refuse: never sent, not retried against the same address's rules. */
export class RefusedTargetError extends Error {
  override name = 'RefusedTargetError'
}

/** The host of a URL as `net` takes it (IPv6 without brackets). */
export function hostOf (url: URL): string {
  return url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
}

/** Refuses a URL whose host is an IP address the rules refuse (names are checked when they are resolved). */
export function checkLiteralTarget (url: URL): void {
  const host = hostOf(url)
  if (isIP(host) !== 0 && !isPublicAddress(host)) throw new RefusedTargetError(`${host} is a private, loopback, link-local or reserved address`)
}

export type Resolve = (hostname: string, callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void

/** The system resolver: every address of a name. */
export const systemResolve: Resolve = (hostname, callback) => { dnsLookup(hostname, { all: true }, callback) }

/**
 * A `lookup` for node's http(s).request that resolves the name once and hands
 * over only addresses the rules allow: the socket connects to exactly the
 * address checked here, so a name that resolves to a public address now and a
 * private one a moment later (DNS rebinding) cannot slip through.
 */
export function filteringLookup (resolve: Resolve = systemResolve): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, (err, addresses) => {
      if (err !== null) { callback(err, ''); return }
      const allowed = addresses.filter((a) => isPublicAddress(a.address))
      if (allowed.length === 0) {
        callback(new RefusedTargetError(`${hostname} resolves to ${addresses.map((a) => a.address).join(', ')}: private, loopback, link-local or reserved`), '')
        return
      }
      if (options.all === true) callback(null, allowed)
      else callback(null, (allowed[0] as LookupAddress).address, (allowed[0] as LookupAddress).family)
    })
  }
}
