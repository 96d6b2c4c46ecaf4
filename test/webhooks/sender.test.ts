/** The sender against real sockets: long answers cut at 1 KiB, answers broken off, TLS to a peer that does not speak it. */
import t from 'tap'
import { createServer as createHttpServer } from 'node:http'
import { createServer as createTcpServer, type AddressInfo, type Server } from 'node:net'
import { createSender, RESPONSE_LIMIT } from '../../src/webhooks/sender.ts'

const SECRET = 'whsec_' + Buffer.alloc(32, 3).toString('base64')
const send = createSender({ timeout: 10_000, allowPrivate: true })

async function listening (server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as AddressInfo).port
}

t.test('an answer longer than 1 KiB is kept to its first 1 KiB', async (t) => {
  const server = createHttpServer((req, res) => { req.resume(); res.writeHead(200).end('x'.repeat(100_000)) })
  t.after(() => { server.close() })
  const port = await listening(server)
  const result = await send({ url: `http://127.0.0.1:${port}/`, id: 'msg_big', body: '{}', secrets: [SECRET] })
  t.match(result, { ok: true, statusCode: 200, error: null })
  t.equal(result.response?.length, RESPONSE_LIMIT)
})

t.test('an answer broken off mid-body fails with its status', async (t) => {
  const server = createHttpServer((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-length': '1000' })
    res.write('partial', () => { res.socket?.destroy() })
  })
  t.after(() => { server.close() })
  const port = await listening(server)
  t.match(await send({ url: `http://127.0.0.1:${port}/`, id: 'msg_cut', body: '{}', secrets: [SECRET] }), { ok: false, statusCode: 200, error: /closed before the answer ended|aborted/ })
})

t.test('https to a peer that does not speak TLS fails; nothing is left open', async (t) => {
  const server = createTcpServer((socket) => { socket.end('HTTP/1.1 200 OK\r\n\r\n') })
  t.after(() => { server.close() })
  const port = await listening(server)
  t.match(await send({ url: `https://127.0.0.1:${port}/`, id: 'msg_tls', body: '{}', secrets: [SECRET] }), { ok: false, statusCode: null, error: /SSL|TLS|wrong version|packet length/i })
})

t.test('a refused connection fails with the reason', async (t) => {
  const server = createTcpServer()
  const port = await listening(server)
  await new Promise((resolve) => server.close(resolve))
  t.match(await send({ url: `http://127.0.0.1:${port}/`, id: 'msg_refused', body: '{}', secrets: [SECRET] }), { ok: false, statusCode: null, error: /ECONNREFUSED/ })
})
