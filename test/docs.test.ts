/** docs/configuration.md is what its generator makes of the config schema. */
import t from 'tap'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Type } from '@sinclair/typebox'
import { configDoc, writeConfigDoc, CONFIG_DOC, SECTIONS } from '../src/cli/config-doc.ts'
import { ConfigSchema, SECRET_VARIABLES } from '../src/config.ts'

const root = fileURLToPath(new URL('..', import.meta.url))
const read = (file: string): string => readFileSync(join(root, file), 'utf8')

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
