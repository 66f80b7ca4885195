// The MFA module: importing it registers every factor (totp, webauthn, recovery) in the registry
// of factor.ts, and gives the service the login flow and the admin API call.
import './totp.ts';
import './webauthn.ts';
import './recovery.ts';

export * from './service.ts';
export { getFactor, registeredFactors } from './factor.ts';
export type { Factor, FactorType } from './factor.ts';
