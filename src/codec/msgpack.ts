// The project's one msgpack value codec (msgpackr), at the bottom of the layers (docs/architecture.md
// "Layers"): the state machine stores values with it, commands carry payloads in it, crypto seals
// with it and the IPC channel frames with it, and none of those layers may import another for it.
//
// Records off: plain maps and arrays, so every node and version decodes the same bytes the same way.
import { Packr } from 'msgpackr';

const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false });

/** msgpack bytes of `v` (the encoding of state values and command payloads). */
export function packValue(v: unknown): Uint8Array {
  return packr.pack(v);
}

/** The value of msgpack bytes; throws on bytes that are not msgpack. The caller checks the shape. */
export function unpackValue<T>(b: Uint8Array): T {
  return packr.unpack(b) as T;
}
