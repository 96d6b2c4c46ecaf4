/**
 * The provisioning sequences Okta and Microsoft Entra ID are documented to
 * send, replayed request by request with their bodies as documented (Okta's
 * "SCIM 2.0 protocol reference"; Entra ID's "Develop and plan provisioning for
 * a SCIM endpoint"), checking each answer and what it left in the database.
 */
import t from 'tap'
import { GROUP, PATCH_OP, scimFixture, USER } from './helpers.ts'

interface ScimUserJson { id: string, userName: string, active: boolean, emails: Array<{ value: string }>, name?: { givenName?: string, familyName?: string }, externalId?: string, groups: Array<{ value: string }>, meta: { version: string } }
interface ListJson<R> { totalResults: number, Resources: R[] }

t.test('Okta: lookup, create, read, replace, deactivate; a group: create, rename, members add and remove, delete', async (t) => {
  const { app, scim, clientId } = await scimFixture(t)
  const q = (f: string): string => `filter=${encodeURIComponent(f)}&startIndex=1&count=100`

  const none = await scim('GET', `/Users?${q('userName eq "test.user@okta.local"')}`)
  t.equal(none.statusCode, 200)
  t.match(none.json(), { schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'], totalResults: 0, startIndex: 1, itemsPerPage: 0, Resources: [] })

  const created = await scim('POST', '/Users', {
    schemas: [USER],
    userName: 'test.user@okta.local',
    name: { givenName: 'Test', familyName: 'User' },
    emails: [{ primary: true, value: 'test.user@okta.local', type: 'work' }],
    displayName: 'Test User',
    locale: 'en-US',
    externalId: '00ujl29u0le5T6Aj10h7',
    groups: [],
    password: '1mz050nq',
    active: true
  })
  t.equal(created.statusCode, 201)
  t.match(created.headers['content-type'], /^application\/scim\+json/)
  const user = created.json<ScimUserJson>()
  t.match(user, { userName: 'test.user@okta.local', name: { givenName: 'Test', familyName: 'User' }, displayName: 'Test User', externalId: '00ujl29u0le5T6Aj10h7', active: true, emails: [{ value: 'test.user@okta.local', type: 'work', primary: true }], meta: { resourceType: 'User' } })
  t.equal(created.headers.location, `http://localhost:3000/scim/v2/Users/${user.id}`)
  t.notMatch(created.body, /1mz050nq/, 'the password Okta sends is neither kept nor echoed')

  const read = await scim('GET', `/Users/${user.id}`)
  t.same(read.json(), user)
  const found = await scim('GET', `/Users?${q('userName eq "test.user@okta.local"')}`)
  t.match(found.json<ListJson<ScimUserJson>>(), { totalResults: 1, Resources: [{ id: user.id }] })

  const replaced = await scim('PUT', `/Users/${user.id}`, {
    schemas: [USER],
    id: user.id,
    userName: 'test.user@okta.local',
    name: { givenName: 'Another', familyName: 'User' },
    emails: [{ primary: true, value: 'test.user@okta.local', type: 'work' }],
    displayName: 'Another User',
    locale: 'en-US',
    externalId: '00ujl29u0le5T6Aj10h7',
    groups: [],
    active: true
  })
  t.equal(replaced.statusCode, 200)
  t.match(replaced.json(), { name: { givenName: 'Another' }, displayName: 'Another User' })

  const deactivated = await scim('PATCH', `/Users/${user.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', value: { active: false } }] })
  t.equal(deactivated.statusCode, 200)
  t.match(deactivated.json(), { id: user.id, active: false })
  const rest = (await app.pg.pool.query('SELECT id, active FROM users WHERE id = $1', [user.id])).rows
  t.same(rest, [{ id: user.id, active: false }], 'deactivated, with the same id')
  const events = (await app.pg.pool.query('SELECT action, actor_type, actor_id, changes FROM audit_events WHERE target_id = $1 ORDER BY created_at, id', [user.id])).rows
  t.match(events, [
    { action: 'user.create', actor_type: 'client', actor_id: clientId },
    { action: 'user.update', changes: { givenName: 'Another', name: 'Another User' } },
    { action: 'user.update', actor_type: 'client', changes: { active: false } }
  ], 'creation, change and deactivation audited, by the API client')
  const reactivated = await scim('PATCH', `/Users/${user.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'active', value: true }] })
  t.match(reactivated.json(), { active: true })

  const group = await scim('POST', '/Groups', { schemas: [GROUP], displayName: 'Test SCIMv2', members: [] })
  t.equal(group.statusCode, 201)
  const groupId = group.json<{ id: string }>().id
  t.match(group.json(), { displayName: 'Test SCIMv2', members: [], meta: { resourceType: 'Group' } })
  const lookup = await scim('GET', `/Groups?${q('displayName eq "Test SCIMv2"')}`)
  t.match(lookup.json(), { totalResults: 1, Resources: [{ id: groupId }] })

  const renamed = await scim('PATCH', `/Groups/${groupId}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', value: { id: groupId, displayName: 'Test SCIMv2 updated' } }] })
  t.equal(renamed.statusCode, 204)
  const added = await scim('PATCH', `/Groups/${groupId}`, { schemas: [PATCH_OP], Operations: [{ op: 'add', path: 'members', value: [{ value: user.id, display: 'test.user@okta.local' }] }] })
  t.equal(added.statusCode, 204)
  t.match((await scim('GET', `/Groups/${groupId}`)).json(), { displayName: 'Test SCIMv2 updated', members: [{ value: user.id, display: 'test.user@okta.local', type: 'User' }] })
  t.match((await scim('GET', `/Users/${user.id}`)).json(), { groups: [{ value: groupId, display: 'Test SCIMv2 updated' }] }, 'the user shows its group')
  const removed = await scim('PATCH', `/Groups/${groupId}`, { schemas: [PATCH_OP], Operations: [{ op: 'remove', path: `members[value eq "${user.id}"]` }] })
  t.equal(removed.statusCode, 204)
  t.match((await scim('GET', `/Groups/${groupId}`)).json(), { members: [] })
  const memberships = (await app.pg.pool.query("SELECT action, changes FROM audit_events WHERE target_id = $1 AND action LIKE 'membership.%' ORDER BY created_at, id", [groupId])).rows
  t.same(memberships, [{ action: 'membership.add', changes: { userId: user.id } }, { action: 'membership.remove', changes: { userId: user.id } }])
  t.equal((await scim('DELETE', `/Groups/${groupId}`)).statusCode, 204)
  t.equal((await scim('GET', `/Groups/${groupId}`)).statusCode, 404)
})

t.test('Microsoft Entra ID: lookup, create, update by value paths, the manager it cannot keep, "False" strings, delete; groups with excludedAttributes=members', async (t) => {
  const { app, scim } = await scimFixture(t)
  const none = await scim('GET', `/Users?filter=${encodeURIComponent('userName eq "Test_User_dfeef4c5-5681-4387-b016-bdf221e82081"')}`)
  t.match(none.json(), { totalResults: 0 })

  const created = await scim('POST', '/Users', {
    schemas: [USER, 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User'],
    externalId: '0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef',
    userName: 'Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1',
    active: true,
    emails: [{ primary: true, type: 'work', value: 'Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com' }],
    meta: { resourceType: 'User' },
    name: { formatted: 'givenName familyName', familyName: 'familyName', givenName: 'givenName' },
    roles: []
  })
  t.equal(created.statusCode, 201)
  const user = created.json<ScimUserJson>()
  t.match(user, { userName: 'Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1', emails: [{ value: 'Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com' }], externalId: '0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef' })
  t.equal((await scim('POST', '/Users', { schemas: [USER], userName: 'test_user_AB6490EE-1e48-479e-a20b-2d77186b5dd1', emails: [{ value: 'other@testuser.com' }] })).statusCode, 409, 'userName is unique case-insensitively')

  t.same((await scim('GET', `/Users/${user.id}`)).json(), user)
  const byName = await scim('GET', `/Users?filter=${encodeURIComponent('userName eq "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1"')}`)
  t.match(byName.json(), { totalResults: 1, Resources: [{ id: user.id }] })
  const byExternal = await scim('GET', `/Users?filter=${encodeURIComponent('externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"')}`)
  t.match(byExternal.json(), { totalResults: 1 })
  t.match((await scim('GET', `/Users?filter=${encodeURIComponent('userName eq "non-existent user"')}`)).json(), { totalResults: 0 })

  const updated = await scim('PATCH', `/Users/${user.id}`, {
    schemas: [PATCH_OP],
    Operations: [
      { op: 'Replace', path: 'emails[type eq "work"].value', value: 'updatedEmail@microsoft.com' },
      { op: 'Replace', path: 'name.familyName', value: 'updatedFamilyName' }
    ]
  })
  t.equal(updated.statusCode, 200)
  t.match(updated.json(), { userName: 'Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1', emails: [{ value: 'updatedEmail@microsoft.com' }], name: { familyName: 'updatedFamilyName', givenName: 'givenName' } })

  const manager = await scim('PATCH', `/Users/${user.id}`, {
    schemas: [PATCH_OP],
    Operations: [{ op: 'Add', path: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager', value: [{ $ref: null, value: 'Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e' }] }]
  })
  t.equal(manager.statusCode, 200, 'an extension attribute Roster does not keep is ignored')

  const before = await app.pg.pool.query('SELECT count(*)::int AS n FROM audit_events')
  const disabled = await scim('PATCH', `/Users/${user.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'Replace', path: 'active', value: 'False' }] })
  t.equal(disabled.statusCode, 200)
  t.match(disabled.json(), { id: user.id, active: false }, 'Entra\'s "False" string deactivates')
  const again = await scim('PATCH', `/Users/${user.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', value: { active: 'False' } }] })
  t.match(again.json(), { active: false })
  t.equal((await app.pg.pool.query('SELECT count(*)::int AS n FROM audit_events')).rows[0].n, before.rows[0].n + 1, 'one event: deactivating a deactivated user changes nothing')
  t.match((await app.pg.pool.query("SELECT changes FROM audit_events WHERE action = 'user.update' ORDER BY created_at DESC, id LIMIT 1")).rows, [{ changes: { active: false } }])
  const enabled = await scim('PATCH', `/Users/${user.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'Replace', path: 'active', value: 'True' }] })
  t.match(enabled.json(), { active: true })

  const group = await scim('POST', '/Groups', {
    schemas: [GROUP, 'http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group'],
    externalId: '8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159',
    displayName: 'displayName',
    meta: { resourceType: 'Group' }
  })
  t.equal(group.statusCode, 201)
  const groupId = group.json<{ id: string }>().id
  const slim = await scim('GET', `/Groups/${groupId}?excludedAttributes=members`)
  t.equal(slim.statusCode, 200)
  t.notOk('members' in slim.json(), 'excludedAttributes=members')
  t.match(slim.json(), { id: groupId, displayName: 'displayName', externalId: '8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159' })
  const listed = await scim('GET', `/Groups?excludedAttributes=members&filter=${encodeURIComponent('displayName eq "displayName"')}`)
  t.match(listed.json(), { totalResults: 1, Resources: [{ id: groupId }] })
  t.notOk('members' in listed.json<ListJson<object>>().Resources[0]!)

  const renamed = await scim('PATCH', `/Groups/${groupId}`, { schemas: [PATCH_OP], Operations: [{ op: 'Replace', path: 'displayName', value: '1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName' }] })
  t.equal(renamed.statusCode, 204)
  const add = await scim('PATCH', `/Groups/${groupId}`, { schemas: [PATCH_OP], Operations: [{ op: 'Add', path: 'members', value: [{ $ref: null, value: user.id }] }] })
  t.equal(add.statusCode, 204)
  const member = await scim('GET', `/Groups?filter=${encodeURIComponent(`id eq "${groupId}" and members[value eq "${user.id}"]`)}&excludedAttributes=members`)
  t.match(member.json(), { totalResults: 1 }, 'membership check by filter')
  t.match((await scim('GET', `/Groups/${groupId}`)).json(), { displayName: '1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName', members: [{ value: user.id }] })
  const remove = await scim('PATCH', `/Groups/${groupId}`, { schemas: [PATCH_OP], Operations: [{ op: 'Remove', path: 'members', value: [{ $ref: null, value: user.id }] }] })
  t.equal(remove.statusCode, 204)
  t.match((await scim('GET', `/Groups?filter=${encodeURIComponent(`members[value eq "${user.id}"]`)}`)).json(), { totalResults: 0 })
  t.equal((await scim('DELETE', `/Groups/${groupId}`)).statusCode, 204)

  t.equal((await scim('DELETE', `/Users/${user.id}`)).statusCode, 204)
  t.equal((await scim('GET', `/Users/${user.id}`)).statusCode, 404)
  t.match((await app.pg.pool.query("SELECT action FROM audit_events WHERE target_id = $1 AND action = 'user.delete'", [user.id])).rows, [{ action: 'user.delete' }])
})
