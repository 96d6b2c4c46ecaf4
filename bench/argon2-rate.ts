/**
 * The login ceiling: how many argon2id verifications per second this machine
 * does at the configured cost, with as many in flight as the server would
 * have (libuv's thread pool), and the CPU time one verification takes (this
 * process's user + system time, every thread, divided by the verifications).
 * Prints JSON.
 */
import { hash, verify } from '@node-rs/argon2'

const [seconds = '5', memoryCost = '19456', timeCost = '2', parallelism = '1'] = process.argv.slice(2)
const params = { memoryCost: Number(memoryCost), timeCost: Number(timeCost), parallelism: Number(parallelism) }
const stored = await hash('correct horse battery staple', params)
const deadline = Date.now() + Number(seconds) * 1000
let done = 0
const start = Date.now()
const cpu = process.cpuUsage()
async function worker (): Promise<void> {
  while (Date.now() < deadline) {
    await verify(stored, 'correct horse battery staple')
    done++
  }
}
await Promise.all(Array.from({ length: 10 }, async () => { await worker() }))
const used = process.cpuUsage(cpu)
process.stdout.write(`${JSON.stringify({ verifications: done, rate: done / ((Date.now() - start) / 1000), cpuMsPerVerify: (used.user + used.system) / 1000 / done })}\n`)
