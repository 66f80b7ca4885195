// `npm run package:deb`: a Debian package of the single binary, for bare-metal operators.
//
//   /usr/bin/raftauth                      the single binary (npm run build:binary; Node.js inside)
//   /lib/systemd/system/raftauth.service   cluster-configs/systemd/raftauth.service
//   /etc/raftauth/node.yaml                cluster-configs/systemd/node.yaml (a conffile)
//   /var/lib/raftauth                      the node's state directory (raftauth:raftauth 0700)
//   /usr/share/doc/raftauth/               copyright (raftauth's and every embedded component's
//                                          license), changelog.gz (packaging/deb/changelog)
//   /usr/share/man/man1/raftauth.1.gz      made from the binary's own `help` output
//   /usr/share/lintian/overrides/raftauth  packaging/deb/lintian-overrides (each with its reason)
//   DEBIAN/                                control (packaging/deb/control + computed fields),
//                                          conffiles, md5sums, postinst (creates the raftauth
//                                          user), prerm, postrm (packaging/deb/)
//
// Computed control fields: Version (package.json's, which must be the top entry of
// packaging/deb/changelog), Architecture (`dpkg --print-architecture`, checked against the
// binary's ELF machine), Depends (adduser for postinst, plus what dpkg-shlibdeps finds for the
// binary and for the LevelDB addon it carries and dlopens), Built-Using (the Debian package of the
// Node.js the binary was made from, when it came from one), Installed-Size.
//
// The package is built with `dpkg-deb --build --root-owner-group` (every file root:root in the
// archive; postinst sets the two directory owners with dpkg-statoverride) and then checked with
// lintian: any E: tag fails the build.
//
// Usage: npm run package:deb [-- --out DIR] [--xz-level N] [--no-lintian]
//   --out DIR      where raftauth_<version>_<arch>.deb goes (default dist/)
//   --xz-level N   xz compression level 0-9 (default 6, dpkg-deb's); 1 is ~5x faster for ~15% more
//   --no-lintian   skip the lintian check (test/binary/deb.test.ts runs it itself)
// Needs dpkg-dev (dpkg-shlibdeps) and lintian (Debian packages; .ci/run installs them).
import { spawnSync } from 'node:child_process';
import type { SpawnSyncOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { classicLevelPrebuild } from './build-binary.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Where `npm run build:binary` leaves the single binary (its default output): the one place this
 * packaging, its test and the docs take it from.
 */
export const BUILT_BINARY = join(ROOT, 'dist', 'raftauth');
export const PACKAGE_NAME = 'raftauth';
const PACKAGING_DIR = join(ROOT, 'packaging', 'deb');
export const UNIT_SOURCE = join(ROOT, 'cluster-configs', 'systemd', 'raftauth.service');
export const CONFIG_SOURCE = join(ROOT, 'cluster-configs', 'systemd', 'node.yaml');

/** Paths inside the package, relative to /. The unit's ExecStart names BINARY and CONFIG. */
export const DEB_PATHS = {
  binary: 'usr/bin/raftauth',
  unit: 'lib/systemd/system/raftauth.service',
  config: 'etc/raftauth/node.yaml',
  stateDir: 'var/lib/raftauth',
  docDir: 'usr/share/doc/raftauth',
  manPage: 'usr/share/man/man1/raftauth.1.gz',
  lintianOverrides: 'usr/share/lintian/overrides/raftauth',
} as const;

/** Output kept from a tool (shown when it fails). */
const MAX_TOOL_OUTPUT_BYTES = 64 * 1024 * 1024;
/** The binary build (bundle, blob, inject): ~7 s alone, much more on a loaded 2-core machine. */
const BUILD_BINARY_TIMEOUT_MS = 10 * 60_000;
/** dpkg-deb compressing ~100 MB with xz -6 takes about a minute of CPU. */
const DPKG_DEB_TIMEOUT_MS = 15 * 60_000;
const LINTIAN_TIMEOUT_MS = 15 * 60_000;
const QUICK_TOOL_TIMEOUT_MS = 120_000;

export interface DebOptions {
  /** Directory the .deb goes to. Default dist/. */
  readonly outDir?: string;
  /** xz level for dpkg-deb, 0-9. Default 6. */
  readonly xzLevel?: number;
  /** Run lintian and fail on E: tags. Default true. */
  readonly lintian?: boolean;
  /** Progress lines. Default: none. */
  readonly log?: (line: string) => void;
}

export interface DebResult {
  readonly debPath: string;
  readonly version: string;
  readonly architecture: string;
  readonly depends: string;
  /** lintian's output lines (tags), when it ran. */
  readonly lintian: readonly string[] | null;
}

// ---------------------------------------------------------------------------------------------
// tools

/** Which Debian package provides a tool this script runs (named in the error when it is missing). */
const TOOL_PACKAGES: Readonly<Record<string, string>> = {
  'dpkg-deb': 'dpkg',
  dpkg: 'dpkg',
  'dpkg-query': 'dpkg',
  'dpkg-shlibdeps': 'dpkg-dev',
  lintian: 'lintian',
  npm: 'npm',
};

interface ToolResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a tool; a missing tool or a failure (a non-zero exit) throws with its output. */
function tool(cmd: string, args: readonly string[], opts: SpawnSyncOptions & { timeoutMs?: number } = {}): ToolResult {
  const env = { ...process.env, ...(opts.env ?? {}) };
  // A test runner's NODE_OPTIONS must not reach npm or the binary build.
  delete env.NODE_OPTIONS;
  const r = spawnSync(cmd, args, { ...opts, env, encoding: 'utf8', maxBuffer: MAX_TOOL_OUTPUT_BYTES, timeout: opts.timeoutMs ?? QUICK_TOOL_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`${cmd} is not installed (Debian package ${TOOL_PACKAGES[cmd] ?? '?'}; .ci/run installs what the build needs)`);
    throw new Error(`${cmd} ${args.join(' ')} failed: ${r.error.message}`);
  }
  const status = r.status ?? -1;
  if (status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (exit code ${r.status}, signal ${r.signal}):\n${r.stdout}${r.stderr}`);
  }
  return { code: status, stdout: r.stdout, stderr: r.stderr };
}

// ---------------------------------------------------------------------------------------------
// version, changelog, architecture

/**
 * package.json's semver as a Debian version (Debian Policy §5.6.12): a pre-release (`1.0.0-rc.1`)
 * sorts before its release only with a tilde (`1.0.0~rc.1`). This is a native package (no
 * separate Debian revision): the project and its packaging are released together.
 */
export function debianVersion(semver: string): string {
  const m = /^(\d+\.\d+\.\d+)(?:-([0-9A-Za-z.-]+))?(?:\+([0-9A-Za-z.]+))?$/.exec(semver);
  if (!m) throw new Error(`package.json version ${JSON.stringify(semver)} is not a semver version this packaging can map to a Debian version`);
  return `${m[1]}${m[2] !== undefined ? `~${m[2].replace(/-/g, '.')}` : ''}${m[3] !== undefined ? `+${m[3]}` : ''}`;
}

export interface ChangelogEntry {
  readonly version: string;
  readonly maintainer: string;
  /** RFC 2822 date of the entry. */
  readonly date: string;
}

/** The top entry of a Debian changelog (Policy §4.4): `pkg (version) dist; urgency=u` … ` -- name <mail>  date`. */
export function changelogTop(text: string): ChangelogEntry {
  const head = /^([a-z0-9][a-z0-9+.-]+) \(([^()\s]+)\) [a-z-]+(?: [a-z-]+)*; urgency=[a-z]+\n/.exec(text);
  if (!head) throw new Error('packaging/deb/changelog: the first line must be "raftauth (VERSION) DISTRIBUTION; urgency=URGENCY"');
  if (head[1] !== PACKAGE_NAME) throw new Error(`packaging/deb/changelog: the top entry is for ${head[1]}, not ${PACKAGE_NAME}`);
  const trailer = /^ -- (.+ <[^<>\s]+@[^<>\s]+>) {2}(\S.*)$/m.exec(text);
  if (!trailer) throw new Error('packaging/deb/changelog: the top entry has no " -- NAME <EMAIL>  DATE" line');
  if (Number.isNaN(Date.parse(trailer[2]!))) throw new Error(`packaging/deb/changelog: the date ${JSON.stringify(trailer[2])} is not an RFC 2822 date`);
  return { version: head[2]!, maintainer: trailer[1]!, date: trailer[2]! };
}

/** ELF e_machine values of the architectures the single binary is built for, as dpkg names them. */
const ELF_MACHINES: Readonly<Record<number, string>> = { 0x3e: 'amd64', 0xb7: 'arm64' };

/** The dpkg architecture of an ELF executable (from its header), or an error for anything else. */
export function elfArchitecture(file: string): string {
  const fd = openSync(file, 'r');
  const h = Buffer.alloc(20);
  try {
    if (readSync(fd, h, 0, 20, 0) !== 20) throw new Error(`${file} is too short to be an ELF executable`);
  } finally {
    closeSync(fd);
  }
  if (h.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${file} is not an ELF executable`);
  if (h[4] !== 2 || h[5] !== 1) throw new Error(`${file} is not a 64-bit little-endian ELF executable`);
  const machine = h.readUInt16LE(18);
  const arch = ELF_MACHINES[machine];
  if (arch === undefined) throw new Error(`${file}: ELF machine 0x${machine.toString(16)} is not one this packaging knows (${Object.values(ELF_MACHINES).join(', ')})`);
  return arch;
}

// ---------------------------------------------------------------------------------------------
// copyright

/** The Expat ("MIT") text, for an embedded package that declares MIT but ships no license file. */
const EXPAT_TEXT = `Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
associated documentation files (the "Software"), to deal in the Software without restriction,
including without limitation the rights to use, copy, modify, merge, publish, distribute,
sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT
NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES
OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN
CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.`;

const APACHE_2_REFERENCE = 'On Debian systems the full text of the Apache License, Version 2.0, is in /usr/share/common-licenses/Apache-2.0.';

/**
 * The full Apache 2.0 terms inside another text (Node.js's LICENSE quotes them for OpenSSL and
 * others), replaced by a pointer to Debian's copy: Debian Policy §12.5 wants common licenses
 * referred to, not repeated (lintian: copyright-file-contains-full-apache-2-license).
 */
function replaceApacheTerms(text: string): string {
  return text.replace(/Apache License\s+Version 2\.0, January 2004[\s\S]*?END OF TERMS AND CONDITIONS/g, `Apache License, Version 2.0 (terms not repeated here). ${APACHE_2_REFERENCE}`);
}

/** A text as the continuation lines of a deb822 field: each line indented by one space, empty lines as " .". */
function fieldText(text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .replace(/\t/g, '        ')
    .trim()
    .split('\n')
    .map((l) => (l.trim() === '' ? ' .' : ` ${l.trimEnd()}`))
    .join('\n');
}

interface EmbeddedPackage {
  readonly name: string;
  readonly version: string;
  readonly license: string;
  readonly dir: string;
}

/**
 * The npm packages that can be inside the binary: every installed package of package-lock.json
 * that is not a development dependency. The bundle holds at most these (esbuild follows imports
 * from src/ only through production dependencies), so naming them all errs on the side of naming
 * one too many, never one too few.
 */
export function embeddedPackages(): EmbeddedPackage[] {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string; license?: string; dev?: boolean }> };
  const out: EmbeddedPackage[] = [];
  for (const [path, p] of Object.entries(lock.packages)) {
    if (path === '' || p.dev === true) continue;
    const dir = join(ROOT, path);
    if (!existsSync(join(dir, 'package.json'))) continue; // an optional package for another platform
    const name = path.replace(/^.*node_modules\//, '');
    if (typeof p.license !== 'string' || typeof p.version !== 'string') throw new Error(`package-lock.json: ${path} has no license or version`);
    out.push({ name, version: p.version, license: p.license, dir });
  }
  return out.sort((a, b) => (a.name === b.name ? a.version.localeCompare(b.version) : a.name < b.name ? -1 : 1));
}

function licenseFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => /^(licen[cs]e|copying|notice)([.-].*)?$/i.test(f) && statSync(join(dir, f)).isFile())
    .sort();
}

/** Node.js's own LICENSE (it lists every component Node.js bundles), where installs of Node put it. */
export function nodeLicenseFile(nodeBinary: string): string {
  const bin = dirname(realpathSync(nodeBinary));
  const candidates = [
    join(bin, '..', 'share', 'doc', 'nodejs', 'LICENSE'), // Debian's and NodeSource's packages
    join(bin, '..', 'LICENSE'), // the nodejs.org tarballs
    join(bin, '..', 'share', 'doc', 'node', 'LICENSE'),
  ];
  const found = candidates.find((f) => existsSync(f));
  if (!found) throw new Error(`cannot find Node.js's LICENSE beside ${nodeBinary} (looked at ${candidates.join(', ')}); the package's copyright file must carry it`);
  return found;
}

/** /usr/share/doc/raftauth/copyright, machine-readable (DEP-5). */
export function copyrightText(nodeLicense: string): string {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { license: string };
  if (pkg.license !== 'Apache-2.0') throw new Error(`package.json license is ${pkg.license}; scripts/package-deb.ts writes the copyright file for Apache-2.0`);
  const paras: string[] = [];
  paras.push(
    [
      'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/',
      `Upstream-Name: ${PACKAGE_NAME}`,
      'Comment: /usr/bin/raftauth is a Node.js single executable application: one file that holds',
      " raftauth's own code, the npm packages listed below and Node.js itself (its LICENSE, which",
      ' lists the components Node.js bundles, is the last paragraph). The npm packages are every',
      ' production dependency of raftauth that was installed when the package was built, so the',
      ' list may name a package the executable does not contain, never the other way round.',
    ].join('\n'),
  );
  paras.push(['Files: *', 'Copyright: raftauth contributors', 'License: Apache-2.0', fieldText(APACHE_2_REFERENCE)].join('\n'));
  for (const p of embeddedPackages()) {
    const files = licenseFiles(p.dir);
    const texts = files.map((f) => readFileSync(join(p.dir, f), 'utf8'));
    const notices = texts.join('\n').split('\n').filter((l) => /^\s*(copyright\b|\(c\)|©)/i.test(l)).map((l) => l.trim());
    let body: string;
    if (p.license === 'Apache-2.0') {
      // The terms are Debian's common copy; a NOTICE file, which the license requires to be
      // passed on, is kept.
      const notice = files.filter((f) => /^notice/i.test(f)).map((f) => readFileSync(join(p.dir, f), 'utf8'));
      body = [APACHE_2_REFERENCE, ...notice].join('\n\n');
    } else if (texts.length > 0) {
      body = replaceApacheTerms(texts.join('\n\n'));
    } else if (p.license === 'MIT') {
      body = `${p.name} ships no license file; its package.json declares MIT:\n\n${EXPAT_TEXT}`;
    } else {
      throw new Error(`${p.dir}: no license file, and its declared license ${p.license} has no text in scripts/package-deb.ts`);
    }
    paras.push(
      [
        `Files: node_modules/${p.name}/*`,
        `Copyright: ${notices.length > 0 ? fieldText([...new Set(notices)].join('\n')).trimStart() : `the authors of ${p.name}`}`,
        `License: ${p.license}`,
        fieldText(body),
        `Comment: ${p.name} ${p.version}`,
      ].join('\n'),
    );
  }
  paras.push(
    [
      'Files: node/*',
      'Copyright: Node.js contributors and the authors of the components it bundles',
      'License: Node.js',
      fieldText(replaceApacheTerms(readFileSync(nodeLicense, 'utf8'))),
      `Comment: Node.js ${process.version}, the runtime built into /usr/bin/raftauth.`,
    ].join('\n'),
  );
  return `${paras.join('\n\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// manual page

/** roff-safe text for a no-fill block: backslashes escaped, hyphens as \-, lines starting with . or ' neutralized. */
function roff(text: string): string {
  return text
    .split('\n')
    .map((l) => l.replace(/\\/g, '\\e').replace(/-/g, '\\-'))
    .map((l) => (/^[.']/.test(l) ? `\\&${l}` : l))
    .join('\n');
}

/** The commands of the top-level `raftauth help` text (its "commands:" list), except help itself. */
export function helpCommands(usage: string): string[] {
  const after = usage.split(/^commands:$/m)[1];
  if (after === undefined) throw new Error(`raftauth help printed no "commands:" list:\n${usage}`);
  const names = [...after.matchAll(/^ {2}([a-z][a-z-]*)\b/gm)].map((m) => m[1]!).filter((n) => n !== 'help');
  if (names.length === 0) throw new Error(`raftauth help listed no commands:\n${usage}`);
  return [...new Set(names)];
}

/** raftauth(1): what the binary itself says about its commands, and where the package put things. */
function manPage(binary: string, version: string, date: string, scratchTmp: string): string {
  const help = (args: string[]): string => tool(binary, ['help', ...args], { env: { TMPDIR: scratchTmp } }).stdout.trimEnd();
  const top = help([]);
  const sections = helpCommands(top).map((c) => `.SS ${c}\n.nf\n${roff(help([c]))}\n.fi`);
  const day = new Date(Date.parse(date)).toISOString().slice(0, 10);
  return [
    `.TH RAFTAUTH 1 "${day}" "raftauth ${version}" "User Commands"`,
    '.SH NAME',
    'raftauth \\- high\\-availability OAuth 2.0 / OpenID Connect server with MFA: node and operator tool',
    '.SH SYNOPSIS',
    '.B raftauth',
    '.I command',
    '.RI [ options ]',
    '.SH DESCRIPTION',
    'One executable runs a raftauth node',
    '.RB ( "raftauth start \\-\\-config" ',
    '.IR FILE )',
    'and every operator command: membership, leadership, certificates, backups, OAuth clients, users,',
    'keys and the audit log. Under systemd the node runs as',
    '.BR raftauth.service ,',
    'as the system user',
    '.BR raftauth ,',
    'with its configuration in',
    '.IR /etc/raftauth/node.yaml ;',
    'the unit is not enabled on installation:',
    'put the certificates, keys and configuration in place first, then run',
    '.BR "systemctl enable \\-\\-now raftauth" .',
    '.SH COMMANDS',
    '.nf',
    roff(top),
    '.fi',
    ...sections,
    '.SH FILES',
    '.TP',
    '.I /etc/raftauth/node.yaml',
    "The node's configuration (a template until edited): node id, members, certificates, keys.",
    'Any key can be overridden by an environment variable',
    '.BR RAFTAUTH_ \\fISECTION\\fB_\\fIKEY\\fR.',
    '.TP',
    '.I /etc/raftauth',
    'Certificates (ca.crt, node.crt, node.key), admin.token and master.key: root:raftauth 0750.',
    '.TP',
    '.I /var/lib/raftauth',
    "The node's data (node.dataDir is /var/lib/raftauth/data): raftauth:raftauth 0700.",
    '.TP',
    '.I /lib/systemd/system/raftauth.service',
    'The hardened unit; change it with',
    '.BR "systemctl edit raftauth" .',
    '.SH SEE ALSO',
    '.BR systemctl (1),',
    '.BR journalctl (1).',
    'The operations guide, docs/operations.md in the raftauth source, describes installing a',
    'three\\-node cluster, upgrades, backups and recovery.',
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// the package

function writeFile(root: string, rel: string, content: string | Uint8Array, mode: number): void {
  const file = join(root, rel);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, content);
  chmodSync(file, mode);
}

function copyInto(root: string, rel: string, from: string, mode: number): void {
  const file = join(root, rel);
  mkdirSync(dirname(file), { recursive: true });
  copyFileSync(from, file);
  chmodSync(file, mode);
}

/** Every regular file and directory under root (relative, sorted), DEBIAN/ excluded. */
function walk(root: string, dir = root): { files: string[]; dirs: string[] } {
  const files: string[] = [];
  const dirs: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    const rel = relative(root, p);
    if (rel === 'DEBIAN') continue;
    const st = lstatSync(p);
    if (st.isDirectory()) {
      dirs.push(rel);
      const sub = walk(root, p);
      files.push(...sub.files);
      dirs.push(...sub.dirs);
    } else if (st.isFile()) files.push(rel);
    else throw new Error(`${p}: only regular files and directories go into the package`);
  }
  return { files, dirs };
}

/** dpkg-shlibdeps' Depends for these ELF files, run in `work` (it wants a debian/control there). */
function shlibsDepends(work: string, elfFiles: readonly string[]): string {
  writeFile(work, 'debian/control', `Source: ${PACKAGE_NAME}\n\nPackage: ${PACKAGE_NAME}\nArchitecture: any\n`, 0o644);
  const r = tool('dpkg-shlibdeps', ['-O', ...elfFiles.map((f) => `-e${f}`)], { cwd: work });
  const m = /^shlibs:Depends=(.+)$/m.exec(r.stdout);
  if (!m) throw new Error(`dpkg-shlibdeps printed no shlibs:Depends:\n${r.stdout}${r.stderr}`);
  return m[1]!.trim();
}

/** `Built-Using` for the Node.js the binary was made from, when a Debian package installed it (else null). */
function nodeBuiltUsing(nodeBinary: string): string | null {
  const path = realpathSync(nodeBinary);
  const owner = spawnSync('dpkg-query', ['-S', path], { encoding: 'utf8' });
  if (owner.error || owner.status !== 0) return null;
  const pkg = /^([^:\s]+)(?::[^:\s]+)?: /.exec(owner.stdout)?.[1];
  if (!pkg) return null;
  const src = tool('dpkg-query', ['-W', '-f=${source:Package} ${source:Version}', pkg]).stdout.trim().split(' ');
  if (src.length !== 2 || !src[0] || !src[1]) return null;
  return `${src[0]} (= ${src[1]})`;
}

/** A reproducible timestamp for the archive: SOURCE_DATE_EPOCH if set, else the last commit's time. */
function sourceDateEpoch(): string {
  if (process.env.SOURCE_DATE_EPOCH && /^\d+$/.test(process.env.SOURCE_DATE_EPOCH)) return process.env.SOURCE_DATE_EPOCH;
  const r = spawnSync('git', ['log', '-1', '--format=%ct'], { cwd: ROOT, encoding: 'utf8' });
  const t = r.status === 0 ? r.stdout.trim() : '';
  return /^\d+$/.test(t) ? t : String(Math.floor(Date.now() / 1000));
}

/** lintian's tags for a .deb, one per line (`E: raftauth: tag detail`). */
export function runLintian(debPath: string): string[] {
  // --fail-on none: a non-zero exit is lintian itself failing; the caller judges the tags.
  const r = tool('lintian', ['--no-cfg', '--display-info', '--show-overrides', '--fail-on', 'none', debPath], { timeoutMs: LINTIAN_TIMEOUT_MS });
  return r.stdout.split('\n').filter((l) => l.trim() !== '');
}

/** The lines lintian reports as errors (overridden tags, shown as `O:`, are not). */
export function lintianErrors(lines: readonly string[]): string[] {
  return lines.filter((l) => l.startsWith('E: '));
}

export async function buildDeb(options: DebOptions = {}): Promise<DebResult> {
  const log = options.log ?? ((): void => {});
  const xzLevel = options.xzLevel ?? 6;
  if (!Number.isInteger(xzLevel) || xzLevel < 0 || xzLevel > 9) throw new Error(`--xz-level must be an integer from 0 to 9 (got ${xzLevel})`);
  const outDir = resolve(options.outDir ?? join(ROOT, 'dist'));

  // Everything that can be checked without building comes first.
  const pkgJson = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const version = debianVersion(pkgJson.version);
  const changelog = readFileSync(join(PACKAGING_DIR, 'changelog'), 'utf8');
  const top = changelogTop(changelog);
  if (top.version !== version) {
    throw new Error(`packaging/deb/changelog's top entry is ${top.version}, package.json says ${pkgJson.version} (Debian ${version}): add a changelog entry for it`);
  }
  const architecture = tool('dpkg', ['--print-architecture']).stdout.trim();
  const nodeLicense = nodeLicenseFile(process.execPath);

  log('npm run build:binary');
  const t0 = Date.now();
  tool('npm', ['run', '--silent', 'build:binary'], { cwd: ROOT, timeoutMs: BUILD_BINARY_TIMEOUT_MS });
  // The build writes BUILT_BINARY; a build that put it elsewhere must not let an old one be packaged.
  if (!existsSync(BUILT_BINARY) || statSync(BUILT_BINARY).mtimeMs < t0 - 1_000) {
    throw new Error(`npm run build:binary did not (re)write ${BUILT_BINARY}; scripts/package-deb.ts's BUILT_BINARY must name its output`);
  }
  const binaryArch = elfArchitecture(BUILT_BINARY);
  if (binaryArch !== architecture) throw new Error(`the binary is for ${binaryArch}, but dpkg's architecture here is ${architecture}`);

  const work = mkdtempSync(join(tmpdir(), 'raftauth-deb-'));
  try {
    // dpkg-shlibdeps expects the package's tree at debian/<package>.
    const root = join(work, 'debian', PACKAGE_NAME);
    mkdirSync(root, { recursive: true });
    copyInto(root, DEB_PATHS.binary, BUILT_BINARY, 0o755);
    copyInto(root, DEB_PATHS.unit, UNIT_SOURCE, 0o644);
    copyInto(root, DEB_PATHS.config, CONFIG_SOURCE, 0o644);
    mkdirSync(join(root, DEB_PATHS.stateDir), { recursive: true });
    writeFile(root, `${DEB_PATHS.docDir}/copyright`, copyrightText(nodeLicense), 0o644);
    // gzip -9n: zlib's header carries no name and no time (lintian: package-contains-timestamped-gzip).
    writeFile(root, `${DEB_PATHS.docDir}/changelog.gz`, gzipSync(changelog, { level: 9 }), 0o644);
    const helpTmp = join(work, 'tmp');
    mkdirSync(helpTmp, { mode: 0o700 });
    writeFile(root, DEB_PATHS.manPage, gzipSync(manPage(join(root, DEB_PATHS.binary), version, top.date, helpTmp), { level: 9 }), 0o644);
    copyInto(root, DEB_PATHS.lintianOverrides, join(PACKAGING_DIR, 'lintian-overrides'), 0o644);

    // The LevelDB addon travels inside the binary and is dlopened from a temporary copy: its
    // libraries are the package's dependencies as much as the binary's own.
    const addon = join(work, 'addon', 'classic-level.node');
    mkdirSync(dirname(addon));
    copyFileSync(classicLevelPrebuild(), addon);
    const shlibs = shlibsDepends(work, [join(root, DEB_PATHS.binary), addon]);
    // adduser: postinst creates the raftauth user with it. init-system-helpers (deb-systemd-helper,
    // deb-systemd-invoke) is Essential, so it is not listed.
    const depends = `adduser, ${shlibs}`;
    const builtUsing = nodeBuiltUsing(process.execPath);
    if (builtUsing === null) log(`Node.js ${process.execPath} was not installed by a Debian package: no Built-Using field`);

    // Every directory 0755 (mkdtemp made the root 0700) and md5sums of everything but conffiles
    // (dpkg keeps their sums itself), as dh_fixperms and dh_md5sums would.
    const conffiles = [`/${DEB_PATHS.config}`];
    const { files, dirs } = walk(root);
    chmodSync(root, 0o755);
    for (const d of dirs) chmodSync(join(root, d), 0o755);
    const md5sums = files
      .filter((f) => !conffiles.includes(`/${f}`))
      .map((f) => `${createHash('md5').update(readFileSync(join(root, f))).digest('hex')}  ${f}\n`)
      .join('');
    // Installed-Size in KiB, as dpkg-gencontrol counts it: each file rounded up to a KiB, each directory 1.
    const installedKiB = files.reduce((n, f) => n + Math.ceil(statSync(join(root, f)).size / 1024), 0) + dirs.length;

    const template = readFileSync(join(PACKAGING_DIR, 'control'), 'utf8').trimEnd();
    for (const computed of ['Version', 'Architecture', 'Installed-Size', 'Depends', 'Built-Using']) {
      if (new RegExp(`^${computed}:`, 'm').test(template)) throw new Error(`packaging/deb/control must not set ${computed}: scripts/package-deb.ts computes it`);
    }
    const [first, ...rest] = template.split('\n');
    if (first !== `Package: ${PACKAGE_NAME}`) throw new Error(`packaging/deb/control must start with "Package: ${PACKAGE_NAME}"`);
    const control = [
      first,
      `Version: ${version}`,
      `Architecture: ${architecture}`,
      `Installed-Size: ${installedKiB}`,
      `Depends: ${depends}`,
      ...(builtUsing ? [`Built-Using: ${builtUsing}`] : []),
      ...rest,
      '',
    ].join('\n');
    writeFile(root, 'DEBIAN/control', control, 0o644);
    writeFile(root, 'DEBIAN/conffiles', conffiles.map((c) => `${c}\n`).join(''), 0o644);
    writeFile(root, 'DEBIAN/md5sums', md5sums, 0o644);
    for (const script of ['postinst', 'prerm', 'postrm']) copyInto(root, `DEBIAN/${script}`, join(PACKAGING_DIR, script), 0o755);
    chmodSync(join(root, 'DEBIAN'), 0o755);

    mkdirSync(outDir, { recursive: true });
    const debPath = join(outDir, `${PACKAGE_NAME}_${version}_${architecture}.deb`);
    log(`dpkg-deb --build (xz -${xzLevel}) -> ${debPath}`);
    tool('dpkg-deb', ['--build', '--root-owner-group', '-Zxz', `-z${xzLevel}`, root, debPath], { timeoutMs: DPKG_DEB_TIMEOUT_MS, env: { SOURCE_DATE_EPOCH: sourceDateEpoch() } });
    log(`built ${debPath} (${(statSync(debPath).size / 1e6).toFixed(1)} MB; Depends: ${depends})`);

    let lintian: string[] | null = null;
    if (options.lintian ?? true) {
      log('lintian');
      lintian = runLintian(debPath);
      // Errors, warnings and the overridden tags (O:) line by line; info tags (I:) and the
      // overrides' justifications (N:) counted only.
      for (const l of lintian) if (/^[EWO]: /.test(l)) log(`  ${l}`);
      log(`  (${lintian.filter((l) => l.startsWith('I: ')).length} info tags; lintian --display-info ${debPath} shows them)`);
      const errors = lintianErrors(lintian);
      if (errors.length > 0) throw new Error(`lintian found ${errors.length} error(s) in ${debPath}:\n${errors.join('\n')}`);
    }
    return { debPath, version, architecture, depends, lintian };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { out: { type: 'string' }, 'xz-level': { type: 'string' }, 'no-lintian': { type: 'boolean' } }, strict: true });
  const xz = values['xz-level'];
  if (xz !== undefined && !/^\d$/.test(xz)) {
    process.stderr.write(`package:deb: --xz-level must be a digit from 0 to 9 (got ${JSON.stringify(xz)})\n`);
    process.exit(2);
  }
  buildDeb({
    ...(values.out !== undefined ? { outDir: values.out } : {}),
    ...(xz !== undefined ? { xzLevel: Number(xz) } : {}),
    lintian: values['no-lintian'] !== true,
    log: (l) => process.stdout.write(`package:deb: ${l}\n`),
  }).catch((e: unknown) => {
    process.stderr.write(`package:deb failed: ${(e as Error)?.message ?? String(e)}\n`);
    process.exit(1);
  });
}
