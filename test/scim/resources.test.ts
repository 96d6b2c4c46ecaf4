/**
 * SCIM Users and Groups beyond the providers' sequences: discovery,
 * authentication, content types, every error's status and scimType, ETag and
 * If-Match, paging, sorting, attributes / excludedAttributes, and the PATCH
 * operations and value paths one by one.
 */
import t from 'tap'
import { clientToken, createClient } from '../access/helpers.ts'
import { ERROR, GROUP, PATCH_OP, scimError, scimFixture, USER } from './helpers.ts'

interface UserJson { id: string, userName: string, active: boolean, displayName?: string, name?: Record<string, string>, emails: Array<{ value: string }>, externalId?: string, meta: { version: string } }
const patch = (...Operations: unknown[]): unknown => ({ schemas: [PATCH_OP], Operations })

t.test('discovery, authentication and content types', async (t) => {
  const { app, owner, scim } = await scimFixture(t)
  const config = await scim('GET', '/ServiceProviderConfig')
  t.match(config.json(), { patch: { supported: true }, filter: { supported: true, maxResults: 200 }, sort: { supported: true }, etag: { supported: true }, bulk: { supported: false }, authenticationSchemes: [{ type: 'oauthbearertoken' }] })
  const types = await scim('GET', '/ResourceTypes')
  t.match(types.json(), { totalResults: 2, Resources: [{ id: 'User', endpoint: '/Users' }, { id: 'Group', endpoint: '/Groups' }] })
  t.match((await scim('GET', '/ResourceTypes/Group')).json(), { schema: GROUP })
  t.equal((await scim('GET', '/ResourceTypes/Role')).statusCode, 404)
  const schemas = await scim('GET', '/Schemas')
  t.same(schemas.json<{ Resources: Array<{ id: string }> }>().Resources.map((s) => s.id), [USER, GROUP])
  const user = await scim('GET', `/Schemas/${USER.toLowerCase()}`)
  t.match(user.json(), { name: 'User', attributes: [{ name: 'userName', required: true, uniqueness: 'server' }] })
  t.equal(scimError(await scim('GET', '/Schemas/urn:x')).status, '404')
  t.match(scimError(await scim('GET', '/Bulk')), { status: '404', detail: /No route GET \/scim\/v2\/Bulk/ }, 'an unknown path is a SCIM 404')

  const anonymous = await app.inject({ url: '/scim/v2/Users' })
  t.equal(anonymous.statusCode, 401)
  t.match(scimError(anonymous).detail, /access token is required/)
  const admin = await app.inject({ url: '/scim/v2/Users', headers: owner.headers })
  t.equal(admin.statusCode, 403, 'not even an owner: SCIM is for API clients with scope scim')
  t.match(scimError(admin).detail, /permission scim/)
  const other = await clientToken(app, await createClient(app, owner, ['users:read', 'users:write'], 'not scim'))
  t.equal(scimError(await app.inject({ url: '/scim/v2/Groups', headers: other })).status, '403')

  const plain = await app.inject({ method: 'POST', url: '/scim/v2/Users', headers: { ...(await clientToken(app, await createClient(app, owner, ['scim'], 'json'))), 'content-type': 'application/json' }, payload: JSON.stringify({ schemas: [USER], userName: 'json@example.com' }) })
  t.equal(plain.statusCode, 201, 'application/json bodies are taken too')
  t.match(plain.headers['content-type'], /^application\/scim\+json; charset=utf-8$/)
  const scimClient = await clientToken(app, await createClient(app, owner, ['scim'], 'raw'))
  const text = await app.inject({ method: 'POST', url: '/scim/v2/Users', headers: { ...scimClient, 'content-type': 'application/xml' }, payload: '<User/>' })
  t.equal(scimError(text).status, '415')
  const broken = await app.inject({ method: 'POST', url: '/scim/v2/Users', headers: { ...owner.headers, 'content-type': 'application/scim+json' }, payload: '{"schemas":' })
  t.equal(broken.statusCode, 403, 'authentication comes first')
  const bad = await scim('POST', '/Users', undefined, { 'content-type': 'application/scim+json' })
  t.match(scimError(bad), { status: '400' })
  const truncated = await app.inject({ method: 'POST', url: '/scim/v2/Users', headers: { ...scimClient, 'content-type': 'application/scim+json' }, payload: '{"schemas":' })
  t.match(scimError(truncated), { status: '400', scimType: 'invalidSyntax' })
  const big = await app.inject({ method: 'POST', url: '/scim/v2/Users', headers: { ...scimClient, 'content-type': 'application/scim+json' }, payload: JSON.stringify({ schemas: [USER], userName: 'big@example.com', title: 'x'.repeat(1024 * 1024) }) })
  t.equal(scimError(big).status, '413')
  const rejected = app.logs.lines.filter((l) => l.msg === 'request rejected' && String(l.reqId ?? '') === String(truncated.headers['x-request-id']))
  t.match(rejected, [{ level: 30, statusCode: 400 }], '4xx logged at info, as everywhere')
  t.match(JSON.parse(truncated.body), { schemas: [ERROR] })
})

t.test('users: create errors, uniqueness, ETag and If-Match, replace, delete', async (t) => {
  const { scim } = await scimFixture(t)
  const create = async (body: Record<string, unknown>) => await scim('POST', '/Users', { schemas: [USER], ...body })
  const invalid: Array<[unknown, string, RegExp]> = [
    [{ userName: 'x@example.com' }, 'invalidSyntax', /schemas must list/],
    [{ schemas: [USER] }, 'invalidValue', /userName must be a string/],
    [{ schemas: [USER], userName: 'not-an-email' }, 'invalidValue', /needs an email address/],
    [{ schemas: [USER], userName: 'a', emails: [{ value: 'nope' }] }, 'invalidValue', /emails.value must be an email/],
    [{ schemas: [USER], userName: 'a', emails: 'a@b.c' }, 'invalidValue', /emails must be an array/],
    [{ schemas: [USER], userName: 'a@b.co', active: 'maybe' }, 'invalidValue', /active must be true or false/],
    [{ schemas: [USER], userName: 'a@b.co', name: 'Ann' }, 'invalidValue', /name must be an object/],
    [{ schemas: [USER], userName: 'a@b.co', displayName: 'x'.repeat(101) }, 'invalidValue', /displayName must be a string of 1–100/],
    [{ schemas: [USER], userName: 'a\u0000@b.co' }, 'invalidValue', /without control characters/],
    [[{ schemas: [USER] }], 'invalidValue', /body/]
  ]
  for (const [body, scimType, detail] of invalid) {
    const res = await scim('POST', '/Users', body)
    t.equal(res.statusCode, 400, JSON.stringify(body))
    t.match(scimError(res), { scimType, detail }, JSON.stringify(body))
  }
  const ann = (await create({ userName: 'ann@example.com', externalId: 'A1', emails: [{ value: 'ann@example.com', type: 'home' }, { value: 'ann@work.example.com', type: 'work' }] })).json<UserJson>()
  t.same(ann.emails.map((e) => e.value), ['ann@work.example.com'], 'the work email when none is primary; the userName stays')
  t.equal(ann.userName, 'ann@example.com')
  const conflicts: Array<[Record<string, unknown>, RegExp]> = [
    [{ userName: 'ANN@example.com', emails: [{ value: 'x1@example.com' }] }, /userName/],
    [{ userName: 'ann@work.example.com' }, /email|userName/],
    [{ userName: 'b@example.com', emails: [{ value: 'Ann@Work.example.com' }] }, /email/],
    [{ userName: 'c@example.com', externalId: 'A1' }, /externalId/]
  ]
  for (const [body, detail] of conflicts) {
    const res = await create(body)
    t.equal(res.statusCode, 409, JSON.stringify(body))
    t.match(scimError(res), { scimType: 'uniqueness', detail }, JSON.stringify(body))
  }
  t.equal((await create({ userName: 'c@example.com', externalId: 'a1' })).statusCode, 201, 'externalId is case-exact')

  const got = await scim('GET', `/Users/${ann.id}`)
  t.equal(got.headers.etag, ann.meta.version)
  t.equal(ann.meta.version, `"${ann.id}.1"`)
  for (const id of ['00000000-0000-4000-8000-000000000000', 'not-a-uuid']) {
    t.equal(scimError(await scim('GET', `/Users/${id}`)).status, '404', `GET ${id}`)
    t.equal(scimError(await scim('PUT', `/Users/${id}`, { schemas: [USER], userName: 'z@example.com' })).status, '404', `PUT ${id}`)
    t.equal(scimError(await scim('PATCH', `/Users/${id}`, patch({ op: 'replace', path: 'active', value: false }))).status, '404', `PATCH ${id}`)
    t.equal(scimError(await scim('DELETE', `/Users/${id}`)).status, '404', `DELETE ${id}`)
  }

  const stale = await scim('PATCH', `/Users/${ann.id}`, patch({ op: 'replace', path: 'displayName', value: 'Ann' }), { 'if-match': `"${ann.id}.9"` })
  t.equal(scimError(stale).status, '412')
  const fresh = await scim('PATCH', `/Users/${ann.id}`, patch({ op: 'replace', path: 'displayName', value: 'Ann' }), { 'if-match': ann.meta.version })
  t.equal(fresh.statusCode, 200)
  t.equal(fresh.headers.etag, `"${ann.id}.2"`)
  t.equal(scimError(await scim('PUT', `/Users/${ann.id}`, { schemas: [USER], userName: 'ann@example.com' }, { 'if-match': ann.meta.version })).status, '412')
  t.equal(scimError(await scim('DELETE', `/Users/${ann.id}`, undefined, { 'if-match': ann.meta.version })).status, '412')

  const replaced = await scim('PUT', `/Users/${ann.id}`, { schemas: [USER], userName: 'ann@example.com', name: { givenName: 'Ann' } }, { 'if-match': String(fresh.headers.etag) })
  t.equal(replaced.statusCode, 200)
  const body = replaced.json<UserJson>()
  t.same(body.emails.map((e) => e.value), ['ann@example.com'], 'replace: the userName is the email when no emails are given')
  t.equal(body.displayName, undefined, 'replace clears what the body does not give')
  t.equal(body.externalId, undefined)
  t.same(body.name, { givenName: 'Ann', formatted: 'Ann' })
  t.match(scimError(await scim('PUT', `/Users/${ann.id}`, { schemas: [USER], id: '00000000-0000-4000-8000-000000000000', userName: 'ann@example.com' })), { status: '400', scimType: 'mutability' })
  const same = await scim('PUT', `/Users/${ann.id}`, { schemas: [USER], id: ann.id, userName: 'ann@example.com', name: { givenName: 'Ann' } })
  t.equal(same.headers.etag, replaced.headers.etag, 'a replace that changes nothing makes no new version')
  t.equal((await scim('DELETE', `/Users/${ann.id}`, undefined, { 'if-match': String(replaced.headers.etag) })).statusCode, 204)
})

t.test('users: PATCH operations and value paths', async (t) => {
  const { scim } = await scimFixture(t)
  const user = (await scim('POST', '/Users', { schemas: [USER], userName: 'pat@example.com', name: { givenName: 'Pat', familyName: 'Doe' }, displayName: 'Pat' })).json<UserJson>()
  const apply = async (...ops: unknown[]) => await scim('PATCH', `/Users/${user.id}`, patch(...ops))
  const ok = async (expected: Record<string, unknown>, ...ops: unknown[]): Promise<UserJson> => {
    const res = await apply(...ops)
    t.equal(res.statusCode, 200, JSON.stringify(ops))
    t.match(res.json(), expected, JSON.stringify(ops))
    return res.json()
  }
  await ok({ userName: 'patricia' }, { op: 'replace', path: 'userName', value: 'patricia' })
  await ok({ emails: [{ value: 'pat@example.org' }], userName: 'patricia' }, { op: 'replace', path: 'emails[type eq "work"].value', value: 'pat@example.org' })
  await ok({ emails: [{ value: 'p2@example.org' }] }, { op: 'add', path: 'emails', value: [{ value: 'p2@example.org', primary: true }] })
  await ok({ emails: [{ value: 'p3@example.org' }] }, { op: 'replace', path: 'emails[primary eq true]', value: { value: 'p3@example.org' } })
  // Value filters select the one email (value, type work, primary) as SCIM's operators say.
  await ok({ emails: [{ value: 'p4@example.org' }] },
    { op: 'replace', path: 'emails[value co "3@EXAMPLE"].value', value: 'p3b@example.org' },
    { op: 'replace', path: 'emails[value sw "p3b" and value ew ".org"].value', value: 'p3c@example.org' },
    { op: 'replace', path: 'emails[value gt "a" and value ge "p" and value lt "q" and value le "q"].value', value: 'p3d@example.org' },
    { op: 'replace', path: 'emails[not (type eq "home") and type ne "other" and (primary eq false or value pr)].value', value: 'p4@example.org' })
  for (const path of ['emails[primary gt 1]', 'emails[value co 5]', 'emails[nickname pr]', 'emails[value sw "x"]', 'emails[value ew "x"]']) {
    t.match(scimError(await apply({ op: 'replace', path, value: { value: 'p9@example.org' } })), { scimType: 'noTarget' }, path)
  }
  await ok({ name: { givenName: 'P', familyName: 'Doe' } }, { op: 'replace', path: 'name.givenName', value: 'P' })
  await ok({ name: { givenName: 'Q', familyName: 'R' } }, { op: 'replace', path: 'name', value: { givenName: 'Q', familyName: 'R' } })
  const noName = await ok({}, { op: 'remove', path: 'name' })
  t.equal(noName.name, undefined, 'remove name')
  await ok({ name: { familyName: 'S' } }, { op: 'add', value: { 'name.familyName': 'S' } })
  await ok({ displayName: 'Dee', externalId: 'E9' }, { op: 'replace', value: { 'urn:ietf:params:scim:schemas:core:2.0:User:displayName': 'Dee', externalId: 'E9' } })
  await ok({ displayName: 'Core' }, { op: 'replace', value: { [USER]: { displayName: 'Core' } } })
  const cleared = await ok({}, { op: 'remove', path: 'displayName' }, { op: 'remove', path: 'externalId' }, { op: 'remove', path: 'urn:ietf:params:scim:schemas:core:2.0:User:name.familyName' })
  t.equal(cleared.displayName, undefined)
  t.equal(cleared.externalId, undefined)
  await ok({ active: false }, { op: 'replace', path: 'ACTIVE', value: 'false' })
  await ok({ active: true }, { op: 'Replace', value: { Active: true } })
  await ok({ id: user.id }, { op: 'replace', value: { id: user.id, schemas: [USER], title: 'ignored', phoneNumbers: [{ value: '1' }] } }, { op: 'add', path: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department', value: 'x' })

  const refused: Array<[unknown, string, RegExp]> = [
    [{ op: 'remove', path: 'userName' }, 'mutability', /userName is required/],
    [{ op: 'remove', path: 'emails' }, 'mutability', /emails/],
    [{ op: 'remove', path: 'active' }, 'mutability', /active cannot be removed/],
    [{ op: 'replace', path: 'id', value: '00000000-0000-4000-8000-000000000000' }, 'mutability', /id is read-only/],
    [{ op: 'add', path: 'groups', value: [] }, 'mutability', /change memberships through \/Groups/],
    [{ op: 'replace', path: 'meta.created', value: 'x' }, 'mutability', /meta is read-only/],
    [{ op: 'replace', path: 'emails[type eq "home"].value', value: 'a@b.co' }, 'noTarget', /No email matches/],
    [{ op: 'replace', path: 'emails[type eq "work"].value', value: 'not an email' }, 'invalidValue', /email address/],
    [{ op: 'replace', path: 'active', value: 1 }, 'invalidValue', /true or false/],
    [{ op: 'replace', path: 'name', value: 'x' }, 'invalidValue', /name must be an object/],
    [{ op: 'replace', path: 'userName', value: '' }, 'invalidValue', /userName/],
    [{ op: 'remove' }, 'noTarget', /remove needs a path/],
    [{ op: 'replace', value: 'x' }, 'invalidValue', /value must be an object/],
    [{ op: 'add', path: 'displayName' }, 'invalidValue', /add needs a value/],
    [{ op: 'move', path: 'displayName', value: 'x' }, 'invalidSyntax', /add, replace or remove/],
    ['replace', 'invalidSyntax', /must be an object/],
    [{ op: 'replace', path: 5, value: 'x' }, 'invalidPath', /path must be a string/],
    [{ op: 'replace', path: 'emails[type eq', value: 'x' }, 'invalidPath', /Not a value path|not valid/],
    [{ op: 'replace', path: '2x', value: 'x' }, 'invalidPath', /Not an attribute path/],
    [{ op: 'replace', path: 'emails[value[x pr]]', value: 'x' }, 'invalidPath', /cannot hold another/]
  ]
  const version = (await scim('GET', `/Users/${user.id}`)).headers.etag
  for (const [op, scimType, detail] of refused) {
    const res = await apply(op)
    t.equal(res.statusCode, 400, JSON.stringify(op))
    t.match(scimError(res), { scimType, detail }, JSON.stringify(op))
  }
  t.match(scimError(await scim('PATCH', `/Users/${user.id}`, { Operations: [] })), { scimType: 'invalidSyntax', detail: /PatchOp/ })
  t.match(scimError(await scim('PATCH', `/Users/${user.id}`, { schemas: [PATCH_OP], Operations: [] })), { scimType: 'invalidSyntax', detail: /non-empty/ })
  t.match(scimError(await scim('PATCH', `/Users/${user.id}`, { schemas: [PATCH_OP], Operations: Array.from({ length: 1001 }, () => ({ op: 'remove', path: 'x' })) })), { scimType: 'tooMany' })
  t.equal((await scim('GET', `/Users/${user.id}`)).headers.etag, version, 'refused patches change nothing')
  const other = (await scim('POST', '/Users', { schemas: [USER], userName: 'other@example.com' })).json<UserJson>()
  t.match(scimError(await apply({ op: 'replace', path: 'userName', value: 'OTHER@example.com' })), { scimType: 'uniqueness' })
  t.ok(other.id)
})

t.test('users: listing (startIndex, count, sortBy, sortOrder, attributes, excludedAttributes)', async (t) => {
  const { scim } = await scimFixture(t)
  const names = ['delta', 'alpha', 'echo', 'charlie', 'bravo']
  for (const n of names) t.equal((await scim('POST', '/Users', { schemas: [USER], userName: `${n}@example.com`, name: { givenName: n.toUpperCase() } })).statusCode, 201)
  const page = async (qs: string) => (await scim('GET', `/Users?${qs}`)).json<{ totalResults: number, startIndex: number, itemsPerPage: number, Resources: Array<Partial<UserJson>> }>()
  const all = await page('sortBy=userName')
  t.same(all.Resources.map((r) => r.userName), names.slice().sort().map((n) => `${n}@example.com`))
  const second = await page('sortBy=userName&sortOrder=descending&startIndex=2&count=2')
  t.match(second, { totalResults: 5, startIndex: 2, itemsPerPage: 2 })
  t.same(second.Resources.map((r) => r.userName), ['delta@example.com', 'charlie@example.com'])
  t.same((await page('startIndex=-3&count=1')).Resources.map((r) => r.userName), ['delta@example.com'], 'creation order by default; startIndex below 1 is 1')
  t.match(await page('count=0'), { totalResults: 5, itemsPerPage: 0, Resources: [] })
  t.match(await page('count=-1'), { totalResults: 5, itemsPerPage: 0 })
  t.match(await page('startIndex=99'), { totalResults: 5, startIndex: 99, itemsPerPage: 0 })
  t.same((await page('sortBy=name.givenName&count=1')).Resources.map((r) => r.userName), ['alpha@example.com'])
  t.same((await page('sortBy=urn:ietf:params:scim:schemas:core:2.0:User:meta.created&sortOrder=descending&count=1')).Resources.map((r) => r.userName), ['bravo@example.com'])
  t.match(scimError(await scim('GET', '/Users?sortBy=emails.type')), { scimType: 'invalidValue', detail: /cannot be sorted/ })
  t.match(scimError(await scim('GET', '/Users?sortBy=nickName')), { scimType: 'invalidValue' })
  t.match(scimError(await scim('GET', '/Users?sortOrder=sideways')), { status: '400', scimType: 'invalidValue' })
  t.match(scimError(await scim('GET', '/Users?count=ten')), { status: '400', scimType: 'invalidValue', detail: /querystring\/count/ })

  const only = await page('attributes=userName,name.givenName&count=1')
  t.same(only.Resources[0], { schemas: [USER], id: only.Resources[0]?.id, userName: 'delta@example.com', name: { givenName: 'DELTA' } }, 'attributes: those asked for, with id and schemas')
  const without = await page('excludedAttributes=meta,emails,name.formatted,groups&count=1')
  t.same(Object.keys(without.Resources[0] ?? {}).sort(), ['active', 'id', 'name', 'schemas', 'userName'])
  t.same(without.Resources[0]?.name, { givenName: 'DELTA' })
  const id = only.Resources[0]?.id as string
  t.same(Object.keys((await scim('GET', `/Users/${id}?attributes=urn:ietf:params:scim:schemas:core:2.0:User:active,x:y:emails`)).json()).sort(), ['active', 'id', 'schemas'], 'attributes of other schemas are none of ours')
  t.notOk('meta' in (await scim('GET', `/Users/${id}?excludedAttributes=meta,id`)).json(), 'id cannot be excluded')
})

t.test('groups: create with members, PATCH members every way, PUT, errors, ETag', async (t) => {
  const { app, scim } = await scimFixture(t)
  const ids: string[] = []
  for (const n of ['m1', 'm2', 'm3']) ids.push((await scim('POST', '/Users', { schemas: [USER], userName: `${n}@example.com` })).json<UserJson>().id)
  const [a, b, c] = ids as [string, string, string]
  const created = await scim('POST', '/Groups', { schemas: [GROUP], displayName: 'Team', externalId: 'G1', members: [{ value: a }, { value: b }, { value: a }] })
  t.equal(created.statusCode, 201)
  const group = created.json<{ id: string, members: Array<{ value: string }>, meta: { version: string } }>()
  t.same(group.members.map((m) => m.value).sort(), [a, b].sort(), 'duplicates once')
  t.equal(created.headers.location, `http://localhost:3000/scim/v2/Groups/${group.id}`)
  const members = async (): Promise<string[]> => (await scim('GET', `/Groups/${group.id}`)).json<{ members: Array<{ value: string }> }>().members.map((m) => m.value).sort()
  const apply = async (...ops: unknown[]) => await scim('PATCH', `/Groups/${group.id}`, patch(...ops))

  t.equal((await apply({ op: 'add', path: 'members', value: [{ value: c }] })).statusCode, 204)
  t.same(await members(), [a, b, c].sort())
  t.equal((await apply({ op: 'remove', path: `members[value eq "${a.toUpperCase()}"]` })).statusCode, 204, 'ids compare case-insensitively')
  t.same(await members(), [b, c].sort())
  t.equal((await apply({ op: 'replace', path: 'members', value: [{ value: a }] })).statusCode, 204)
  t.same(await members(), [a])
  t.equal((await apply({ op: 'add', value: { members: [{ value: b }] } })).statusCode, 204, 'members in a value without path')
  t.equal((await apply({ op: 'remove', path: 'members' })).statusCode, 204)
  t.same(await members(), [])
  t.equal((await apply({ op: 'add', path: 'members', value: { value: c } }, { op: 'replace', path: 'externalId', value: 'G2' }, { op: 'remove', path: 'members[value eq "not-a-member"]' })).statusCode, 204)
  t.match((await scim('GET', `/Groups/${group.id}`)).json(), { externalId: 'G2', members: [{ value: c }] })
  t.equal((await apply({ op: 'remove', path: 'externalId' })).statusCode, 204)

  const refused: Array<[unknown, string, RegExp]> = [
    [{ op: 'add', path: 'members', value: [{ value: '00000000-0000-4000-8000-000000000000' }] }, 'invalidValue', /does not exist/],
    [{ op: 'add', path: 'members', value: [{ value: 'bob' }] }, 'invalidValue', /members must be/],
    [{ op: 'add', path: 'members', value: [{}] }, 'invalidValue', /members must be/],
    [{ op: 'add', path: 'members[value eq "x"]', value: [] }, 'invalidPath', /only remove/],
    [{ op: 'remove', path: 'displayName' }, 'mutability', /displayName is required/],
    [{ op: 'replace', path: 'displayName', value: '' }, 'invalidValue', /displayName/],
    [{ op: 'replace', path: 'id', value: a }, 'mutability', /id is read-only/],
    [{ op: 'replace', path: 'members[value[x pr]]', value: [] }, 'invalidPath', /cannot hold another/]
  ]
  const version = (await scim('GET', `/Groups/${group.id}`)).headers.etag
  for (const [op, scimType, detail] of refused) t.match(scimError(await apply(op)), { status: '400', scimType, detail }, JSON.stringify(op))
  t.equal((await scim('GET', `/Groups/${group.id}`)).headers.etag, version, 'refused patches change nothing')
  t.equal((await apply({ op: 'replace', value: { schemas: [GROUP], meetingRoom: 'ignored' } })).statusCode, 204)

  const other = await scim('POST', '/Groups', { schemas: [GROUP], displayName: 'other', externalId: 'GX' })
  t.match(scimError(await scim('POST', '/Groups', { schemas: [GROUP], displayName: 'TEAM' })), { status: '409', scimType: 'uniqueness' })
  t.match(scimError(await apply({ op: 'replace', path: 'externalId', value: 'GX' })), { status: '409', scimType: 'uniqueness', detail: /externalId/ })
  t.match(scimError(await apply({ op: 'replace', path: 'displayName', value: 'Other' })), { status: '409', scimType: 'uniqueness' })
  t.match(scimError(await scim('POST', '/Groups', { schemas: [GROUP] })), { scimType: 'invalidValue' })
  t.match(scimError(await scim('POST', '/Groups', { schemas: [USER], displayName: 'x' })), { scimType: 'invalidSyntax' })
  t.match(scimError(await scim('POST', '/Groups', { schemas: [GROUP], displayName: 'y', members: 'x' })), { scimType: 'invalidValue' })

  const current = String((await scim('GET', `/Groups/${group.id}`)).headers.etag)
  const stale = await scim('PUT', `/Groups/${group.id}`, { schemas: [GROUP], displayName: 'Team' }, { 'if-match': `"${group.id}.1"` })
  t.equal(scimError(stale).status, '412')
  const put = await scim('PUT', `/Groups/${group.id}`, { schemas: [GROUP], id: group.id, displayName: 'Team B', members: [{ value: b }] }, { 'if-match': current })
  t.equal(put.statusCode, 200)
  t.match(put.json(), { displayName: 'Team B', members: [{ value: b }] })
  t.not(put.headers.etag, current)
  const emptied = await scim('PUT', `/Groups/${group.id}`, { schemas: [GROUP], displayName: 'Team B' })
  t.same(emptied.json<{ members: unknown[] }>().members, [], 'replace without members: none')
  t.match(scimError(await scim('PUT', `/Groups/${group.id}`, { schemas: [GROUP], id: a, displayName: 'x' })), { scimType: 'mutability' })
  for (const id of ['00000000-0000-4000-8000-000000000000', 'nope']) {
    t.equal(scimError(await scim('GET', `/Groups/${id}`)).status, '404')
    t.equal(scimError(await scim('PUT', `/Groups/${id}`, { schemas: [GROUP], displayName: 'x' })).status, '404')
    t.equal(scimError(await scim('PATCH', `/Groups/${id}`, patch({ op: 'remove', path: 'members' }))).status, '404')
    t.equal(scimError(await scim('DELETE', `/Groups/${id}`)).status, '404')
  }
  t.equal(scimError(await scim('PATCH', `/Groups/${group.id}`, patch({ op: 'remove', path: 'members' }), { 'if-match': '"x"' })).status, '412')
  t.equal(scimError(await scim('DELETE', `/Groups/${group.id}`, undefined, { 'if-match': current })).status, '412')

  const listed = await scim('GET', '/Groups?sortBy=displayName&sortOrder=descending&attributes=displayName')
  t.same(listed.json<{ Resources: unknown[] }>().Resources, [
    { schemas: [GROUP], id: group.id, displayName: 'Team B' },
    { schemas: [GROUP], id: other.json<{ id: string }>().id, displayName: 'other' }
  ].sort((x, y) => y.displayName.toLowerCase().localeCompare(x.displayName.toLowerCase())))
  t.match((await scim('GET', '/Groups?attributes=members.value&filter=displayName%20sw%20%22team%22')).json(), { totalResults: 1, Resources: [{ members: [] }] })
  t.match(scimError(await scim('GET', '/Groups?filter=userName%20eq%20%22x%22')), { scimType: 'invalidFilter' })
  t.equal((await scim('DELETE', `/Groups/${group.id}`)).statusCode, 204)
  t.equal((await app.pg.pool.query('SELECT count(*)::int AS n FROM users')).rows[0].n, 3, 'its members stay users')
})

t.test('errors before routing under /scim/v2 (a path parameter too long, a bad URL encoding) are SCIM errors too', async (t) => {
  const { scim } = await scimFixture(t)
  t.equal(scimError(await scim('GET', `/Users/${'x'.repeat(300)}`)).status, '414')
  t.equal(scimError(await scim('GET', '/Schemas/a%ED%A0%80')).status, '400')
})
