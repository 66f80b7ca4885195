// The part of oidc-provider 9 (panva/node-oidc-provider, which ships no type declarations) that the
// benchmark's oidc-provider process uses. Only what scripts/bench-oauth/oidc-provider-server.ts touches.
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  interface SavedModel {
    save(): Promise<string>;
  }
  interface GrantModel extends SavedModel {
    addOIDCScope(scope: string): void;
    addResourceScope(resource: string, scope: string): void;
  }
  interface ClientModel {
    readonly clientId: string;
  }

  class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>);
    proxy: boolean;
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    on(event: string, listener: (...args: unknown[]) => void): this;
    readonly Grant: new (init: { accountId: string; clientId: string }) => GrantModel;
    readonly AuthorizationCode: new (init: Record<string, unknown>) => SavedModel;
    readonly Client: { find(id: string): Promise<ClientModel | undefined> };
  }
  export default Provider;
}

declare module 'oidc-provider/lib/adapters/memory_adapter.js' {
  /** oidc-provider's development in-memory adapter over a store with get/set/delete (its LRU). */
  export default class MemoryAdapter {
    constructor(model: string, store: unknown, clockTolerance?: number);
  }
}

declare module 'oidc-provider/lib/helpers/lru.js' {
  export default class LRU {
    constructor(opts: { maxSize: number });
  }
}
