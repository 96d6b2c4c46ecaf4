import { MAX_COUNT } from './service.ts'
import { SCHEMAS } from './resources.ts'

/**
 * The discovery documents (RFC 7644 §4, RFC 7643 §5–7): what this service
 * provider supports, its resource types and the schemas of their attributes,
 * as far as Roster keeps them (attributes it ignores are not listed).
 */

interface Attr {
  name: string
  type: 'string' | 'boolean' | 'dateTime' | 'reference' | 'complex'
  multiValued: boolean
  description: string
  required: boolean
  caseExact: boolean
  mutability: 'readOnly' | 'readWrite' | 'immutable'
  returned: 'always' | 'default'
  uniqueness: 'none' | 'server'
  canonicalValues?: string[]
  referenceTypes?: string[]
  subAttributes?: Attr[]
}

const attr = (name: string, description: string, more: Partial<Attr> = {}): Attr => ({
  name, type: 'string', multiValued: false, description, required: false, caseExact: false, mutability: 'readWrite', returned: 'default', uniqueness: 'none', ...more
})

const USER_ATTRIBUTES: Attr[] = [
  attr('userName', 'Unique identifier for the user, unique case-insensitively among userNames and emails.', { required: true, uniqueness: 'server' }),
  attr('name', 'The components of the user\'s name.', {
    type: 'complex',
    subAttributes: [attr('givenName', 'Given name (at most 100 characters).'), attr('familyName', 'Family name (at most 100 characters).'), attr('formatted', 'Given and family name.', { mutability: 'readOnly' })]
  }),
  attr('displayName', 'The name of the user, suitable for display (at most 100 characters).'),
  attr('emails', 'The user\'s email address: one, of type work, primary.', {
    type: 'complex',
    multiValued: true,
    required: true,
    subAttributes: [attr('value', 'The email address.'), attr('type', 'Always work.', { canonicalValues: ['work'] }), { ...attr('primary', 'Always true.'), type: 'boolean' }]
  }),
  { ...attr('active', 'false: deactivated (the user keeps its id).'), type: 'boolean' },
  attr('externalId', 'The identity provider\'s id of the user, unique.', { caseExact: true, uniqueness: 'server' }),
  attr('groups', 'The groups the user is in (change them through Groups).', {
    type: 'complex',
    multiValued: true,
    mutability: 'readOnly',
    subAttributes: [attr('value', 'The group\'s id.', { mutability: 'readOnly' }), attr('display', 'The group\'s displayName.', { mutability: 'readOnly' }), { ...attr('$ref', 'The group\'s URL.', { mutability: 'readOnly' }), type: 'reference', referenceTypes: ['Group'] }]
  })
]

const GROUP_ATTRIBUTES: Attr[] = [
  attr('displayName', 'The group\'s name, unique case-insensitively (at most 200 characters).', { required: true, uniqueness: 'server' }),
  attr('externalId', 'The identity provider\'s id of the group, unique.', { caseExact: true, uniqueness: 'server' }),
  attr('members', 'The users in the group.', {
    type: 'complex',
    multiValued: true,
    subAttributes: [attr('value', 'The user\'s id.', { mutability: 'immutable' }), attr('display', 'The user\'s userName.', { mutability: 'readOnly' }), { ...attr('$ref', 'The user\'s URL.', { mutability: 'immutable' }), type: 'reference', referenceTypes: ['User'] }, attr('type', 'Always User.', { mutability: 'immutable', canonicalValues: ['User'] })]
  })
]

export function discovery (base: string, documentationUri: string) {
  const schema = (id: string, name: string, description: string, attributes: Attr[]) => ({
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:Schema'], id, name, description, attributes, meta: { resourceType: 'Schema', location: `${base}/Schemas/${id}` }
  })
  const resourceType = (name: string, endpoint: string, description: string, schemaId: string) => ({
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:ResourceType'], id: name, name, endpoint, description, schema: schemaId, schemaExtensions: [], meta: { resourceType: 'ResourceType', location: `${base}/ResourceTypes/${name}` }
  })
  return {
    serviceProviderConfig: {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'],
      documentationUri,
      patch: { supported: true },
      bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
      filter: { supported: true, maxResults: MAX_COUNT },
      changePassword: { supported: false },
      sort: { supported: true },
      etag: { supported: true },
      authenticationSchemes: [{ type: 'oauthbearertoken', name: 'OAuth Bearer Token', description: 'An access token of an API client with scope scim (POST /auth/token, client credentials).', primary: true }],
      meta: { resourceType: 'ServiceProviderConfig', location: `${base}/ServiceProviderConfig` }
    },
    resourceTypes: [
      resourceType('User', '/Users', 'The organisation\'s users', SCHEMAS.user),
      resourceType('Group', '/Groups', 'Groups of users', SCHEMAS.group)
    ],
    schemas: [
      schema(SCHEMAS.user, 'User', 'User Account', USER_ATTRIBUTES),
      schema(SCHEMAS.group, 'Group', 'Group', GROUP_ATTRIBUTES)
    ]
  }
}
