import { Type, type Static } from '@sinclair/typebox'
import { RecoveryCode, TotpCode } from './sessions.ts'

/** Two-factor login: TOTP enrolment, activation, disabling. */

export const TotpEnrolment = Type.Object({
  secret: Type.String({ description: 'The shared secret, base32 (RFC 4648), to type into an authenticator app.' }),
  otpauth_uri: Type.String({ description: 'The same as an otpauth:// URI, for a QR code.' }),
  algorithm: Type.Literal('SHA1'),
  digits: Type.Literal(6),
  period: Type.Literal(30)
}, { additionalProperties: false, description: 'Not active until POST /auth/mfa/totp/verify confirms a code.' })

export const CodeOnly = Type.Object({ code: TotpCode }, { additionalProperties: false })

export const RecoveryCodes = Type.Object({
  recovery_codes: Type.Array(Type.String(), { minItems: 10, maxItems: 10, description: 'Ten single-use codes that replace a TOTP code when the authenticator is lost: shown this once, stored hashed.' })
}, { additionalProperties: false })

export const SecondFactor = Type.Object({
  code: Type.Optional(TotpCode),
  recovery_code: Type.Optional(RecoveryCode)
}, { additionalProperties: false, description: 'A current TOTP code or a recovery code (exactly one).' })
export type SecondFactorBody = Static<typeof SecondFactor>
