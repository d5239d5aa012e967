// virtio-blk (spec 5.2): one requestq; each request is
//   struct virtio_blk_outhdr (16 bytes, device-readable)
//   data (device-readable for OUT, device-writable for IN and GET_ID)
//   u8 status (the last device-writable byte)
// and completes with used len = bytes written, status byte included.
//
// Everything in a request comes from the guest and is checked here, after the
// core has validated the chain itself (bounds, direction order):
// - no device-writable byte: there is nowhere to put a status, so the chain
//   is returned with used len 0 and nothing written (Linux never sends one;
//   QEMU treats it as fatal, which would cost the driver its other requests);
// - header shorter than 16 bytes → IOERR;
// - data on the wrong side (device-readable bytes after the header of IN or
//   GET_ID, device-writable bytes before the status of OUT) → IOERR, since
//   the driver would otherwise read data never filled in or lose a write;
// - IN/OUT: data length not a multiple of 512, more than maxRequestBytes,
//   or sector + length beyond capacity (checked arithmetic) → IOERR;
//   OUT on a read-only device → IOERR with nothing written (spec 5.2.6.2);
// - GET_ID with less than 20 data bytes → IOERR;
// - any other type (DISCARD, WRITE_ZEROES, ... are not offered) → UNSUPP.
// Host I/O errors of a file medium also complete with IOERR.
import {
  SECTOR_SIZE,
  VIRTIO_BLK_CONFIG,
  VIRTIO_BLK_F_BLK_SIZE,
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_F_RO,
  VIRTIO_BLK_F_SEG_MAX,
  VIRTIO_BLK_F_SIZE_MAX,
  VIRTIO_BLK_ID_BYTES,
  VIRTIO_BLK_OUTHDR,
  VIRTIO_BLK_OUTHDR_SIZE,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
} from '../../../core/uapi/blk.js';
import { bit } from '../../../core/uapi/features.js';
import { VIRTIO_ID_BLOCK } from '../../../core/uapi/ids.js';
import { checkMedium, loadMedium, openMedium, saveMedium, type BlockMedium, type MediumState } from './medium.js';
import type { SnapshotOptions } from '../../snapshot/format.js';
import { record } from '../../snapshot/fields.js';
import { BLK_DEFAULT_SIZE, parseBlkOptions, type BlkOptions } from './options.js';
import { RING_FEATURES, serveQueue, type Chain, type ConfigWidth, type DeviceContext, type DeviceHost, type DeviceModel, type DeviceOptions } from '../device.js';

/** Linux rounds a smaller size_max up to its page size; keep segments at least this big. */
const MIN_SEGMENT = 4096;
const MAX_SEG_MAX = 128;
/** End of blk_size, the last field of an offered feature. */
const CONFIG_SIZE = VIRTIO_BLK_CONFIG.blk_size + 4;

export class BlkDevice implements DeviceModel {
  readonly deviceId = VIRTIO_ID_BLOCK;
  readonly name = 'blk';
  readonly features: bigint;
  readonly queueNumMax: readonly number[];
  readonly configSize = CONFIG_SIZE;
  /** Capacity in 512-byte sectors. */
  readonly capacity: number;
  private readonly config = new DataView(new ArrayBuffer(CONFIG_SIZE));
  private readonly id = new Uint8Array(VIRTIO_BLK_ID_BYTES);
  private readonly maxRequest: number;
  private readonly header = new Uint8Array(VIRTIO_BLK_OUTHDR_SIZE);
  private readonly headerView = new DataView(this.header.buffer);
  private readonly status = new Uint8Array(1);

  constructor(
    readonly medium: BlockMedium,
    opts: Pick<BlkOptions, 'serial' | 'queueSize' | 'maxRequestBytes'>,
  ) {
    this.queueNumMax = [opts.queueSize];
    this.maxRequest = opts.maxRequestBytes;
    this.capacity = Math.floor(medium.size / SECTOR_SIZE);
    for (let i = 0; i < opts.serial.length; i++) this.id[i] = opts.serial.charCodeAt(i);

    // seg_max × size_max ≤ maxRequest, so a driver that honours both never
    // builds a request the cap refuses. Two descriptors of a chain are the
    // header and the status.
    const segMax = Math.max(1, Math.min(MAX_SEG_MAX, opts.queueSize - 2, Math.floor(this.maxRequest / MIN_SEGMENT)));
    const sizeMax = Math.floor(this.maxRequest / segMax / SECTOR_SIZE) * SECTOR_SIZE;
    const c = this.config;
    c.setUint32(VIRTIO_BLK_CONFIG.capacity, this.capacity % 0x1_0000_0000, true);
    c.setUint32(VIRTIO_BLK_CONFIG.capacity + 4, Math.floor(this.capacity / 0x1_0000_0000), true);
    c.setUint32(VIRTIO_BLK_CONFIG.size_max, sizeMax, true);
    c.setUint32(VIRTIO_BLK_CONFIG.seg_max, segMax, true);
    c.setUint32(VIRTIO_BLK_CONFIG.blk_size, SECTOR_SIZE, true);

    this.features =
      RING_FEATURES |
      bit(VIRTIO_BLK_F_SIZE_MAX) |
      bit(VIRTIO_BLK_F_SEG_MAX) |
      bit(VIRTIO_BLK_F_BLK_SIZE) |
      bit(VIRTIO_BLK_F_FLUSH) |
      (medium.readOnly ? bit(VIRTIO_BLK_F_RO) : 0n);
  }

  readConfig(offset: number, width: ConfigWidth): number {
    if (width === 1) return this.config.getUint8(offset);
    if (width === 2) return this.config.getUint16(offset, true);
    return this.config.getUint32(offset, true);
  }

  // ---- snapshot: the medium reference (requests complete synchronously, so none is held) ----

  saveState(opts: SnapshotOptions): unknown {
    return { medium: saveMedium(this.medium, opts.media) };
  }

  checkState(state: unknown, path: string, opts: SnapshotOptions): void {
    checkMedium(this.medium, record(state, path, ['medium'])['medium'], `${path}.medium`, opts.media);
  }

  loadState(state: unknown): void {
    loadMedium(this.medium, (state as { medium: MediumState }).medium);
  }

  // No writeConfig: every field offered is read-only (writeback needs
  // VIRTIO_BLK_F_CONFIG_WCE). No reset: requests complete synchronously, so
  // nothing is held across one.

  handleQueue(ctx: DeviceContext, queue: number): void {
    serveQueue(ctx, queue, this.execute);
  }

  /** Serve one request; returns the used length. */
  private readonly execute = (chain: Chain): number => {
    if (chain.writableBytes === 0) return 0;
    // Offset of the status byte, and so the device-writable data length.
    const statusAt = chain.writableBytes - 1;
    const complete = (status: number, dataWritten = 0): number => {
      this.status[0] = status;
      chain.write(this.status, statusAt);
      return dataWritten + 1;
    };
    if (chain.readableBytes < VIRTIO_BLK_OUTHDR_SIZE) return complete(VIRTIO_BLK_S_IOERR);
    chain.read(this.header);
    const h = this.headerView;
    // The reserved (ioprio) word is ignored: Linux puts an I/O priority there.
    const type = h.getUint32(VIRTIO_BLK_OUTHDR.type, true);
    const sectorLo = h.getUint32(VIRTIO_BLK_OUTHDR.sector, true);
    const sectorHi = h.getUint32(VIRTIO_BLK_OUTHDR.sector + 4, true);

    const extraReadable = chain.readableBytes > VIRTIO_BLK_OUTHDR_SIZE;

    switch (type) {
      case VIRTIO_BLK_T_IN: {
        if (extraReadable) return complete(VIRTIO_BLK_S_IOERR);
        const offset = this.dataOffset(sectorLo, sectorHi, statusAt);
        if (offset === null) return complete(VIRTIO_BLK_S_IOERR);
        try {
          let at = offset;
          chain.fillWritable(statusAt, (view) => {
            this.medium.read(at, view);
            at += view.length;
          });
        } catch {
          return complete(VIRTIO_BLK_S_IOERR);
        }
        return complete(VIRTIO_BLK_S_OK, statusAt);
      }
      case VIRTIO_BLK_T_OUT: {
        if (this.medium.readOnly || statusAt > 0) return complete(VIRTIO_BLK_S_IOERR);
        const len = chain.readableBytes - VIRTIO_BLK_OUTHDR_SIZE;
        const offset = this.dataOffset(sectorLo, sectorHi, len);
        if (offset === null) return complete(VIRTIO_BLK_S_IOERR);
        try {
          this.copyOut(chain, offset, len);
        } catch {
          return complete(VIRTIO_BLK_S_IOERR);
        }
        return complete(VIRTIO_BLK_S_OK);
      }
      case VIRTIO_BLK_T_FLUSH:
        try {
          this.medium.flush();
        } catch {
          return complete(VIRTIO_BLK_S_IOERR);
        }
        return complete(VIRTIO_BLK_S_OK);
      case VIRTIO_BLK_T_GET_ID:
        if (extraReadable || statusAt < VIRTIO_BLK_ID_BYTES) return complete(VIRTIO_BLK_S_IOERR);
        return complete(VIRTIO_BLK_S_OK, chain.write(this.id, 0));
      default:
        return complete(VIRTIO_BLK_S_UNSUPP);
    }
  };

  /**
   * Byte offset of a transfer of `len` bytes at sector hi:lo, or null if the
   * length is not whole sectors, exceeds the per-request cap, or the range
   * leaves the disk.
   */
  private dataOffset(lo: number, hi: number, len: number): number | null {
    if (len % SECTOR_SIZE !== 0 || len > this.maxRequest) return null;
    // Capacity < 2^44 sectors, so a sector with hi ≥ 2^12 is out of range and
    // every value compared below is an exact integer.
    if (hi >= 0x1000) return null;
    const sector = hi * 0x1_0000_0000 + lo;
    if (sector > this.capacity - len / SECTOR_SIZE) return null;
    return sector * SECTOR_SIZE;
  }

  /** OUT data (after the header) → medium, straight from guest RAM. */
  private copyOut(chain: Chain, offset: number, len: number): void {
    let at = offset;
    const n = chain.visitReadable(VIRTIO_BLK_OUTHDR_SIZE, len, (view) => {
      this.medium.write(at, view);
      at += view.length;
    });
    if (n !== len) throw new Error('chain went stale');
  }
}

/**
 * Options: size (bytes or K/M/G/T, default 64M; for a file, its own size),
 * file (an existing image path), create (with file: the size of a new image
 * when none exists), scratch (sectors the host's I/O check may overwrite;
 * checked against the capacity, otherwise unused here), ro, serial
 * (GET_ID), queueSize, maxRequestBytes. The medium comes from the slot's
 * retained store when a previous instance made it; without a host the
 * device gets a medium of its own.
 */
export function createBlk(options: DeviceOptions, host?: DeviceHost): BlkDevice {
  const opts = parseBlkOptions(options);
  const medium = openMedium(
    { size: opts.size, file: opts.file, readOnly: opts.readOnly, defaultSize: BLK_DEFAULT_SIZE, ...(opts.create !== undefined ? { create: opts.create } : {}) },
    host?.retained,
  );
  const dev = new BlkDevice(medium, opts);
  if (opts.scratch && opts.scratch.sector + opts.scratch.count > dev.capacity) {
    (medium as { close?: () => void }).close?.();
    throw new Error(`blk: scratch ${opts.scratch.sector}+${opts.scratch.count} goes past the end of the disk (${dev.capacity} sectors)`);
  }
  return dev;
}
