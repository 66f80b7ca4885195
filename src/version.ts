// The version of raftauth: the "version" of its package.json, shown by `raftauth --version`, in
// the status answers (admin API and HTTP /v1/status) and in /metrics (raftauth_build_info).
//
// Read once, at load, from the package.json one directory above this module: src/version.ts and
// its compiled dist/version.js both sit one level below the package root. The single binary has no
// package.json beside it; its bundler defines RAFTAUTH_VERSION (scripts/build-binary.ts).
import { readFileSync } from 'node:fs';

declare const RAFTAUTH_VERSION: string | undefined;

/** The "version" of the package.json at `url`; throws when the file has none. */
export function readPackageVersion(url: URL): string {
  const pkg = JSON.parse(readFileSync(url, 'utf8')) as { version?: unknown };
  if (typeof pkg.version !== 'string' || pkg.version.length === 0 || pkg.version.length > 64) throw new Error(`${url.pathname} has no usable "version"`);
  return pkg.version;
}

function ownVersion(): string {
  if (typeof RAFTAUTH_VERSION === 'string') return RAFTAUTH_VERSION;
  try {
    return readPackageVersion(new URL('../package.json', import.meta.url));
  } catch {
    // A tree without its package.json (copied by hand): say so rather than stop a node over it.
    return 'unknown';
  }
}

/** This build's version (package.json "version"), or 'unknown' when it cannot be found. */
export const VERSION: string = ownVersion();
