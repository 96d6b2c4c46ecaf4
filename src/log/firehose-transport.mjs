/**
 * Worker-thread entry of the Firehose transport when Roster runs from its
 * TypeScript sources (`npm run dev`, tests); the build runs
 * dist/src/log/firehose-transport.js directly. A TypeScript loader given to
 * the worker (tap's) loads the .ts file; tsx does not register itself in
 * worker threads before Node 22.14, so then tsx's API loads it.
 */
let mod
try {
  mod = await import('./firehose-transport.ts')
} catch (err) {
  /* c8 ignore next 4 -- only under tsx on Node < 22.14 (npm run dev); the tests run it under tap's loader, test/log/server.test.ts checks `tsx src/server.ts` */
  if (err.code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw err
  const { tsImport } = await import('tsx/esm/api')
  mod = await tsImport('./firehose-transport.ts', import.meta.url)
}
export default mod.default
