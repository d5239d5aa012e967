// Snapshot documents for tests: decode one into plain data, change it the
// way a hostile or stale file would, and encode it again.
import { Packr } from 'msgpackr';

const codec = new Packr({ useRecords: false, moreTypes: false });

/** A document as plain data (maps, arrays, numbers, strings, bytes). */
// biome-ignore lint/suspicious/noExplicitAny: tests reach into arbitrary fields of a decoded document
export type DocData = Record<string, any>;

export function readDoc(doc: Uint8Array): DocData {
  return codec.unpack(doc) as DocData;
}

export function writeDoc(data: unknown): Uint8Array {
  // A copy: pack() answers a view of the codec's reusable buffer.
  return new Uint8Array(codec.pack(data));
}

/** The document with `change` applied to a copy of its data. */
export function editDoc(doc: Uint8Array, change: (d: DocData) => void): Uint8Array {
  const d = readDoc(doc);
  change(d);
  return writeDoc(d);
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
