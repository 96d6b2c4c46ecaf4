import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, normalize, relative } from 'node:path'
import { rootDir } from '../src/infra/paths.ts'

/**
 * The house's one-way imports (STYLE.md, "One shape for every domain"):
 * routes -> plugins -> src/<domain> -> src/infra -> db, schemas as leaves.
 * Read from the import lines of every source file.
 */

const DOMAINS = ['admins', 'sessions', 'users', 'groups', 'scim', 'audit', 'mail', 'log', 'metrics', 'clients', 'mfa', 'invitations', 'retention', 'webhooks']

interface Import { file: string, target: string, typeOnly: boolean }

function sources (dir: string): string[] {
  return readdirSync(join(rootDir, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.(ts|mts|mjs)$/.test(e.name) && !e.name.endsWith('.d.ts'))
    .map((e) => relative(rootDir, join(e.parentPath, e.name)))
}

/** Every import and re-export of a file; `target` a path from the root for relative specifiers, else the package name. */
function importsOf (file: string): Import[] {
  const text = readFileSync(join(rootDir, file), 'utf8')
  const found: Import[] = []
  for (const m of text.matchAll(/^(?:import|export)\s+(type\s+)?(?:[^'"]*?\sfrom\s+)?'([^']+)'|\bimport\(\s*'([^']+)'\s*\)/gm)) {
    const specifier = (m[2] ?? m[3]) as string
    const target = specifier.startsWith('.') ? normalize(join(dirname(file), specifier)) : specifier
    found.push({ file, target, typeOnly: m[1] !== undefined })
  }
  return found
}

const all = ['src', 'plugins', 'routes', 'schemas'].flatMap(sources).flatMap(importsOf)
const domainOf = (path: string): string | undefined => DOMAINS.find((d) => path.startsWith(`src/${d}/`))
const offending = (rule: (i: Import) => boolean): string[] => all.filter(rule).map((i) => `${i.file} imports ${i.target}`)

t.test('the scan sees the tree', async (t) => {
  t.ok(all.length > 100, `${all.length} imports read`)
  t.ok(all.some((i) => i.file === 'routes/users/index.ts' && i.target === 'schemas/users.ts'), 'relative specifiers resolve from the root')
})

t.test('src/ imports no plugin, but for the app and the server (the edge plugins)', async (t) => {
  t.same(offending((i) => i.file.startsWith('src/') && !/^src\/(app|server[^/]*)\.ts$/.test(i.file) && i.target.startsWith('plugins/')), [])
})

t.test('schemas import nothing but TypeBox and each other', async (t) => {
  t.same(offending((i) => i.file.startsWith('schemas/') && i.target !== '@sinclair/typebox' && !i.target.startsWith('schemas/')), [])
})

t.test('infrastructure imports no domain, plugin or route', async (t) => {
  t.same(offending((i) => i.file.startsWith('src/infra/') && (domainOf(i.target) !== undefined || /^(plugins|routes|src\/cli)\//.test(i.target))), [])
})

t.test('a domain imports no route or plugin, and other domains only as types', async (t) => {
  t.same(offending((i) => domainOf(i.file) !== undefined && /^(plugins|routes)\//.test(i.target)), [])
  t.same(offending((i) => {
    const from = domainOf(i.file)
    const to = domainOf(i.target)
    return from !== undefined && to !== undefined && from !== to && !i.typeOnly
  }), [])
})

t.test('plugins import no route', async (t) => {
  t.same(offending((i) => i.file.startsWith('plugins/') && i.target.startsWith('routes/')), [])
})
