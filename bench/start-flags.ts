import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { rootDir } from '../src/infra/paths.ts'

/**
 * The Node options `npm start` runs the server with (package.json's start
 * script, between `node` and the script): the benchmarks start Roster the same
 * way, and the Containerfile's CMD carries the same ones (test/deploy.test.ts).
 */
export function startFlags (): string[] {
  const pkg = JSON.parse(readFileSync(join(rootDir, 'package.json'), 'utf8')) as { scripts: { start: string } }
  const words = pkg.scripts.start.trim().split(/\s+/)
  return words.slice(words.indexOf('node') + 1, words.indexOf('dist/src/server.js'))
}
