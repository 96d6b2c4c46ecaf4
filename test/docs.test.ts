/**
 * The documentation stays true to the tree: docs/configuration.md is what its
 * generator makes of the config schema, every relative link and anchor in the
 * README and docs/ resolves, every repository path the prose names exists, and
 * every environment variable it names is one the service reads.
 */
import t from 'tap'
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Type } from '@sinclair/typebox'
import { configDoc, writeConfigDoc, CONFIG_DOC, SECTIONS } from '../src/cli/config-doc.ts'
import { ConfigSchema, SECRET_VARIABLES } from '../src/config.ts'

const root = fileURLToPath(new URL('..', import.meta.url))
const docs = [
  'README.md',
  'bench/README.md',
  ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)
]
const read = (file: string): string => readFileSync(join(root, file), 'utf8')
/** The text outside fenced code blocks (examples and the target-layout tree are not checked). */
const prose = (text: string): string => text.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '')

/** GitHub's anchors for a file's headings (duplicates get -1, -2, …). */
function anchors (text: string): Set<string> {
  const seen = new Map<string, number>()
  const out = new Set<string>()
  for (const [, heading] of prose(text).matchAll(/^#{1,6} +(.+?) *#* *$/gm)) {
    const slug = (heading as string).toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-')
    const n = seen.get(slug) ?? 0
    seen.set(slug, n + 1)
    out.add(n === 0 ? slug : `${slug}-${n}`)
  }
  return out
}

t.test('docs/configuration.md is what `npm run docs:config` makes of the config schema', async (t) => {
  t.equal(CONFIG_DOC, join(root, 'docs', 'configuration.md'))
  const ok = read('docs/configuration.md') === configDoc()
  t.ok(ok, 'docs/configuration.md is out of date: run `npm run docs:config` and commit the result')
  const path = writeConfigDoc(join(mkdtempSync(join(tmpdir(), 'roster-docs-')), 'configuration.md'))
  t.equal(readFileSync(path, 'utf8'), configDoc(), 'writeConfigDoc writes configDoc()')
})

t.test('the configuration reference has a row and a section for every variable', async (t) => {
  const doc = configDoc()
  for (const name of Object.keys(ConfigSchema.properties)) t.match(doc, `| \`${name}\` |`, name)
  for (const name of SECRET_VARIABLES) t.match(doc, `\`${name}_FILE\``, `${name} may be a file`)
  t.match(doc, '| `NODE_ENV` | `development` | `development`, `production`, `test` |')
  t.match(doc, '| `PORT` | `3000` | integer 0–65535 |')
  t.match(doc, '| `MIGRATE_ON_START` | `true` | `true`, `false` |')
  t.match(doc, '| `CORS_ORIGINS` | (empty) | text |')
  t.match(doc, '| `SECRET_KEY` |  | text, at least 16 characters |')
  t.match(doc, /TRUST_PROXY` \| `false` \| text, matching `\^\(false\\\|true\\\|/, 'pipes in a cell are escaped')
})

t.test('the generator renders any schema and refuses one its sections do not fit', async (t) => {
  const doc = configDoc({
    ...Object.fromEntries(SECTIONS.map((s) => [s.first, Type.String()])),
    COUNT: Type.Integer({ default: 1 }),
    RATIO: Type.Number({ minimum: 0, maximum: 1, description: 'A\nfraction.' })
  }, [])
  t.match(doc, '| `NODE_ENV` |  | text |  |', 'no default, no description')
  t.match(doc, '| `COUNT` | `1` | integer |  |', 'an integer without bounds')
  t.match(doc, '| `RATIO` |  | number 0–1 | A fraction. |', 'a number, a description on one line')
  t.notMatch(doc, 'Secret: may be given', 'no secrets')
  t.throws(() => configDoc({ HOST: Type.String() }), /must start with NODE_ENV/)
  t.throws(() => configDoc({ NODE_ENV: Type.String() }), /section "Database" starts at DATABASE_URL/)
})

t.test('every relative link and anchor in the README and docs/ resolves', async (t) => {
  for (const file of docs) {
    const text = prose(read(file))
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target as string)) continue
      const [path, anchor] = (target as string).split('#') as [string, string | undefined]
      const abs = path === '' ? join(root, file) : join(root, dirname(file), path)
      t.ok(existsSync(abs), `${file}: link to ${target} (${relative(root, abs)} exists)`)
      if (anchor !== undefined && abs.endsWith('.md') && existsSync(abs)) {
        t.ok(anchors(readFileSync(abs, 'utf8')).has(anchor), `${file}: link to ${target} (anchor exists)`)
      }
    }
  }
})

t.test('every repository path the docs name exists', async (t) => {
  // Made at run time, never committed.
  const generated = /^(bench\/results\/|deploy\/secrets\/)/
  // The README's Layout section describes the layout of issue 13 ("One house"), built on
  // another branch: its paths are checked once that layout is in the tree (src/infra/).
  const layoutLanded = existsSync(join(root, 'src', 'infra'))
  for (const file of docs) {
    let text = prose(read(file))
    if (file === 'README.md' && !layoutLanded) text = text.replace(/^## Layout\n[\s\S]*?(?=^## )/m, '')
    for (const [, path] of text.matchAll(/(?<![\w/.<-])((?:src|test|bench|plugins|routes|schemas|db|deploy|docs)\/[\w./-]*\w\/?)/g)) {
      if (generated.test(path as string)) continue
      t.ok(existsSync(join(root, path as string)), `${file} names ${path}`)
    }
  }
})

t.test('every environment variable the docs name is one the service reads', async (t) => {
  const known = new Set<string>([
    ...Object.keys(ConfigSchema.properties),
    ...SECRET_VARIABLES.map((name) => `${name}_FILE`),
    // read by the tests, not by the service
    'TEST_DATABASE_URL', 'DRAIN_LOAD_MS', 'FUZZ_RUNS',
    // the Containerfile's build argument; the placeholder of "any secret as a file"
    'NODE_VERSION', 'NAME_FILE'
  ])
  for (const file of docs) {
    for (const [, name] of prose(read(file)).matchAll(/`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)(?=[`=])/g)) {
      if ((name as string).startsWith('ROSTER_')) continue // error codes
      t.ok(known.has(name as string), `${file} names ${name}`)
    }
  }
})
