// The parts of scripts/package-deb.ts that decide the package's metadata, without building it
// (test/binary/deb.test.ts builds and checks a real package).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { changelogTop, debianVersion, elfArchitecture, helpCommands } from './package-deb.ts';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

describe('package-deb', () => {
  it('maps semver to a Debian version that sorts the same way (pre-releases with a tilde)', () => {
    assert.equal(debianVersion('0.1.0'), '0.1.0');
    assert.equal(debianVersion('1.0.0-rc.1'), '1.0.0~rc.1');
    assert.equal(debianVersion('1.0.0-beta-2'), '1.0.0~beta.2');
    assert.equal(debianVersion('1.2.3+build.5'), '1.2.3+build.5');
    for (const bad of ['1.0', 'v1.0.0', '1.0.0_1', '', '1.0.0-']) assert.throws(() => debianVersion(bad), /not a semver version/, bad);
  });

  it("reads the top entry of the project's changelog, which is package.json's version", () => {
    const top = changelogTop(readFileSync(join(REPO_ROOT, 'packaging', 'deb', 'changelog'), 'utf8'));
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(top.version, debianVersion(pkg.version));
    assert.match(top.maintainer, /^.+ <[^<>\s]+@[^<>\s]+>$/);
    assert.ok(!Number.isNaN(Date.parse(top.date)));
  });

  it('refuses a changelog that is not one for raftauth or lacks its trailer', () => {
    const good = 'raftauth (1.0.0) unstable; urgency=medium\n\n  * x\n\n -- A B <a@b.example>  Mon, 07 Dec 2026 12:00:00 +0000\n';
    assert.equal(changelogTop(good).version, '1.0.0');
    assert.throws(() => changelogTop(good.replace('raftauth', 'other')), /top entry is for other/);
    assert.throws(() => changelogTop(good.replace('; urgency=medium', '')), /first line must be/);
    assert.throws(() => changelogTop(good.replace(/ -- .*\n/, '')), /no " -- NAME <EMAIL> {2}DATE" line/);
    assert.throws(() => changelogTop(good.replace('Mon, 07 Dec 2026 12:00:00 +0000', 'yesterday')), /not an RFC 2822 date/);
  });

  it("takes the commands of the binary's help text for the manual page", () => {
    const usage = 'usage: raftauth <command> [options]\ncommands:\n  start --config FILE    run\n  status [--json]        status\n  members list|add       m\n  help [command]         this\n';
    assert.deepEqual(helpCommands(usage), ['start', 'status', 'members']);
    assert.throws(() => helpCommands('usage: raftauth\n'), /no "commands:" list/);
    assert.throws(() => helpCommands('commands:\n'), /listed no commands/);
  });

  it("reads the dpkg architecture from an ELF executable's header", () => {
    const expected = ({ x64: 'amd64', arm64: 'arm64' } as Record<string, string>)[process.arch];
    if (expected !== undefined) assert.equal(elfArchitecture(process.execPath), expected);
    const dir = mkdtempSync(join(tmpdir(), 'raftauth-elf-'));
    try {
      writeFileSync(join(dir, 'script'), '#!/bin/sh\necho not an executable image\n');
      assert.throws(() => elfArchitecture(join(dir, 'script')), /is not an ELF executable/);
      writeFileSync(join(dir, 'short'), '\x7fELF');
      assert.throws(() => elfArchitecture(join(dir, 'short')), /too short/);
      // A 64-bit little-endian ELF header for a machine the package does not know (RISC-V, 0xf3).
      const h = Buffer.alloc(64);
      h.writeUInt32BE(0x7f454c46, 0);
      h[4] = 2;
      h[5] = 1;
      h.writeUInt16LE(0xf3, 18);
      writeFileSync(join(dir, 'riscv'), h);
      assert.throws(() => elfArchitecture(join(dir, 'riscv')), /ELF machine 0xf3 is not one this packaging knows/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
