/**
 * Worker-thread entry of the Firehose transport when Roster runs from its
 * TypeScript sources (`npm run dev`, tests); the build runs
 * dist/src/log/firehose-transport.js directly. A TypeScript loader given to
 * the worker (tap's, or tsx from Node 22.14 on) loads the .ts file; tsx does
 * not register itself in worker threads on older Node, so then tsx's API does.
 */
let mod
try {
  mod = await import('./firehose-transport.ts')
/* c8 ignore start -- only under tsx on Node < 22.14 (npm run dev); the tests run it under tap's loader */
} catch (err) {
  if (err.code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw err
  const { tsImport } = await import('tsx/esm/api')
  mod = await tsImport('./firehose-transport.ts', import.meta.url)
}
/* c8 ignore stop */
export default mod.default
