// RFC 8628 §3.4/§3.5 device access token request. Polling state (pending, slow_down, expiry) and
// single use are decided in apply (tokens ops device.poll and device.redeem), so a device polling
// two nodes at once is rate-limited the same and cannot be answered twice.
import { tokenHash } from '../../crypto/tokens.ts';
import { requestMeta } from '../context.ts';
import { tokens } from '../../state/tokens.ts';
import type { TOKENS_WRITES } from '../../state/tokens.ts';
import { must } from '../../state/contract.ts';
import type { ResultOf } from '../../state/contract.ts';
import { AccessDenied, AuthorizationPending, ExpiredToken, InvalidGrant, SlowDown } from '../errors.ts';
import { required } from '../form.ts';
import { prepareUserGrant } from '../issue.ts';
import type { DeviceApproval, DevicePayload } from '../records.ts';
import type { GrantHandler } from './grant.ts';

/** The tokens domain's `device.get` answer. */
export type { DeviceView } from '../../state/tokens.ts';

type PollStatus = ResultOf<(typeof TOKENS_WRITES)['device.poll']>['status'];

export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

export const deviceCodeGrant: GrantHandler = {
  grantType: DEVICE_CODE_GRANT,
  async handler(ctx, req, client, params) {
    const hash = tokenHash(required(params, 'device_code'));
    let view = must(await tokens.read['device.get'](ctx, { hash }), 'tokens.device.get');
    if (!view) throw new InvalidGrant('the device_code is invalid');
    const p = ctx.crypto.sealer().openValue<DevicePayload>(view.sealed, `device:${hash}`);
    // §3.4: the device code was issued to this client (the same check as a code's client binding, RFC 6749 §4.1.3).
    if (p.clientId !== client.client_id) throw new InvalidGrant('the device_code was issued to another client');
    if (view.status === 'pending') {
      const { status } = must(await tokens['device.poll'](ctx, { hash }), 'tokens.device.poll');
      if (status !== 'approved') throw pollError(status);
      // The user approved between our read and the poll: read the approval and continue.
      view = must(await tokens.read['device.get'](ctx, { hash }), 'tokens.device.get');
      if (!view) throw new InvalidGrant('the device_code is invalid');
    }
    if (view.status === 'denied') throw new AccessDenied('the user denied the authorization request');
    if (view.status === 'consumed') throw new InvalidGrant('the device_code was already used');
    if (view.exp <= ctx.now()) throw new ExpiredToken('the device_code has expired');
    if (view.approval === null) throw new InvalidGrant('the device_code is invalid');
    const approval = ctx.crypto.sealer().openValue<DeviceApproval>(view.approval, `approval:${hash}`);
    const g = prepareUserGrant(ctx, client, { auth: approval.auth, scope: approval.scope, audience: p.audience, nonce: null });
    const meta = { ...requestMeta(req), sub: approval.auth.sub, clientId: client.client_id };
    const r = must(await tokens['device.redeem'](ctx, { hash, family: g.family, rt: g.rt, at: g.at, meta }), 'tokens.device.redeem');
    if (r.ok) return g.body;
    switch (r.reason) {
      case 'expired':
        throw new ExpiredToken('the device_code has expired');
      case 'consumed':
        throw new InvalidGrant('the device_code was already used');
      case 'not_approved':
        throw new AuthorizationPending('the user has not approved the request yet');
      default:
        throw new InvalidGrant('the device_code is invalid');
    }
  },
};

/** A pending poll's outcome as its RFC 8628 §3.5 error. */
function pollError(status: Exclude<PollStatus, 'approved'>): Error {
  switch (status) {
    case 'authorization_pending':
      return new AuthorizationPending('the user has not completed the authorization yet');
    case 'slow_down':
      return new SlowDown(`polling too fast; wait at least the interval (now increased by 5 s) between requests`);
    case 'expired_token':
      return new ExpiredToken('the device_code has expired');
    case 'access_denied':
      return new AccessDenied('the user denied the authorization request');
    case 'consumed':
      return new InvalidGrant('the device_code was already used');
  }
}
