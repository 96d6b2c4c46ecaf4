/**
 * SSRF: webhooks never reach private, loopback, link-local or reserved
 * addresses (IPv4, IPv6 and the IPv6 forms embedding IPv4), whether named by
 * an IP literal or by a name resolving to one; a real receiver on 127.0.0.1
 * proves nothing reaches it. WEBHOOK_ALLOW_PRIVATE=true lifts the rules.
 */
import t from 'tap'
import { filteringLookup, isPublicAddress } from '../../src/webhooks/targets.ts'
import { createSender } from '../../src/webhooks/sender.ts'
import { build, createAdmin, loginAs } from '../helper.ts'
import { Receiver } from './helpers.ts'

const SECRET = 'whsec_' + Buffer.alloc(32, 7).toString('base64')

t.test('the address rules', async (t) => {
  const refused = [
    '0.0.0.0', '10.1.2.3', '100.64.0.1', '127.0.0.1', '127.255.255.254', '169.254.169.254', '172.16.0.1', '172.31.255.255',
    '192.0.0.8', '192.0.2.1', '192.168.1.1', '198.18.0.1', '198.51.100.7', '203.0.113.9', '224.0.0.251', '239.1.1.1', '240.0.0.1', '255.255.255.255',
    '::', '::1', 'fe80::1', 'fe80::1%eth0', 'fc00::1', 'fd12:3456::1', 'ff02::1', 'fec0::1', '2001:db8::1', '100::1', '2001::1',
    '::ffff:127.0.0.1', '::ffff:7f00:1', '::FFFF:10.0.0.1', '::ffff:a9fe:a9fe', '0:0:0:0:0:ffff:c0a8:0101', '::127.0.0.1', '::a00:1',
    '64:ff9b::a00:1', '64:ff9b::169.254.169.254', '2002:7f00:1::', '2002:c0a8:101::1',
    'not an address', ''
  ]
  const allowed = ['1.1.1.1', '8.8.8.8', '93.184.216.34', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '64:ff9b::808:808', '2002:808:808::1', '2a00:1450::1']
  for (const a of refused) t.notOk(isPublicAddress(a), `${a} refused`)
  for (const a of allowed) t.ok(isPublicAddress(a), `${a} allowed`)
})

t.test('a sender with the rules on: refused before any byte is sent, by literal or by name', async (t) => {
  const receiver = new Receiver()
  const url = new URL(await receiver.listen())
  t.after(async () => { await receiver.close() })
  const port = url.port
  const resolveTo = (addresses: string[]) => (_host: string, cb: (err: NodeJS.ErrnoException | null, a: Array<{ address: string, family: number }>) => void) => {
    cb(null, addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })))
  }
  const send = createSender({ timeout: 2000, allowPrivate: false })
  for (const target of [
    `http://127.0.0.1:${port}/hook`, `http://[::1]:${port}/hook`, `http://[::ffff:127.0.0.1]:${port}/hook`, `http://[::ffff:7f00:1]:${port}/hook`,
    `http://2130706433:${port}/hook`, `http://0x7f.1:${port}/hook`, `http://127.1:${port}/hook`, `http://[64:ff9b::7f00:1]:${port}/hook`,
    `http://localhost:${port}/hook`
  ]) {
    const result = await send({ url: target, id: 'msg_1', body: '{}', secrets: [SECRET] })
    t.match(result, { ok: false, statusCode: null, error: /^refused: / }, `${target} refused`)
  }
  // Names resolving to private addresses (a resolver standing in for DNS: no traffic leaves the machine).
  for (const addresses of [['10.0.0.5'], ['169.254.169.254'], ['fe80::1'], ['fd00::1', '127.0.0.1'], ['::ffff:192.168.0.1']]) {
    const sendVia = createSender({ timeout: 2000, allowPrivate: false, resolve: resolveTo(addresses) })
    const result = await sendVia({ url: `http://hooks.example.test:${port}/hook`, id: 'msg_2', body: '{}', secrets: [SECRET] })
    t.match(result, { ok: false, error: new RegExp(`^refused: hooks.example.test resolves to ${addresses.join(', ')}`) }, `a name resolving to ${addresses.join(', ')} refused`)
  }
  const failing = createSender({ timeout: 2000, allowPrivate: false, resolve: (_h, cb) => { cb(Object.assign(new Error('getaddrinfo ENOTFOUND nowhere.test'), { code: 'ENOTFOUND' }), []) } })
  t.match(await failing({ url: 'http://nowhere.test/hook', id: 'msg_3', body: '{}', secrets: [SECRET] }), { ok: false, error: /ENOTFOUND/ }, 'a name that does not resolve fails (and is retried)')
  t.equal(receiver.received.length, 0, 'the receiver on 127.0.0.1 got nothing')

  // A name resolving to a mix: the socket is handed only the allowed addresses, the very ones it connects to.
  const lookup = filteringLookup(resolveTo(['10.0.0.1', '93.184.216.34', '::1', '2606:4700::1']))
  const one = await new Promise((resolve) => { lookup('mixed.test', { all: false }, (err, address, family) => { resolve({ err, address, family }) }) })
  t.same(one, { err: null, address: '93.184.216.34', family: 4 })
  const all = await new Promise((resolve) => { lookup('mixed.test', { all: true }, (err, addresses) => { resolve({ err, addresses }) }) })
  t.same(all, { err: null, addresses: [{ address: '93.184.216.34', family: 4 }, { address: '2606:4700::1', family: 6 }] })
  const open = createSender({ timeout: 2000, allowPrivate: true })
  t.match(await open({ url: url.href, id: 'msg_4', body: '{}', secrets: [SECRET] }), { ok: true, statusCode: 204 }, 'WEBHOOK_ALLOW_PRIVATE lets it through')
  t.equal(receiver.received.length, 1)
})

t.test('the API refuses private literal targets and plain http unless WEBHOOK_ALLOW_PRIVATE=true', async (t) => {
  const app = await build(t)
  const session = await loginAs(app, await createAdmin(app))
  const post = async (url: string): Promise<{ statusCode: number, body: string }> =>
    await app.inject({ method: 'POST', url: '/webhooks', headers: session.headers, payload: { url, events: ['user.created'] } })
  for (const url of ['https://127.0.0.1/hook', 'https://[::1]/hook', 'https://[::ffff:10.0.0.1]/hook', 'https://169.254.169.254/latest', 'https://2130706433/']) {
    const res = await post(url)
    t.equal(res.statusCode, 422, `${url}: 422`)
    t.match(JSON.parse(res.body), { code: 'ROSTER_UNPROCESSABLE', detail: /refused: .*WEBHOOK_ALLOW_PRIVATE/ })
  }
  t.match(JSON.parse((await post('http://hooks.example.com/')).body), { code: 'ROSTER_UNPROCESSABLE', detail: /must use https/ })
  t.equal((await post('https://hooks.example.com/roster')).statusCode, 201, 'a public https name is accepted (checked again when resolved at delivery)')
  const created = JSON.parse((await post('https://hooks.example.com/other')).body) as { id: string }
  const patched = await app.inject({ method: 'PATCH', url: `/webhooks/${created.id}`, headers: session.headers, payload: { url: 'https://10.0.0.1/' } })
  t.equal(patched.statusCode, 422, 'a PATCH is checked too')
})
