// DeviceSpec.options of a virtio-blk device, checked once at creation: a bad
// option is a configuration error (createBoard throws), never a guest error.
import { SECTOR_SIZE, VIRTIO_BLK_ID_BYTES } from '../../../core/uapi/blk.js';
import type { DeviceOptions } from '../device.js';

export const BLK_DEFAULT_SIZE = 64 * 1024 * 1024;
export const BLK_DEFAULT_QUEUE_SIZE = 256;
/** Data bytes one request may move; larger requests fail with IOERR (BI-09). */
export const BLK_DEFAULT_MAX_REQUEST = 1024 * 1024;
export const BLK_DEFAULT_SERIAL = 'virtio-mmio-emu';

/** Sectors a scratch range may name at most. */
export const BLK_MAX_SCRATCH_SECTORS = 65536;

export interface BlkOptions {
  /** Bytes, a multiple of 512; undefined: a file's own size, else BLK_DEFAULT_SIZE. */
  size: number | undefined;
  file: string | undefined;
  /** file only: make a missing image of this many bytes (a multiple of 512). */
  create: number | undefined;
  /**
   * Sectors the host's I/O check (`virtio-emu run`) may overwrite; without
   * it the check only reads a file-backed disk. The device itself ignores it.
   */
  scratch: { sector: number; count: number } | undefined;
  readOnly: boolean;
  /** GET_ID string, ASCII, at most 20 bytes. */
  serial: string;
  queueSize: number;
  maxRequestBytes: number;
}

const SUFFIX: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** "4096", "64M", "1G", "512KiB" (binary multiples) or a number of bytes. */
export function parseByteSize(name: string, v: string | number): number {
  let bytes: number;
  if (typeof v === 'number') bytes = v;
  else {
    const m = /^\s*(\d+)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(v);
    if (!m) throw new Error(`blk: option ${name} '${v}' is not a size (bytes, or a number with K/M/G/T)`);
    bytes = Number(m[1]) * SUFFIX[m[2]!.toUpperCase()]!;
  }
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new Error(`blk: option ${name} must be a positive size, got ${String(v)}`);
  return bytes;
}

function str(options: DeviceOptions, name: string): string | undefined {
  const v = options[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') throw new Error(`blk: option ${name} must be a non-empty string`);
  return v;
}

function positiveInt(options: DeviceOptions, name: string, fallback: number): number {
  const v = options[name];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new Error(`blk: option ${name} must be a positive integer`);
  return v;
}

function bool(options: DeviceOptions, name: string): boolean {
  const v = options[name];
  if (v === undefined) return false;
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === 1 || v === 'on') return true;
  if (v === 'false' || v === 0 || v === 'off') return false;
  throw new Error(`blk: option ${name} must be a boolean`);
}

/** "SECTOR+COUNT" (or "SECTOR" for one sector). */
function parseScratch(v: string | number | boolean | undefined): BlkOptions['scratch'] {
  if (v === undefined) return undefined;
  const m = typeof v === 'number' ? [String(v), String(v), '1'] : typeof v === 'string' ? /^(\d{1,15})(?:\+(\d{1,6}))?$/.exec(v) : null;
  const sector = m ? Number(m[1]) : Number.NaN;
  const count = m ? Number(m[2] ?? 1) : Number.NaN;
  if (!Number.isSafeInteger(sector) || !Number.isInteger(count) || count < 1 || count > BLK_MAX_SCRATCH_SECTORS) {
    throw new Error(`blk: option scratch must be SECTOR+COUNT (COUNT 1..${BLK_MAX_SCRATCH_SECTORS}), got ${String(v)}`);
  }
  return { sector, count };
}

export function parseBlkOptions(options: DeviceOptions): BlkOptions {
  const known = new Set(['size', 'file', 'create', 'scratch', 'ro', 'serial', 'queueSize', 'maxRequestBytes']);
  for (const k of Object.keys(options)) if (!known.has(k)) throw new Error(`blk: unknown option '${k}' (known: ${[...known].join(', ')})`);

  const rawSize = options['size'];
  if (typeof rawSize === 'boolean') throw new Error('blk: option size must be a size');
  const size = rawSize === undefined ? undefined : parseByteSize('size', rawSize);
  if (size !== undefined && size % SECTOR_SIZE !== 0) throw new Error(`blk: size ${size} is not a multiple of ${SECTOR_SIZE}`);

  const serial = str(options, 'serial') ?? BLK_DEFAULT_SERIAL;
  if (!/^[\x20-\x7e]*$/.test(serial) || serial.length > VIRTIO_BLK_ID_BYTES) {
    throw new Error(`blk: serial must be printable ASCII of at most ${VIRTIO_BLK_ID_BYTES} bytes`);
  }
  const maxRequestBytes = positiveInt(options, 'maxRequestBytes', BLK_DEFAULT_MAX_REQUEST);
  if (maxRequestBytes % SECTOR_SIZE !== 0) throw new Error(`blk: maxRequestBytes must be a multiple of ${SECTOR_SIZE}`);
  const file = str(options, 'file');
  const rawCreate = options['create'];
  if (typeof rawCreate === 'boolean') throw new Error('blk: option create must be a size');
  const create = rawCreate === undefined ? undefined : parseByteSize('create', rawCreate);
  if (create !== undefined && file === undefined) throw new Error('blk: option create needs file=');
  if (create !== undefined && create % SECTOR_SIZE !== 0) throw new Error(`blk: create ${create} is not a multiple of ${SECTOR_SIZE}`);
  if (create !== undefined && size !== undefined) throw new Error('blk: give create= or size=, not both (create= is the new image\'s size)');
  return {
    size,
    file,
    create,
    scratch: parseScratch(options['scratch']),
    readOnly: bool(options, 'ro'),
    serial,
    queueSize: positiveInt(options, 'queueSize', BLK_DEFAULT_QUEUE_SIZE),
    maxRequestBytes,
  };
}
