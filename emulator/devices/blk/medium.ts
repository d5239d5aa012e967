// The medium behind a virtio-blk device: guest-visible bytes that are not
// device state. A device reset or a fresh device instance (the board's power
// 'fresh') must find the same contents, so media are created through
// openMedium(), which hands back the medium a previous instance left in the
// slot's retained store (DeviceHost.retained).
//
// Both media are synchronous: the device worker serves one request at a time
// and never yields to its event loop while it serves the trap mailbox.
import { closeSync, constants, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import type { RetainedStore } from '../device.js';
import { SnapshotError, bool, bytes, count, fail, int, list, record, shown, str } from '../../snapshot/fields.js';

export interface BlockMedium {
  /** Bytes the guest may address (capacity × 512). */
  readonly size: number;
  readonly readOnly: boolean;
  /** Fill dst from byte `offset`; the caller checked offset + dst.length ≤ size. Throws on host I/O errors. */
  read(offset: number, dst: Uint8Array): void;
  /** Store src at byte `offset`; the caller checked the range and readOnly. Throws on host I/O errors. */
  write(offset: number, src: Uint8Array): void;
  /** Make completed writes durable (VIRTIO_BLK_T_FLUSH). */
  flush(): void;
}

/** Sparse chunk size of RAM media: memory is only taken for chunks the guest writes. */
const RAM_CHUNK = 64 * 1024;

/** A RAM disk; unwritten chunks read as zeros, so large sizes cost nothing until used. */
export class RamMedium implements BlockMedium {
  private readonly chunks = new Map<number, Uint8Array>();

  constructor(
    readonly size: number,
    readonly readOnly = false,
  ) {}

  /** Bytes of host memory in use. */
  get allocated(): number {
    return this.chunks.size * RAM_CHUNK;
  }

  read(offset: number, dst: Uint8Array): void {
    this.visit(offset, dst.length, (chunk, at, pos, n) => {
      if (chunk) dst.set(chunk.subarray(at, at + n), pos);
      else dst.fill(0, pos, pos + n);
    }, false);
  }

  write(offset: number, src: Uint8Array): void {
    this.visit(offset, src.length, (chunk, at, pos, n) => chunk!.set(src.subarray(pos, pos + n), at), true);
  }

  flush(): void {}

  /** The chunks the guest wrote, by index (for a snapshot; the arrays are the medium's own). */
  writtenChunks(): [number, Uint8Array][] {
    return [...this.chunks.entries()].sort((a, b) => a[0] - b[0]);
  }

  /** Replace the contents by these chunks (copied); the rest reads as zeros. */
  loadChunks(chunks: readonly [number, Uint8Array][]): void {
    this.chunks.clear();
    for (const [i, c] of chunks) this.chunks.set(i, c.slice());
  }

  private visit(
    offset: number,
    len: number,
    fn: (chunk: Uint8Array | undefined, at: number, pos: number, n: number) => void,
    allocate: boolean,
  ): void {
    for (let pos = 0; pos < len; ) {
      const index = Math.floor((offset + pos) / RAM_CHUNK);
      const at = (offset + pos) % RAM_CHUNK;
      const n = Math.min(RAM_CHUNK - at, len - pos);
      let chunk = this.chunks.get(index);
      if (!chunk && allocate) {
        chunk = new Uint8Array(RAM_CHUNK);
        this.chunks.set(index, chunk);
      }
      fn(chunk, at, pos, n);
      pos += n;
    }
  }
}

// A FileMedium dropped without close() (a board that is simply forgotten)
// must not leak its descriptor for the life of the process.
const fdCloser = new FinalizationRegistry<number>((fd) => {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
});

/**
 * A disk image accessed with positioned synchronous reads and writes. The
 * image is the user's: it is opened, never created (unless `create` is
 * given and nothing is there), extended or truncated, and only the guest's
 * own writes change it. Refused with a clear message: a path that is not a
 * regular file, an empty image, a size that is not whole 512-byte sectors
 * (unless `size` picks a prefix), a `size` larger than the image, an image
 * that exists with another size than `create` asks for.
 */
export class FileMedium implements BlockMedium {
  readonly size: number;
  /** The image did not exist and this medium created it. */
  readonly created: boolean;
  private fd: number;

  constructor(
    readonly path: string,
    size: number | undefined,
    readonly readOnly: boolean,
    /** Bytes of a new image if none exists at `path`; undefined: a missing image is an error. */
    create?: number,
  ) {
    // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below).
    const flags = (readOnly ? constants.O_RDONLY : constants.O_RDWR) | constants.O_NONBLOCK;
    let created = false;
    let fd: number;
    try {
      fd = openSync(path, flags);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      if (create === undefined) throw new Error(`blk: cannot open '${path}': no such file or directory (give create=SIZE to make a new image)`);
      fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o644);
      created = true;
      try {
        ftruncateSync(fd, create);
      } catch (err) {
        closeSync(fd);
        throw err;
      }
    }
    this.fd = fd;
    this.created = created;
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new Error(`blk: '${path}' is not a regular file`);
      const have = st.size;
      if (create !== undefined && !created && have !== create) {
        throw new Error(`blk: image '${path}' exists with ${have} bytes, not the ${create} of create=; remove it or drop create=`);
      }
      if (have === 0) throw new Error(`blk: image '${path}' is empty (0 bytes); size it first (truncate -s 64M) or remove it and give create=SIZE`);
      if (size !== undefined && size > have) {
        throw new Error(`blk: size ${size} is larger than image '${path}' (${have} bytes); an image is never extended, resize it yourself`);
      }
      if (size === undefined && have % 512 !== 0) {
        throw new Error(`blk: image '${path}' is ${have} bytes, not a whole number of 512-byte sectors; pad or truncate it, or give size= to use a prefix`);
      }
      this.size = size ?? have;
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    fdCloser.register(this, this.fd, this);
  }

  read(offset: number, dst: Uint8Array): void {
    let pos = 0;
    while (pos < dst.length) {
      const n = readSync(this.fd, dst, pos, dst.length - pos, offset + pos);
      if (n === 0) break; // the image shrank under us: the rest reads as zeros
      pos += n;
    }
    dst.fill(0, pos);
  }

  write(offset: number, src: Uint8Array): void {
    let pos = 0;
    while (pos < src.length) pos += writeSync(this.fd, src, pos, src.length - pos, offset + pos);
  }

  flush(): void {
    fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd < 0) return;
    fdCloser.unregister(this);
    closeSync(this.fd);
    this.fd = -1;
  }
}

/**
 * A medium as a snapshot records it: an image file by its absolute path and
 * size, never its bytes (the image is the user's, and the device state
 * refers to it); a RAM disk by its size and the chunks the guest wrote
 * (null when the snapshot leaves them out: the power model `snapshot`,
 * where the board keeps the medium).
 */
export type MediumState =
  | { kind: 'file'; path: string; size: number; readOnly: boolean }
  | { kind: 'ram'; size: number; readOnly: boolean; chunkSize: number; chunks: [number, Uint8Array][] | null };

export function saveMedium(m: BlockMedium, withData: boolean): MediumState {
  if (m instanceof FileMedium) return { kind: 'file', path: resolve(m.path), size: m.size, readOnly: m.readOnly };
  if (m instanceof RamMedium) return { kind: 'ram', size: m.size, readOnly: m.readOnly, chunkSize: RAM_CHUNK, chunks: withData ? m.writtenChunks() : null };
  throw new SnapshotError('the disk medium cannot be saved');
}

/** Check a snapshot's medium against this device's (throws SnapshotError at `path`). */
export function checkMedium(m: BlockMedium, raw: unknown, path: string, withData: boolean): MediumState {
  const kind = record(raw, path, ['kind', 'size', 'readOnly'], ['path', 'chunkSize', 'chunks'])['kind'];
  const mine = saveMedium(m, false);
  if (kind !== mine.kind) fail(`${path}.kind`, `the snapshot's disk is ${kind === 'file' ? 'an image file' : kind === 'ram' ? 'a RAM disk' : shown(kind)}, this device's ${mine.kind === 'file' ? 'an image file' : 'a RAM disk'}`);
  if (mine.kind === 'file') {
    const r = record(raw, path, ['kind', 'path', 'size', 'readOnly']);
    const p = str(r['path'], `${path}.path`, 4096);
    if (p !== mine.path) fail(`${path}.path`, `the snapshot's disk image is ${shown(p)}, this device's ${shown(mine.path)}`);
    const size = count(r['size'], `${path}.size`);
    if (size !== mine.size) fail(`${path}.size`, `disk image ${shown(p)} is ${mine.size} bytes now, ${size} in the snapshot`);
    if (bool(r['readOnly'], `${path}.readOnly`) !== mine.readOnly) fail(`${path}.readOnly`, 'read-only differs');
    return r as unknown as MediumState;
  }
  const r = record(raw, path, ['kind', 'size', 'readOnly', 'chunkSize', 'chunks']);
  const size = count(r['size'], `${path}.size`);
  if (size !== mine.size) fail(`${path}.size`, `RAM disk of ${size} bytes in the snapshot, ${mine.size} here`);
  if (bool(r['readOnly'], `${path}.readOnly`) !== mine.readOnly) fail(`${path}.readOnly`, 'read-only differs');
  if (r['chunkSize'] !== RAM_CHUNK) fail(`${path}.chunkSize`, `expected ${RAM_CHUNK}, got ${shown(r['chunkSize'])}`);
  if (r['chunks'] === null) {
    if (withData) fail(`${path}.chunks`, 'the RAM disk contents are not in the snapshot');
    return r as unknown as MediumState;
  }
  const n = Math.ceil(size / RAM_CHUNK);
  let last = -1;
  list(r['chunks'], `${path}.chunks`, n, (c, cp) => {
    const [i, b] = list(c, cp, 2, (x) => x, 2);
    const index = int(i, `${cp}[0]`, 0, n - 1);
    if (index <= last) fail(`${cp}[0]`, `chunk ${index} out of order or repeated`);
    last = index;
    const data = bytes(b, `${cp}[1]`, RAM_CHUNK);
    if (data.length !== RAM_CHUNK) fail(`${cp}[1]`, `a chunk is ${RAM_CHUNK} bytes, got ${data.length}`);
    return null;
  });
  return r as unknown as MediumState;
}

/** Load a medium state checkMedium accepted: a RAM disk's chunks, when the snapshot has them (an image file is already the one named). */
export function loadMedium(m: BlockMedium, s: MediumState): void {
  if (s.kind === 'ram' && s.chunks && m instanceof RamMedium) m.loadChunks(s.chunks);
}

/** What a medium is made from; equal descriptions give the same medium. */
export interface MediumSpec {
  /** Bytes; for a file, undefined means the file's own size. */
  size: number | undefined;
  /** Backing file, or undefined for a RAM disk. */
  file: string | undefined;
  readOnly: boolean;
  /** Size of a RAM disk when `size` is not given. */
  defaultSize: number;
  /** File only: bytes of a new image when none exists (create=SIZE); undefined: it must exist. */
  create?: number;
}

function mediumKey(spec: MediumSpec): string {
  return `blk.medium:${spec.file ?? 'ram'}:${spec.size ?? 'auto'}:${spec.readOnly ? 'ro' : 'rw'}:${spec.create ?? ''}`;
}

/** The medium for spec: the one kept in `retained` if a previous instance made it, else a new one (kept there). */
export function openMedium(spec: MediumSpec, retained?: RetainedStore): BlockMedium {
  const key = mediumKey(spec);
  const kept = retained?.get(key);
  if (kept instanceof RamMedium || kept instanceof FileMedium) return kept;
  const medium =
    spec.file !== undefined
      ? new FileMedium(spec.file, spec.size, spec.readOnly, spec.create)
      : new RamMedium(spec.size ?? spec.defaultSize, spec.readOnly);
  retained?.set(key, medium);
  return medium;
}
