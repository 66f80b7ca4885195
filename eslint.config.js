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
  // at boot: docs/operations.md, "Boot time"). The layers above are not fenced yet: their imports
  // still run both ways (docs/write-path.md, "Not built yet").
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
);
