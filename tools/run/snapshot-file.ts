// The file `virtio-emu run --snapshot-at N FILE` writes and `run --restore
// FILE` reads: one msgpack map (format 'virtio-emu-run-snapshot', version 1)
//
//   run   { options: the run's command-line options (as parsed, without
//           --snapshot-at, --json and --trace), scenario?: { file, text } }
//   at    the scenario step (its index) or the PM cycle (0: after the first
//         I/O check) after which the snapshot was taken
//   doc   the device snapshot document (emulator/snapshot/format.ts)
//   ram   { size, chunkSize: 65536, chunks: [[index, bytes]] }: guest RAM,
//         the chunks holding a non-zero byte
//
// A file is at most RUN_LIMITS.maxSnapshotFileBytes. Reading checks the
// size before reading anything (a FIFO or a device is refused), then every
// field before anything is built from it; writing goes to a temporary file
// renamed over FILE when complete.
import { closeSync, fstatSync, openSync, readSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { Packr } from 'msgpackr';
import { MACHINE_LIMITS } from '../../emulator/machine.js';
import { SnapshotError, bytes, fail, int, list, plainMap, record, shown, str } from '../../emulator/snapshot/fields.js';
import { SNAPSHOT_LIMITS, decodeSnapshot } from '../../emulator/snapshot/format.js';
import { RUN_LIMITS, SCENARIO_LIMITS } from '../limits.js';
import { UsageError } from '../usage-error.js';

export const RUN_SNAPSHOT_FORMAT = 'virtio-emu-run-snapshot';
export const RUN_SNAPSHOT_VERSION = 1;
const RAM_CHUNK = 64 * 1024;
const MAX_OPTION_VALUES = 64;
const MAX_OPTION_LENGTH = 4096;

/** Command-line options as parsed: a string, a flag, or a repeated option's strings. */
export type StoredOptions = Record<string, string | boolean | string[]>;

export interface RunSnapshot {
  run: { options: StoredOptions; scenario?: { file: string; text: string } };
  at: number;
  doc: Uint8Array;
  /** Guest RAM, whole. */
  ram: Uint8Array;
}

const codec = new Packr({ useRecords: false, moreTypes: false });

/** The chunks of guest RAM with a non-zero byte. */
function ramChunks(ram: Uint8Array): [number, Uint8Array][] {
  const out: [number, Uint8Array][] = [];
  for (let at = 0; at < ram.length; at += RAM_CHUNK) {
    const c = ram.subarray(at, Math.min(ram.length, at + RAM_CHUNK));
    if (c.some((b) => b !== 0)) out.push([at / RAM_CHUNK, c]);
  }
  return out;
}

/** Write the file (complete, or not at all: a temporary file renamed over it). */
export function writeRunSnapshot(file: string, s: RunSnapshot): void {
  const bytes = codec.pack({
    format: RUN_SNAPSHOT_FORMAT,
    version: RUN_SNAPSHOT_VERSION,
    run: s.run,
    at: s.at,
    doc: s.doc,
    ram: { size: s.ram.length, chunkSize: RAM_CHUNK, chunks: ramChunks(s.ram) },
  });
  if (bytes.length > RUN_LIMITS.maxSnapshotFileBytes) throw new Error(`snapshot file of ${bytes.length} bytes would be larger than the ${RUN_LIMITS.maxSnapshotFileBytes}-byte limit`);
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, bytes);
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new Error(`cannot write snapshot file '${file}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The file's bytes: a regular file of at most the limit, checked before it is read. */
function readBounded(file: string): Uint8Array {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(`cannot read snapshot file '${file}': ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (code ?? 'error')}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new UsageError(`snapshot file '${file}' is not a regular file`);
    const max = RUN_LIMITS.maxSnapshotFileBytes;
    if (st.size > max) throw new UsageError(`snapshot file '${file}' is ${st.size} bytes, larger than the ${max}-byte limit`);
    // One byte more than the size: a file that grows while read is refused too.
    const buf = new Uint8Array(st.size + 1);
    let n = 0;
    for (;;) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
      if (n > st.size) throw new UsageError(`snapshot file '${file}' grew while it was read`);
    }
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

function readOptions(v: unknown, path: string): StoredOptions {
  const o = plainMap(v, path);
  const keys = Object.keys(o);
  if (keys.length > MAX_OPTION_VALUES) fail(path, `more than ${MAX_OPTION_VALUES} options`);
  const out: StoredOptions = {};
  for (const k of keys) {
    const p = `${path}.${k.slice(0, 40)}`;
    const x = o[k];
    if (typeof x === 'boolean') out[k] = x;
    else if (typeof x === 'string') out[k] = str(x, p, MAX_OPTION_LENGTH);
    else out[k] = list(x, p, MAX_OPTION_VALUES, (y, yp) => str(y, yp, MAX_OPTION_LENGTH));
  }
  return out;
}

/**
 * A snapshot file, read and checked: the envelope's every field, the
 * device document's structure (the machine checks its contents), and guest
 * RAM against the document's layout, before RAM is rebuilt from it.
 * Every problem is a UsageError naming the file.
 */
export function readRunSnapshot(file: string): RunSnapshot {
  const raw = readBounded(file);
  try {
    let top: unknown;
    try {
      top = codec.unpack(raw);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      if (msg.startsWith('Data read, but end of buffer not reached')) fail('', 'not a snapshot file (bytes after its first msgpack value)');
      fail('', err instanceof RangeError || msg.includes('Unexpected end') ? `truncated (${raw.length} bytes)` : `not a snapshot file (${msg.slice(0, 80)})`);
    }
    const t = record(top, '', ['format', 'version', 'run', 'at', 'doc', 'ram']);
    if (t['format'] !== RUN_SNAPSHOT_FORMAT) fail('format', `expected '${RUN_SNAPSHOT_FORMAT}', got ${shown(t['format'])}`);
    if (t['version'] !== RUN_SNAPSHOT_VERSION) fail('version', `version ${shown(t['version'])} is not supported (this build reads version ${RUN_SNAPSHOT_VERSION})`);
    const r = record(t['run'], 'run', ['options'], ['scenario']);
    const run: RunSnapshot['run'] = { options: readOptions(r['options'], 'run.options') };
    if (r['scenario'] !== undefined) {
      const s = record(r['scenario'], 'run.scenario', ['file', 'text']);
      run.scenario = { file: str(s['file'], 'run.scenario.file', MAX_OPTION_LENGTH), text: str(s['text'], 'run.scenario.text', SCENARIO_LIMITS.maxFileBytes) };
    }
    const at = int(t['at'], 'at', 0, Math.max(RUN_LIMITS.maxCycles, SCENARIO_LIMITS.maxSteps));
    const doc = bytes(t['doc'], 'doc', SNAPSHOT_LIMITS.maxDocBytes);
    const layout = decodeSnapshot(doc).machine;
    const m = record(t['ram'], 'ram', ['size', 'chunkSize', 'chunks']);
    const size = int(m['size'], 'ram.size', MACHINE_LIMITS.minRamSize, MACHINE_LIMITS.maxRamSize);
    if (size !== layout.ramSize) fail('ram.size', `${size} bytes, but the document's machine has ${layout.ramSize}`);
    if (m['chunkSize'] !== RAM_CHUNK) fail('ram.chunkSize', `expected ${RAM_CHUNK}, got ${shown(m['chunkSize'])}`);
    const n = Math.ceil(size / RAM_CHUNK);
    let last = -1;
    const chunks = list(m['chunks'], 'ram.chunks', n, (c, cp) => {
      const [i, b] = list(c, cp, 2, (x) => x, 2);
      const index = int(i, `${cp}[0]`, 0, n - 1);
      if (index <= last) fail(`${cp}[0]`, `chunk ${index} out of order or repeated`);
      last = index;
      const want = Math.min(RAM_CHUNK, size - index * RAM_CHUNK);
      const data = bytes(b, `${cp}[1]`, RAM_CHUNK);
      if (data.length !== want) fail(`${cp}[1]`, `chunk ${index} is ${data.length} bytes, not ${want}`);
      return [index, data] as const;
    });
    const ram = new Uint8Array(size);
    for (const [i, data] of chunks) ram.set(data, i * RAM_CHUNK);
    return { run, at, doc, ram };
  } catch (err) {
    if (err instanceof SnapshotError) throw new UsageError(`snapshot file '${file}': ${err.message}`);
    throw err;
  }
}
