// Reading a snapshot document's fields: every value comes from outside the
// type system (a file, a control record), so each is checked for its exact
// shape before it is used, and the first problem found ends the load with
// one SnapshotError naming the field's path (devices[1].queues[0].ring.nextAvail).
// Records must be plain maps with exactly the keys the format names: an
// unknown key, a missing one or a prototype other than Object's is refused.
import { fromWords, hi32, lo32 } from '../../core/uapi/features.js';

/** A snapshot that cannot be taken, or a document that cannot be loaded; the message is one line. */
export class SnapshotError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SnapshotError';
  }
}

/** A value for a message: short, and never the whole of a large input. */
export function shown(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 37)}...` : v);
  if (v instanceof Uint8Array) return `${v.length} bytes`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v === null) return 'null';
  if (typeof v === 'object') return 'a map';
  if (typeof v === 'bigint') return `${v}n`;
  return String(v);
}

export function fail(path: string, msg: string): never {
  throw new SnapshotError(path ? `${path}: ${msg}` : msg);
}

/** A plain map (any keys). */
export function plainMap(v: unknown, path: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array || Object.getPrototypeOf(v) !== Object.prototype) {
    fail(path, `expected a map, got ${shown(v)}`);
  }
  return v as Record<string, unknown>;
}

/** A plain map with exactly `required` keys, plus any of `optional`; returns it as a record. */
export function record(v: unknown, path: string, required: readonly string[], optional: readonly string[] = []): Record<string, unknown> {
  const r = plainMap(v, path);
  for (const k of Object.keys(r)) {
    if (!required.includes(k) && !optional.includes(k)) fail(path, `unknown field ${shown(k)}`);
  }
  for (const k of required) if (!Object.hasOwn(r, k)) fail(path, `field '${k}' missing`);
  return r;
}

/** An integer in [min, max]. */
export function int(v: unknown, path: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) fail(path, `expected an integer from ${min} to ${max}, got ${shown(v)}`);
  return v;
}

export function u32(v: unknown, path: string): number {
  return int(v, path, 0, 0xffff_ffff);
}

/** A non-negative count (a counter's value). */
export function count(v: unknown, path: string): number {
  return int(v, path, 0, Number.MAX_SAFE_INTEGER);
}

export function bool(v: unknown, path: string): boolean {
  if (typeof v !== 'boolean') fail(path, `expected true or false, got ${shown(v)}`);
  return v;
}

export function str(v: unknown, path: string, maxLength: number): string {
  if (typeof v !== 'string') fail(path, `expected a string, got ${shown(v)}`);
  if (v.length > maxLength) fail(path, `string of ${v.length} characters is longer than ${maxLength}`);
  return v;
}

export function bytes(v: unknown, path: string, maxLength: number): Uint8Array {
  if (!(v instanceof Uint8Array)) fail(path, `expected bytes, got ${shown(v)}`);
  if (v.length > maxLength) fail(path, `${v.length} bytes is more than ${maxLength}`);
  return v;
}

/** An array of at most maxLength items (exactly `length` when given), each read by `item`. */
export function list<T>(v: unknown, path: string, maxLength: number, item: (x: unknown, path: string, index: number) => T, length?: number): T[] {
  if (!Array.isArray(v)) fail(path, `expected an array, got ${shown(v)}`);
  if (length !== undefined && v.length !== length) fail(path, `expected ${length} entries, got ${v.length}`);
  if (v.length > maxLength) fail(path, `${v.length} entries is more than ${maxLength}`);
  return v.map((x, i) => item(x, `${path}[${i}]`, i));
}

/** A 64-bit feature set as its [low, high] 32-bit words (no BigInt in the document). */
export function featureWords(v: unknown, path: string): bigint {
  const [lo, hi] = list(v, path, 2, u32, 2);
  return fromWords(lo!, hi!);
}

export function toFeatureWords(f: bigint): [number, number] {
  return [lo32(f), hi32(f)];
}
