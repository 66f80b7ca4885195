// --systems of bench:replication (args.ts): the prototype's variants are systems of their own, and
// what each variant drops follows from its name (system.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError, parseBenchArgs } from './args.ts';
import { PROTO_SYSTEMS, isProtoSystem, protoVariant } from './system.ts';

test('--systems takes etcd, raftauth and every prototype variant, in the order given', () => {
  assert.deepEqual(parseBenchArgs([]).systems, ['etcd', 'raftauth'], 'the default is unchanged');
  assert.deepEqual(parseBenchArgs(['--systems', 'etcd,raftauth,proto,proto-noworker']).systems, ['etcd', 'raftauth', 'proto', 'proto-noworker']);
  assert.deepEqual(parseBenchArgs(['--systems', ` ${PROTO_SYSTEMS.join(' , ')} `]).systems, [...PROTO_SYSTEMS]);
});

test('--systems refuses an unknown name, an empty one and a repeat', () => {
  assert.throws(() => parseBenchArgs(['--systems', 'etcd,proto-fast']), (e: unknown) => e instanceof UsageError && /unknown system "proto-fast"/.test(e.message) && /proto-noworker/.test(e.message));
  assert.throws(() => parseBenchArgs(['--systems', '']), UsageError);
  assert.throws(() => parseBenchArgs(['--systems', 'etcd,']), UsageError);
  assert.throws(() => parseBenchArgs(['--systems', 'proto,proto']), /each system once/);
});

test('a prototype variant drops what its name says', () => {
  assert.deepEqual(protoVariant('proto'), { worker: true, tls: true });
  assert.deepEqual(protoVariant('proto-noworker'), { worker: false, tls: true });
  assert.deepEqual(protoVariant('proto-notls'), { worker: true, tls: false });
  assert.deepEqual(protoVariant('proto-noworker-notls'), { worker: false, tls: false });
  assert.ok(PROTO_SYSTEMS.every(isProtoSystem));
  assert.ok(!isProtoSystem('raftauth') && !isProtoSystem('etcd') && !isProtoSystem('prototype'));
});
