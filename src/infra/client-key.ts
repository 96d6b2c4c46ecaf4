import { isIPv6 } from 'node:net'

/**
 * THE key of a client address, wherever requests are counted per client (the
 * login lockout, src/sessions/throttle.ts; the /auth rate limit,
 * ./rate-limit-store.ts): an IPv4 address as is; an IPv6 address by its /64
 * prefix, since one subscriber holds a whole /64 and could otherwise take a
 * fresh budget from each of its 2^64 addresses. IPv4-mapped IPv6 is IPv4.
 */
export function clientKey (ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)
  if (mapped !== null) return mapped[1] as string
  if (!isIPv6(ip)) return ip
  const [address = ''] = ip.split('%')
  const [head = '', tail = ''] = address.split('::')
  const left = head === '' ? [] : head.split(':')
  const right = tail === '' ? [] : tail.split(':')
  const groups = ip.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left
  return `${groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`
}
