// Lint rules. The important one is the purity fence around src/raft: the consensus core takes
// messages and ticks and hands back data, so it may import nothing but its own files, and may not
// read a clock, draw randomness or schedule timers (DESIGN principle 1). Deterministic simulation
// depends on it.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

const impureGlobals = ['Date', 'setTimeout', 'setInterval', 'setImmediate', 'queueMicrotask', 'process', 'performance', 'crypto', 'require'].map((name) => ({
  name,
  message: `src/raft is pure: '${name}' is not allowed (inject time, randomness and I/O from the driver).`,
}));

/**
 * The fence of one layer (docs/architecture.md "Layers" has the table and the reasons): a file of
 * `layer` may import, of the project, only its own layer, what `allow` matches, and what `typeOnly`
 * matches by type only (`import type`, `export type`). `up` is the relative prefix that leaves the
 * layer from the files fenced (`../`, or `../../` one directory deeper). Entries are regex
 * fragments after the prefix: 'node/' is a layer, 'node/api\\.ts$' one file of it.
 */
function fence({ layer, files = [`src/${layer}/*.ts`], up = '\\.\\./', allow = [], typeOnly = [] }) {
  const plain = (x) => x.replace(/\\/g, '').replace(/\$$/, '');
  const what = [...allow.map(plain), ...typeOnly.map((t) => `${plain(t)} (types only)`)].join(', ') || 'nothing';
  const message = `src/${layer} imports of the project only ${what} (docs/architecture.md "Layers").`;
  return {
    files,
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            ...(typeOnly.length > 0 ? [{ regex: `^${up}(${typeOnly.join('|')})`, allowTypeImports: true, message: `src/${layer} may import this by type only (docs/architecture.md "Layers").` }] : []),
            { regex: `^${up}(?!${[...allow, ...typeOnly].join('|') || '$^'})`, message },
          ],
        },
      ],
    },
  };
}

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.raftauth/**', 'tmp/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    files: ['src/raft/**/*.ts'],
    languageOptions: { globals: {} },
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*'], message: 'src/raft is pure: no Node built-ins.' },
            { regex: '^[^.]', message: 'src/raft is pure: it imports only its own files (relative paths).' },
            { regex: '^\\.\\./', message: 'src/raft imports nothing of the project outside src/raft.' },
          ],
        },
      ],
      'no-restricted-globals': ['error', ...impureGlobals],
      'no-restricted-properties': [
        'error',
        { object: 'Math', property: 'random', message: 'src/raft is pure: use the injected seeded RNG.' },
      ],
    },
  },
  // The layers below the node (DESIGN "Layers": dependencies point downward). storage and transport
  // serve the raft driver: they may use the core's types and helpers, never the node, the state
  // machine or anything above them. transport also reads node identities from certificates
  // (crypto/node-identity.ts; not crypto/certs.ts, whose certificate builder a node must not load
  // at boot: docs/operations.md, "Boot time"). The layers above are fenced by fence() below; the
  // direction and the reasons are in docs/architecture.md ("Layers"). Import cycles are found by
  // scripts/check-layers.ts.
  {
    files: ['src/storage/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '^\\.\\./(?!raft/)', message: 'src/storage imports only src/raft of the project (DESIGN "Layers").' }] },
      ],
    },
  },
  {
    files: ['src/transport/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '^\\.\\./(?!raft/|crypto/node-identity\\.ts$)', message: 'src/transport imports only src/raft and crypto/node-identity.ts of the project (DESIGN "Layers").' }] },
      ],
    },
  },
  // Leaves: the msgpack value codec, the embedded assets of the single binary and the version.
  fence({ layer: 'codec' }),
  fence({ layer: 'sea' }),
  // crypto: keys, sealing, hashing; its own record types; packs with the codec.
  fence({ layer: 'crypto', allow: ['codec/'] }),
  // node: the raft driver over storage and transport; it defines the applier it drives and the API
  // it offers, and constructs nothing of the state machine (the server composes them).
  fence({ layer: 'node', allow: ['raft/', 'storage/', 'transport/', 'codec/'] }),
  // state: implements the node's applier and uses the node's API, by type only.
  fence({ layer: 'state', allow: ['codec/', 'crypto/'], typeOnly: ['node/', 'raft/'] }),
  // The services over the state layer: they write and read through its stubs; the node API only
  // as types (NodeApi, ApplyResult).
  fence({ layer: 'mfa', allow: ['state/', 'crypto/', 'codec/'], typeOnly: ['node/api\\.ts$'] }),
  fence({ layer: 'audit', allow: ['state/', 'crypto/', 'codec/'], typeOnly: ['node/api\\.ts$'] }),
  fence({ layer: 'oauth', allow: ['state/', 'mfa/', 'audit/', 'crypto/', 'codec/', 'sea/assets\\.ts$'], typeOnly: ['node/api\\.ts$'] }),
  fence({ layer: 'oauth', files: ['src/oauth/grants/*.ts'], up: '\\.\\./\\.\\./', allow: ['state/', 'mfa/', 'audit/', 'crypto/', 'codec/'], typeOnly: ['node/api\\.ts$'] }),
  // ops: metrics, health and the admin API over the node and the state layer; reads replicated
  // state through the state layer. The OAuth configuration and the core's types only as types.
  fence({ layer: 'ops', allow: ['node/', 'state/', 'audit/', 'crypto/', 'codec/', 'version\\.ts$'], typeOnly: ['oauth/', 'raft/'] }),
  // ops/backup.ts is the offline tool over a stopped node's store files (restore, force-new-cluster):
  // it works below any running node, on the store's own format, so it alone may use storage.
  fence({ layer: 'ops', files: ['src/ops/backup.ts'], allow: ['node/', 'state/', 'audit/', 'crypto/', 'codec/', 'version\\.ts$', 'storage/'], typeOnly: ['oauth/', 'raft/'] }),
  // server composes everything; only the CLI (and main.ts) sit above it.
  {
    files: ['src/server/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', { patterns: [{ regex: '^\\.\\./cli/', message: 'src/server does not import the CLI: the CLI starts the server (docs/architecture.md "Layers").' }] }],
    },
  },
);
