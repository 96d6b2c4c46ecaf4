import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { rootDir } from './paths.ts'

export interface PackageInfo { name: string, version: string }

let cached: PackageInfo | undefined

export function readPackage (): PackageInfo {
  cached ??= JSON.parse(readFileSync(join(rootDir, 'package.json'), 'utf8')) as PackageInfo
  return cached
}
