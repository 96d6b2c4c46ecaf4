/**
 * End to end through real nginx (Debian's package; .ci/run installs it) running
 * deploy/nginx.conf, with only its upstream and listen address templated, in
 * front of the app listening on a real socket with TRUST_PROXY=1, as in compose.
 */
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build, waitUntil } from './helper.ts'
import { freePort } from '../db/embedded.ts'
import { rootDir } from '../src/infra/paths.ts'
import { NGINX, templateNginxConf } from './fleet/peers.ts'

interface Answer { status: number, headers: http.IncomingHttpHeaders, body: string }

function send (port: number, path: string, opts: { method?: string, headers?: Record<string, string>, body?: string, localAddress?: string, agent?: http.Agent } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers, localAddress: opts.localAddress, agent: opts.agent ?? false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => resolve({ status: res.statusCode as number, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end(opts.body)
  })
}

t.test('through nginx: requests pass, the client IP is the one nginx saw, a forged X-Forwarded-For is not believed', async (t) => {
  if (NGINX === undefined) throw new Error('nginx is not installed: `apt-get install -y nginx` (.ci/run installs it when missing)')

  const app = await build(t, {
    env: { TRUST_PROXY: '1', HOST: '127.0.0.1' },
    extend (app) {
      // Test-only: what the app believes about the client (rate limiting keys on request.ip too).
      app.get('/test/client', { config: { public: true } }, async (request) => ({
        ip: request.ip, ips: request.ips, protocol: request.protocol, host: request.host, id: request.id, peerPort: request.raw.socket.remotePort
      }))
      app.post('/test/body', { config: { public: true } }, async (request) => ({ length: JSON.stringify(request.body).length }))
    }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const appPort = (app.server.address() as AddressInfo).port

  const dir = mkdtempSync(join(tmpdir(), 'roster-nginx-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const port = await freePort()
  const conf = join(dir, 'nginx.conf')
  writeFileSync(conf, templateNginxConf(readFileSync(join(rootDir, 'deploy', 'nginx.conf'), 'utf8'), [`127.0.0.1:${appPort}`], `127.0.0.1:${port}`, dir))
  const args = ['-p', dir, '-c', conf, '-e', join(dir, 'error.log'), '-g', `daemon off; pid ${join(dir, 'nginx.pid')};`]
  const check = spawnSync(NGINX, ['-t', ...args], { encoding: 'utf8' })
  t.equal(check.status, 0, `nginx -t accepts the configuration: ${check.stderr}`)

  const nginx = spawn(NGINX, args, { stdio: 'ignore' })
  t.teardown(() => { nginx.kill('SIGQUIT') })
  const errors = (): string => existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : ''
  for (let i = 0; i < 100; i++) {
    if (await send(port, '/health/live').then(() => true, () => false)) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }

  // Requests pass, with the app's answer and headers intact.
  const root = await send(port, '/')
  t.equal(root.status, 200, errors())
  t.same(JSON.parse(root.body), { name: 'roster', version: '1.0.0', docs: '/apidocs' })
  t.equal(root.headers['x-content-type-options'], 'nosniff')
  t.equal(root.headers.server, 'nginx', 'no version in Server')

  // The client IP: the address nginx saw, never what the client wrote in X-Forwarded-For.
  const forged = await send(port, '/test/client', { localAddress: '127.0.0.2', headers: { 'x-forwarded-for': '6.6.6.6', host: 'roster.test' } })
  const seen = JSON.parse(forged.body) as { ip: string, ips: string[], protocol: string, host: string, id: string, peerPort: number }
  t.equal(seen.ip, '127.0.0.2', 'request.ip is the address that connected to nginx')
  t.same(seen.ips, ['127.0.0.1', '127.0.0.2'], 'one proxy hop believed: nginx itself, then its client; 6.6.6.6 is not')
  t.equal(seen.protocol, 'http')
  t.equal(seen.host, 'roster.test', 'the Host the client asked for')
  const logged = app.logs.lines.find((l) => l.reqId === seen.id && l.msg === 'incoming request') as { req: { remoteAddress: string, host: string } }
  t.equal(logged.req.remoteAddress, '127.0.0.2', 'and the request log says the same')
  t.equal(logged.req.host, 'roster.test')
  const other = JSON.parse((await send(port, '/test/client', { localAddress: '127.0.0.3' })).body) as { ip: string }
  t.equal(other.ip, '127.0.0.3', 'another client, another address')
  const direct = JSON.parse((await send(appPort, '/test/client', { headers: { 'x-forwarded-for': '6.6.6.6' } })).body) as { ip: string }
  t.equal(direct.ip, '6.6.6.6', 'the same header sent past nginx would be believed: the app must be reachable only through it')

  // Request ids: a sane one is passed through; a missing or odd one is made by nginx; all three logs agree.
  const kept = await send(port, '/test/client', { headers: { 'x-request-id': 'client-id-123' } })
  t.equal(kept.headers['x-request-id'], 'client-id-123')
  t.equal((JSON.parse(kept.body) as { id: string }).id, 'client-id-123')
  const made = await send(port, '/test/client')
  const madeId = made.headers['x-request-id'] as string
  t.match(madeId, /^[0-9a-f]{32}$/, 'nginx\'s $request_id')
  t.equal((JSON.parse(made.body) as { id: string }).id, madeId, 'the app uses it')
  const odd = await send(port, '/test/client', { headers: { 'x-request-id': 'has spaces and "quotes"' } })
  t.match(odd.headers['x-request-id'], /^[0-9a-f]{32}$/, 'an odd id is replaced before it reaches the app')
  const accessLines = (): Array<{ requestId: string, status: number, uri: string, remoteAddr: string }> => readFileSync(join(dir, 'access.log'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
  await waitUntil(() => accessLines().some((l) => l.requestId === madeId), { timeout: 10_000 }).catch(() => {}) // asserted below
  t.ok(accessLines().some((l) => l.requestId === madeId && l.status === 200 && l.uri === '/test/client'), 'nginx\'s JSON access log has the same id')
  t.ok(accessLines().some((l) => l.requestId === 'client-id-123' && l.remoteAddr === '127.0.0.1'))

  // Upstream keep-alive: one client connection's requests reuse one connection to the app.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  const peers = new Set<number>()
  for (let i = 0; i < 5; i++) peers.add((JSON.parse((await send(port, '/test/client', { agent })).body) as { peerPort: number }).peerPort)
  agent.destroy()
  t.equal(peers.size, 1, 'nginx reuses its connection to the app')

  // Bodies: up to BODY_LIMIT they reach the app; beyond, nginx refuses them in the API's format.
  const fits = await send(port, '/test/body', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ s: 'x'.repeat(12_000) }) })
  t.equal(fits.status, 200, 'a 12 kB body passes (buffered in memory, never on disk)')
  const bodyRequests = app.logs.lines.filter((l) => (l.req as { url?: string } | undefined)?.url === '/test/body').length
  const tooLarge = await send(port, '/test/body', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ s: 'x'.repeat(20_000) }) })
  t.equal(tooLarge.status, 413)
  t.match(tooLarge.headers['content-type'], /^application\/problem\+json/)
  t.match(JSON.parse(tooLarge.body), { status: 413, code: 'ROSTER_BODY_TOO_LARGE' })
  t.equal(app.logs.lines.filter((l) => (l.req as { url?: string } | undefined)?.url === '/test/body').length, bodyRequests, 'the app never saw it')

  // Nothing under /metrics is served to the outside, however the path is written.
  for (const path of ['/metrics', '/metrics/', '/metrics?x=1', '/metrics/x', '//metrics', '/./metrics', '/%6detrics', '/%6Detrics/', '/x/../metrics', '/metrics;a', '/metricsfoo']) {
    for (const method of ['GET', 'HEAD', 'POST']) {
      const metrics = await send(port, path, { method })
      t.equal(metrics.status, 404, `${method} ${path}`)
      if (method === 'GET') t.match(JSON.parse(metrics.body), { code: 'ROSTER_ROUTE_NOT_FOUND' })
    }
  }
  t.equal((await send(appPort, '/metrics')).status, 200, 'while the app itself serves it (METRICS_PORT=0, outside production)')
  t.equal((await send(appPort, '/metrics/')).status, 200, 'at /metrics/ too: which is why nginx blocks the prefix')

  // The app gone: nginx answers 503 problem+json with Retry-After.
  await app.close()
  const down = await send(port, '/')
  t.equal(down.status, 503)
  t.equal(down.headers['retry-after'], '5')
  t.match(JSON.parse(down.body), { status: 503, code: 'ROSTER_SERVICE_UNAVAILABLE' })
})
