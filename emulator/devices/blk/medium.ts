// The medium behind a virtio-blk device: guest-visible bytes that are not
// device state. A device reset or a fresh device instance (the board's power
// 'fresh') must find the same contents, so media are created through
// openMedium(), which hands back the medium a previous instance left in the
// slot's retained store (DeviceHost.retained).
//
// Both media are synchronous: the device worker serves one request at a time
// and never yields to its event loop while it serves the trap mailbox.
import { closeSync, constants, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import type { RetainedStore } from '../device.js';

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
