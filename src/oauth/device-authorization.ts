// POST /device_authorization (RFC 8628 §3.1, §3.2). The device gets a device code (secret, polled
// at /token) and a short user code the user types on the verification page (the browser side's
// /device). Both are stored only as hashes; the request (client, scope) is sealed to the record.
import type { FastifyInstance } from 'fastify';
import { normalizeUserCode, randomToken, randomUserCode, tokenHash } from '../crypto/tokens.ts';
import { authenticateClient } from './client-auth.ts';
import { checkGrantType, resolveScope } from './clients.ts';
import { tokens } from '../state/tokens.ts';
import { must } from '../state/contract.ts';
import type { OAuthContext } from './context.ts';
import { ServerError } from './errors.ts';
import { formParams, scopeList } from './form.ts';
import { DEVICE_CODE_GRANT } from './grants/device-code.ts';
import type { DevicePayload } from './records.ts';
import { noStore } from './token.ts';

export const DEVICE_AUTHORIZATION_PATH = '/device_authorization';
export const DEVICE_VERIFICATION_PATH = '/device';

/**
 * A fresh user code collides with a live one with probability (live codes) / 20^8 (2.56e10);
 * apply refuses a taken hash (ALREADY_EXISTS), and we draw again a bounded number of times.
 */
const MAX_CODE_ATTEMPTS = 3;

export function registerDeviceAuthorization(app: FastifyInstance, ctx: OAuthContext): void {
  app.post(DEVICE_AUTHORIZATION_PATH, async (req, reply) => {
    // §3.2 responses carry the device code, a credential: RFC 6749 §5.1's no-store applies.
    noStore(reply);
    const params = formParams(req);
    // §3.1: "the client must authenticate … as described in Section 3.2.1 of [RFC6749]" when confidential; a public client sends client_id.
    const client = await authenticateClient(ctx, req, params, { allowPublic: true, endpointUrl: ctx.config.issuer + DEVICE_AUTHORIZATION_PATH });
    checkGrantType(client, DEVICE_CODE_GRANT);
    const scope = resolveScope(ctx, client, scopeList(params.scope));
    const payload: DevicePayload = { clientId: client.client_id, scope, audience: ctx.config.issuer };
    const expiresInS = ctx.config.deviceCodeTtlS;
    const intervalS = ctx.config.devicePollIntervalS;
    for (let attempt = 1; ; attempt++) {
      const deviceCode = randomToken();
      const userCode = randomUserCode();
      const hash = tokenHash(deviceCode);
      const normalized = normalizeUserCode(userCode);
      if (normalized === null) throw new ServerError('generated a user code that does not normalize');
      const o = await tokens['device.create'](ctx, {
        hash,
        userCodeHash: tokenHash(normalized),
        exp: ctx.now() + expiresInS * 1000,
        intervalMs: intervalS * 1000,
        sealed: ctx.crypto.sealer().sealValue(payload, `device:${hash}`),
      });
      if (o.kind === 'refused' && o.code === 'ALREADY_EXISTS' && attempt < MAX_CODE_ATTEMPTS) continue;
      must(o, 'tokens.device.create');
      const verificationUri = ctx.config.issuer + DEVICE_VERIFICATION_PATH;
      return reply.code(200).send({
        device_code: deviceCode,
        user_code: userCode,
        verification_uri: verificationUri,
        // §3.3.1: the user code in the URI, so a QR code skips typing it.
        verification_uri_complete: `${verificationUri}?user_code=${encodeURIComponent(userCode)}`,
        expires_in: expiresInS,
        interval: intervalS,
      });
    }
  });
}
