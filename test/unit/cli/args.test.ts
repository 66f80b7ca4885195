// The CLI's command line: parsing helpers and the exit codes of runRaftauth (0 ok, 1 failure, 2 usage).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError, list, parse, parseHostPortArg, parseNodeId, parsePositiveInt } from '../../../src/cli/args.ts';
import { cliArgs, runRaftauth } from '../../../src/cli/main.ts';
import { captureIo } from './io.ts';

describe('argument parsing', () => {
  it('refuses unknown options and extra positionals as usage errors', () => {
    assert.throws(() => parse(['--nope'], { json: { type: 'boolean' } }, 0), UsageError);
    assert.throws(() => parse(['x'], { json: { type: 'boolean' } }, 0), /unexpected argument "x"/);
    assert.deepEqual(parse(['--json', 'a'], { json: { type: 'boolean' } }, 1).positionals, ['a']);
  });

  it('accepts repeated and comma-separated lists', () => {
    const { values } = parse(['--admin', 'http://a:1,http://b:2', '--admin', 'http://c:3'], { admin: { type: 'string', multiple: true } }, 0);
    assert.deepEqual(list(values, 'admin'), ['http://a:1', 'http://b:2', 'http://c:3']);
  });

  it('validates node ids, integers and host:port', () => {
    assert.equal(parseNodeId('7', 'id'), 7);
    for (const bad of ['0', '-1', '1.5', 'x', '2147483648', '01']) assert.throws(() => parseNodeId(bad, 'id'), UsageError, bad);
    assert.throws(() => parseNodeId(undefined, 'id'), /id is required/);
    assert.equal(parsePositiveInt('100', 'n', 1000), 100);
    assert.equal(parsePositiveInt(undefined, 'n', 1000), undefined);
    assert.throws(() => parsePositiveInt('1001', 'n', 1000), UsageError);
    assert.equal(parseHostPortArg('127.0.0.1:17004', 'a'), '127.0.0.1:17004');
    assert.equal(parseHostPortArg('[::1]:80', 'a'), '[::1]:80');
    for (const bad of ['127.0.0.1', '127.0.0.1:0', '127.0.0.1:70000', 'a b:1']) assert.throws(() => parseHostPortArg(bad, 'a'), UsageError, bad);
  });
});

describe('runRaftauth exit codes', () => {
  const cases: [string[], number, RegExp][] = [
    [[], 2, /usage: raftauth <command>/],
    [['frobnicate'], 2, /unknown command "frobnicate"/],
    [['members'], 2, /members needs a subcommand/],
    [['members', 'rename'], 2, /unknown members subcommand/],
    [['members', 'promote'], 2, /the node id is required/],
    [['members', 'promote', '2', '--id', '3'], 2, /give the node id once/],
    [['members', 'add', '--id', '4', '--raft-address', '127.0.0.1:1'], 2, /--http-address is required/],
    [['transfer-leader'], 2, /target node id is required/],
    [['status', '--bogus'], 2, /Unknown option '--bogus'/],
    [['start'], 2, /start takes --config FILE/],
    [['start', '--config'], 2, /start takes --config FILE/],
    [['certs'], 2, /certs needs a subcommand/],
    [['certs', 'init'], 2, /--dir is required/],
    [['certs', 'issue', '--dir', '/nonexistent'], 2, /--id is required/],
  ];
  for (const [argv, code, msg] of cases) {
    it(`${JSON.stringify(argv)} exits ${code}`, async () => {
      const io = captureIo({}, '/nonexistent-cwd');
      assert.equal(await runRaftauth(argv, io), code);
      assert.match(io.stdout() + io.stderr(), msg);
    });
  }

  it('an admin command without a token is a usage error; without any admin URL too', async () => {
    let io = captureIo({ RAFTAUTH_ADMIN: 'http://127.0.0.1:1' }, '/nonexistent-cwd');
    assert.equal(await runRaftauth(['status'], io), 2);
    assert.match(io.stderr(), /no admin token/);
    io = captureIo({ RAFTAUTH_ADMIN_TOKEN: 'x'.repeat(40) }, '/nonexistent-cwd');
    assert.equal(await runRaftauth(['status'], io), 2);
    assert.match(io.stderr(), /no admin URL/);
  });

  it('a name an object inherits (constructor, toString, __proto__) is an unknown command, not a crash', async () => {
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      const io = captureIo();
      assert.equal(await runRaftauth([name], io), 2, name);
      assert.match(io.stderr(), /unknown command/, name);
      const help = captureIo();
      assert.equal(await runRaftauth(['help', name], help), 0, `help ${name}`);
      assert.match(help.stdout(), /^usage: raftauth <command>/, `help ${name} shows the general usage`);
    }
  });

  it('help and --help exit 0 with the usage', async () => {
    for (const argv of [['help'], ['--help'], ['help', 'members'], ['members', '--help']]) {
      const io = captureIo();
      assert.equal(await runRaftauth(argv, io), 0, JSON.stringify(argv));
      assert.match(io.stdout(), /usage/);
    }
  });
});

describe('the program\'s arguments (cliArgs, src/main.ts)', () => {
  it('a bare --config FILE is start --config FILE; everything else is passed as it is', () => {
    assert.deepEqual(cliArgs(['--config', 'n.yaml']), ['start', '--config', 'n.yaml']);
    assert.deepEqual(cliArgs(['--config=n.yaml']), ['start', '--config=n.yaml']);
    assert.deepEqual(cliArgs(['start', '--config', 'n.yaml']), ['start', '--config', 'n.yaml']);
    assert.deepEqual(cliArgs(['status', '--config', 'n.yaml']), ['status', '--config', 'n.yaml']);
    assert.deepEqual(cliArgs([]), []);
    assert.deepEqual(cliArgs(['--configx']), ['--configx']);
  });
});
