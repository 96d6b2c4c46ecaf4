import { createRequire } from 'node:module'

/**
 * node-postgres, loaded without its Cloudflare probe: the server's entry
 * (src/server.ts) imports this module first, so that every later import of
 * `pg` (ours, @fastify/postgres's) finds it loaded.
 *
 * pg asks at load time whether it runs in a Cloudflare Worker: by
 * `navigator.userAgent` where `navigator` exists (Node >= 21), else by
 * constructing a `Response`, which on Node 20 loads Node's whole fetch
 * implementation (undici) into a process that never uses it: about 5 MB of
 * an idle instance's resident memory (bench/README "Memory"). So on Node 20,
 * `navigator` is defined, as Node 21 and later define it, while pg loads, and
 * removed again.
 */
const absent = !('navigator' in globalThis)
/* c8 ignore next -- Node >= 21 has navigator (CI's 22 and 24, the image's 24) */
if (absent) Object.defineProperty(globalThis, 'navigator', { value: { userAgent: `Node.js/${process.versions.node.replace(/\..*/, '')}` }, configurable: true })
createRequire(import.meta.url)('pg')
/* c8 ignore next -- as above */
if (absent) Reflect.deleteProperty(globalThis, 'navigator')
