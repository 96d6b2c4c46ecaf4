/**
 * The deployment files, checked for what matters: the GitHub workflows and
 * compose.yaml parse and have the structure the operations rely on, no secret
 * is written in them, and the Containerfile passes a real linter
 * (dockerfile-utils) and builds the image docs/operations.md describes.
 */
import t from 'tap'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { join } from 'node:path'
import { parse } from 'yaml'
import { DockerfileParser, type Instruction } from 'dockerfile-ast'
import { validate, ValidationSeverity } from 'dockerfile-utils'
import { rootDir } from '../src/infra/paths.ts'

type Doc = Record<string, any>

const read = (path: string): string => readFileSync(join(rootDir, path), 'utf8')
const yamlFile = (path: string): Doc => parse(read(path), { merge: true, strict: true, uniqueKeys: true }) as Doc

/** Values that are secrets themselves rather than references to them. */
const SECRET_NAME = /PASSWORD|SECRET|TOKEN|PRIVATE_KEY|API_KEY|AWS_KEY/i
function inlineSecrets (env: Record<string, unknown> | undefined): string[] {
  return Object.entries(env ?? {})
    .filter(([k, v]) => (SECRET_NAME.test(k) && !k.endsWith('_FILE') && !/^\$\{\{\s*secrets\.\w+\s*\}\}$/.test(String(v))) ||
      /-----BEGIN|postgres(ql)?:\/\/[^@/\s]+:[^@/\s]+@/.test(String(v)))
    .map(([k]) => k)
}

t.test('ci.yml: lint, typecheck and tests against a PostgreSQL service on Node 20, 22 and 24', async (t) => {
  const ci = yamlFile('.github/workflows/ci.yml')
  t.ok(ci.on.push !== undefined && 'pull_request' in ci.on, 'runs on pushes and pull requests')
  t.ok('workflow_call' in ci.on, 'and is reused by release.yml')
  const job = ci.jobs.test
  t.same(job.strategy.matrix.node, [20, 22, 24])
  const setupNode = job.steps.find((s: Doc) => String(s.uses).startsWith('actions/setup-node@'))
  t.equal(setupNode.with['node-version'], '${{ matrix.node }}') // eslint-disable-line no-template-curly-in-string
  const postgres = job.services.postgres
  t.match(postgres.image, /^postgres:\d+/)
  t.match(postgres.options, /--health-cmd "pg_isready/)
  t.match(job.env.TEST_DATABASE_URL, /^postgres:\/\/postgres@localhost:5432\//, 'the tests use the service')
  const runs = job.steps.map((s: Doc) => s.run).filter(Boolean) as string[]
  for (const script of ['npm ci', 'npm run lint', 'npm run typecheck', 'npm test']) t.ok(runs.some((r) => r.startsWith(script)), `runs ${script}`)
  t.ok(runs.some((r) => /apt-get install -y nginx pgbouncer/.test(r)), 'installs nginx and PgBouncer for the end-to-end tests')
  t.same(inlineSecrets({ ...job.env, ...postgres.env }), [], 'no secret in the file')
  t.equal(postgres.env.POSTGRES_HOST_AUTH_METHOD, 'trust', 'a throwaway server, no password at all')
})

t.test('release.yml: on version tags, CI first, then the image to GHCR, then the release', async (t) => {
  const release = yamlFile('.github/workflows/release.yml')
  t.same(release.on, { push: { tags: ['v*'] } })
  t.same(release.jobs.ci, { uses: './.github/workflows/ci.yml' })
  const image = release.jobs.image
  t.equal(image.needs, 'ci')
  t.equal(image.permissions.packages, 'write')
  const login = image.steps.find((s: Doc) => String(s.uses).startsWith('docker/login-action@'))
  t.equal(login.with.registry, 'ghcr.io')
  t.equal(login.with.password, '${{ secrets.GITHUB_TOKEN }}', 'the job\'s own token, nothing stored') // eslint-disable-line no-template-curly-in-string
  const build = image.steps.find((s: Doc) => String(s.uses).startsWith('docker/build-push-action@'))
  t.equal(build.with.file, 'Containerfile')
  t.equal(build.with.push, true)
  const rel = release.jobs.release
  t.equal(rel.needs, 'image')
  t.equal(rel.permissions.contents, 'write')
  t.ok(rel.steps.some((s: Doc) => /^gh release create "\$GITHUB_REF_NAME"/.test(s.run ?? '')), 'creates the release for the tag')
  for (const job of Object.values(release.jobs) as Doc[]) {
    for (const step of (job.steps ?? []) as Doc[]) t.same(inlineSecrets({ ...step.env, ...step.with }), [], `${step.name ?? step.uses}: no secret in the file`)
  }
})

t.test('compose.yaml: postgres with volume and healthcheck, one-shot migrate, two app replicas behind nginx, mail catcher, secrets as files', async (t) => {
  const compose = yamlFile('compose.yaml')
  const { postgres, migrate, app, nginx, mailpit } = compose.services
  t.ok(postgres && migrate && app && nginx && mailpit, 'the five services')

  t.match(postgres.image, /^postgres:\d+/)
  const [volume] = (postgres.volumes[0] as string).split(':')
  t.ok(volume !== undefined && volume in compose.volumes, 'data on a named volume')
  t.match(postgres.healthcheck.test.join(' '), /pg_isready/)
  t.equal(postgres.environment.POSTGRES_PASSWORD_FILE, '/run/secrets/postgres_password')

  t.same(migrate.command, ['npm', 'run', 'migrate'], 'migrations with the app\'s own image')
  t.equal(migrate.image, app.image)
  t.equal(migrate.build.dockerfile, 'Containerfile')
  t.equal(migrate.restart, 'no')
  t.equal(migrate.depends_on.postgres.condition, 'service_healthy')

  t.equal(app.depends_on.postgres.condition, 'service_healthy')
  t.equal(app.depends_on.migrate.condition, 'service_completed_successfully')
  t.equal(app.environment.MIGRATE_ON_START, 'false')
  t.equal(app.environment.TRUST_PROXY, '1', 'exactly one proxy hop')
  t.equal(app.ports, undefined, 'the app publishes no port: only nginx reaches it, so the one hop it trusts is nginx')
  t.equal(app.environment.POSTGRES_HOST, 'postgres', 'the migrate/app environment is shared (YAML merge)')
  t.equal(app.environment.MAIL_HOST, 'mailpit')
  t.ok(Number(app.environment.METRICS_PORT) > 0, 'metrics on a port of their own, not through nginx')
  t.ok(['open', 'domain', 'closed'].includes(app.environment.REGISTRATION), 'registration chosen explicitly, as production requires')
  const grace = Number(/^(\d+)s$/.exec(app.stop_grace_period)?.[1]) * 1000
  t.ok(grace > Number(app.environment.SHUTDOWN_DELAY) + Number(app.environment.SHUTDOWN_TIMEOUT), 'the pre-stop delay and the drain end before compose would SIGKILL')
  t.ok(app.deploy.replicas >= 2, 'several instances of the app on the one database')
  t.match(app.environment.PUBLIC_URL, /^https?:\/\//, 'one PUBLIC_URL for all replicas (production requires it)')
  t.notOk('container_name' in app, 'no fixed container name: replicas need their own')
  const conf = readFileSync(join(rootDir, 'deploy', 'nginx.conf'), 'utf8')
  t.match(conf, /server app:3000 resolve;/, 'nginx finds every replica behind the service name, re-resolved')
  const upstreamIdle = Number(/upstream roster \{[^}]*keepalive_timeout (\d+)s;/.exec(conf)?.[1]) * 1000
  t.ok(upstreamIdle < Number(app.environment.SHUTDOWN_DELAY), 'nginx drops its idle connections to a stopping instance before that one closes its listener')

  t.ok((nginx.ports as string[]).includes('80:80'))
  t.ok((nginx.volumes as string[]).includes('./deploy/nginx.conf:/etc/nginx/nginx.conf:ro'))
  t.ok(existsSync(join(rootDir, 'deploy', 'nginx.conf')))
  t.equal(nginx.depends_on.app.condition, 'service_healthy', 'the image\'s HEALTHCHECK gates nginx')
  t.match(mailpit.image, /mailpit/)
  t.ok((mailpit.ports as string[]).every((p) => p.startsWith('127.0.0.1:')), 'the mail UI on loopback only')

  for (const [name, service] of Object.entries(compose.services) as Array<[string, Doc]>) {
    t.same(inlineSecrets(service.environment), [], `${name}: no secret inline`)
    t.equal(service.env_file, undefined, `${name}: no env file to leak into`)
  }
  for (const [name, secret] of Object.entries(compose.secrets) as Array<[string, Doc]>) {
    t.match(secret.file, /^\.\/deploy\/secrets\//, `secret ${name} is a file under deploy/secrets`)
    t.notOk('environment' in secret || 'content' in secret, `secret ${name} is not a value`)
  }
  const referenced = new Set(Object.values(app.environment as Record<string, string>).filter((v) => v.startsWith('/run/secrets/')).map((v) => v.slice('/run/secrets/'.length)))
  t.same([...referenced].sort(), [...(app.secrets as string[])].sort(), 'every secret the app reads is mounted')
  t.match(read('.gitignore'), /^deploy\/secrets\/$/m, 'the secret files are never committed')
  t.match(read('.dockerignore'), /^deploy\/secrets$/m, 'nor sent to an image build')
})

function stages (file: string): Instruction[][] {
  const out: Instruction[][] = []
  for (const i of DockerfileParser.parse(file).getInstructions()) {
    if (i.getKeyword() === 'FROM') out.push([])
    out.at(-1)?.push(i)
  }
  return out
}

t.test('Containerfile: lint-clean, multi-stage, LTS slim, production dependencies only, non-root, healthcheck', async (t) => {
  const file = read('Containerfile')
  const problems = validate(file).filter((d) => d.severity === ValidationSeverity.ERROR || d.severity === ValidationSeverity.WARNING)
  t.same(problems.map((d) => `${d.range.start.line + 1}: ${d.message}`), [], 'dockerfile-utils finds nothing')
  t.ok(validate('FROM node:24-slim\nRUNN npm ci\nEXPOSE port\n').length >= 2, 'and the linter does find faults')

  const all = stages(file)
  t.ok(all.length >= 2, 'multi-stage')
  const final = all.at(-1) as Instruction[]
  const args = Object.fromEntries(DockerfileParser.parse(file).getARGs().map((a) => [a.getProperty()?.getName(), a.getProperty()?.getValue()]))
  const base = (final[0] as Instruction).getArgumentsContent()?.replace('${NODE_VERSION}', String(args.NODE_VERSION)) // eslint-disable-line no-template-curly-in-string
  t.match(base, /^node:(\d*[02468])-[a-z]*-?slim\b/, `final base ${base}: an even (LTS) Node, slim`)
  t.ok(Number(/^node:(\d+)/.exec(base ?? '')?.[1]) >= 24, 'the current LTS (24) or later')

  const of = (keyword: string): Instruction[] => final.filter((i) => i.getKeyword() === keyword)
  const runs = of('RUN').map((i) => i.getArgumentsContent() ?? '')
  t.ok(runs.some((r) => /\bnpm ci\b.*--omit=dev/.test(r)), 'npm ci --omit=dev in the final stage')
  t.notOk(runs.some((r) => /npm (ci|install)(?!.*--omit=dev)/.test(r)), 'no dev dependencies there')
  t.ok(of('COPY').some((i) => /--from=build .*\/app\/dist/.test(i.getTextContent())), 'the compiled dist/ from the build stage')
  t.ok(of('COPY').some((i) => /db\/migrations/.test(i.getTextContent())), 'the SQL migrations')
  const user = of('USER').at(-1)?.getArgumentsContent() ?? 'root'
  t.notMatch(user, /^(root|0)(:|$)/, `runs as ${user}, not root`)
  const health = of('HEALTHCHECK')[0]?.getTextContent() ?? ''
  t.match(health, /\/health\/ready/)
  t.notMatch(health, /curl|wget/, 'no tool the slim image lacks')
  t.match(of('CMD')[0]?.getTextContent(), /"node", "dist\/src\/server\.js"/, 'node itself as PID 1, so SIGTERM reaches the server')

  // What the build stage copies exists, and what the compiled code imports at run time is a production dependency.
  for (const i of (all[0] as Instruction[]).filter((x) => x.getKeyword() === 'COPY')) {
    for (const src of (i.getArguments().slice(0, -1)).map((a) => a.getValue())) t.ok(existsSync(join(rootDir, src)), `${src} exists`)
  }
  const pkg = JSON.parse(read('package.json')) as { dependencies: Record<string, string> }
  const files = (JSON.parse(read('tsconfig.build.json')) as { include: string[] }).include
  const sources = files.flatMap((dir) => readdirSync(join(rootDir, dir), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).map((f) => join(dir, f)))
  const imported = new Set<string>()
  for (const source of sources) {
    for (const [, spec] of read(source).matchAll(/^import (?!type )[^'"]*?from '([^.'][^']*)'/gm)) {
      const name = (spec as string).startsWith('@') ? (spec as string).split('/').slice(0, 2).join('/') : (spec as string).split('/')[0] as string
      if (!name.startsWith('node:') && !builtinModules.includes(name)) imported.add(name)
    }
  }
  t.ok(imported.size > 10, `${imported.size} packages imported by the compiled code`)
  t.same([...imported].filter((name) => pkg.dependencies[name] === undefined), [], 'all of them production dependencies')
})
