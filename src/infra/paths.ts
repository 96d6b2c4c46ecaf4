import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The project root (the folder holding package.json), from source or from dist/. */
function findRoot (start: string): string {
  let dir = start
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir)
  return dir
}

export const rootDir = findRoot(dirname(fileURLToPath(import.meta.url)))
export const migrationsDir = join(rootDir, 'db', 'migrations')
export const resolveFromRoot = (p: string): string => resolve(rootDir, p)
