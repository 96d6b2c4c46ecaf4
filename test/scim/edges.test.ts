/**
 * SCIM's less travelled inputs, each answered as RFC 7643/7644 say: null
 * comparisons, filters on a group's members, URN-qualified attribute names,
 * lower-case `operations`, empty email lists, value filters that compare
 * what cannot be ordered, and attribute selection naming a sub-attribute of
 * a simple value.
 */
import t from 'tap'
import { GROUP, PATCH_OP, scimError, scimFixture, USER } from './helpers.ts'

const CORE = USER

t.test('filters: ne null, and a group\'s members outside a value path', async (t) => {
  const { scim } = await scimFixture(t)
  const ann = (await scim('POST', '/Users', { schemas: [USER], userName: 'ann@example.com', externalId: 'ann-1' })).json<{ id: string }>()
  const bo = (await scim('POST', '/Users', { schemas: [USER], userName: 'bo@example.com' })).json<{ id: string }>()
  const withId = (await scim('GET', `/Users?filter=${encodeURIComponent('externalId ne null')}`)).json<{ Resources: Array<{ id: string }> }>()
  t.same(withId.Resources.map((r) => r.id), [ann.id], 'ne null: the users that have one')
  const staff = (await scim('POST', '/Groups', { schemas: [GROUP], displayName: 'Staff', members: [{ value: ann.id }] })).json<{ id: string }>()
  await scim('POST', '/Groups', { schemas: [GROUP], displayName: 'Others', members: [{ value: bo.id }] })
  for (const filter of [`members.value eq "${ann.id}"`, `members eq "${ann.id}"`]) {
    const res = await scim('GET', `/Groups?filter=${encodeURIComponent(filter)}&excludedAttributes=members`)
    t.equal(res.statusCode, 200, filter)
    t.same(res.json<{ Resources: Array<{ id: string }> }>().Resources.map((r) => r.id), [staff.id], `${filter}: the groups Ann is in`)
  }
})

t.test('bodies: URN-qualified names, arrays, lower-case operations, empty email lists', async (t) => {
  const { scim } = await scimFixture(t)
  const created = await scim('POST', '/Users', { schemas: [USER], userName: 'cy@example.com', emails: [], [`${CORE}:name.givenName`]: 'Cy', [`${CORE}:name.familyName`]: 'Doe', 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department': 'Sales' })
  t.equal(created.statusCode, 201, created.body)
  const cy = created.json<{ id: string, emails: Array<{ value: string }>, name: { givenName: string, familyName: string } }>()
  t.equal(cy.emails[0]?.value, 'cy@example.com', 'no email given: the userName')
  t.notOk(JSON.stringify(cy).includes('Sales'), 'an extension\'s attribute is not kept')
  t.same([cy.name.givenName, cy.name.familyName], ['Cy', 'Doe'], 'URN-qualified sub-attributes are the core attribute\'s')

  t.match(scimError(await scim('POST', '/Users', [{ schemas: [USER], userName: 'x@example.com' }])), { status: '400', scimType: 'invalidValue', detail: '/body: must be object' }, 'an array is no resource')
  t.match(scimError(await scim('PATCH', `/Users/${cy.id}`, { schemas: [PATCH_OP], Operations: [{ op: 1, path: 'active', value: false }] })), { status: '400', scimType: 'invalidSyntax', detail: /op must be/ })

  const lower = await scim('PATCH', `/Users/${cy.id}`, { schemas: [PATCH_OP], operations: [{ op: 'replace', path: 'emails', value: [] }, { op: 'replace', path: 'name.familyName', value: 'Young' }] })
  t.equal(lower.statusCode, 200, `"operations" in lower case is read too: ${lower.body}`)
  const after = (await scim('GET', `/Users/${cy.id}`)).json<{ emails: Array<{ value: string }>, name: { familyName: string } }>()
  t.equal(after.emails[0]?.value, 'cy@example.com', 'an empty list of emails keeps the address (a user needs one)')
  t.equal(after.name.familyName, 'Young')

  const unordered = await scim('PATCH', `/Users/${cy.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'emails[primary gt true].value', value: 'z@example.com' }] })
  t.match(scimError(unordered), { status: '400', scimType: 'noTarget' }, 'booleans are not ordered: gt matches nothing')
})

t.test('groups: URN-qualified paths, other schemas\' paths ignored, members replaced by null', async (t) => {
  const { scim } = await scimFixture(t)
  const dee = (await scim('POST', '/Users', { schemas: [USER], userName: 'dee@example.com' })).json<{ id: string }>()
  const group = (await scim('POST', '/Groups', { schemas: [GROUP], displayName: 'Team', members: [{ value: dee.id }] })).json<{ id: string }>()
  const res = await scim('PATCH', `/Groups/${group.id}`, {
    schemas: [PATCH_OP],
    Operations: [
      { op: 'replace', path: `${GROUP}:displayName`, value: 'Team A' },
      { op: 'replace', path: 'urn:example:params:scim:schemas:extension:acme:2.0:Group:costCenter', value: '42' },
      { op: 'replace', path: 'members', value: null }
    ]
  })
  t.equal(res.statusCode, 204, res.body)
  const after = (await scim('GET', `/Groups/${group.id}`)).json<{ displayName: string, members?: unknown[] }>()
  t.equal(after.displayName, 'Team A', 'the core schema\'s URN-qualified path')
  t.same(after.members ?? [], [], 'members replaced by null: none')
})

t.test('attributes and excludedAttributes naming a sub-attribute of a simple value', async (t) => {
  const { scim } = await scimFixture(t)
  const eve = (await scim('POST', '/Users', { schemas: [USER], userName: 'eve@example.com' })).json<{ id: string }>()
  const picked = (await scim('GET', `/Users/${eve.id}?attributes=userName.value`)).json<Record<string, unknown>>()
  t.equal(picked.userName, 'eve@example.com', 'a simple value has no sub-attributes: kept whole')
  const omitted = (await scim('GET', `/Users/${eve.id}?excludedAttributes=userName.value`)).json<Record<string, unknown>>()
  t.equal(omitted.userName, 'eve@example.com', 'and not dropped by a sub-attribute')
})
