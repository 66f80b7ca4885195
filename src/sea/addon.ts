// Native addons in the single binary (scripts/build-binary.ts). A Node single-executable
// application can `require` built-in modules only, and dlopen(3) needs a file, so an addon travels
// as an SEA asset and is written to a private temporary file just long enough to load it:
//  - the directory comes from mkdtemp (mode 0700, checked) and the file is created exclusively
//    (`wx`), so no other user can swap the library between the write and the load;
//  - the file and its directory are removed right after process.dlopen: the loader keeps its own
//    mapping of the library, so nothing is left behind in the temp directory, even after a crash
//    later on.
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getAsset, isSea } from 'node:sea';

/** The asset name under which the build carries classic-level's prebuilt addon for the build platform. */
export const CLASSIC_LEVEL_ADDON_ASSET = 'classic-level.node';

/** Upper bound on an addon asset: classic-level's is about 1 MB; anything far larger is not what the build put there. */
export const MAX_ADDON_BYTES = 64 * 1024 * 1024;

/** Load the native addon carried as SEA asset `assetName`; returns its exports (what `require` of the .node file would). */
export function loadAddonAsset(assetName: string): unknown {
  if (!isSea()) throw new Error(`native addon asset ${assetName} is only available inside the single binary`);
  const bytes = getAsset(assetName);
  if (bytes.byteLength === 0 || bytes.byteLength > MAX_ADDON_BYTES) {
    throw new Error(`native addon asset ${assetName} has ${bytes.byteLength} bytes (expected 1..${MAX_ADDON_BYTES})`);
  }
  let dir: string;
  try {
    dir = mkdtempSync(join(tmpdir(), 'raftauth-addon-'));
  } catch (e) {
    throw new Error(`cannot write native addon ${assetName} to a private temporary directory under ${tmpdir()} (set TMPDIR to a writable directory): ${(e as Error).message}`, { cause: e });
  }
  try {
    const mode = statSync(dir).mode & 0o777;
    if (mode !== 0o700) throw new Error(`temporary addon directory ${dir} has mode ${mode.toString(8)}, expected 700`);
    const file = join(dir, assetName);
    writeFileSync(file, new Uint8Array(bytes), { flag: 'wx', mode: 0o500 });
    const module = { exports: {} as unknown };
    try {
      process.dlopen(module, file);
    } catch (e) {
      throw new Error(`cannot load native addon ${assetName} from ${file} (a TMPDIR mounted noexec cannot hold it): ${(e as Error).message}`, { cause: e });
    }
    return module.exports;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** classic-level's binding (what its `binding.js` returns through node-gyp-build from source). */
export function loadClassicLevelBinding(): unknown {
  return loadAddonAsset(CLASSIC_LEVEL_ADDON_ASSET);
}
