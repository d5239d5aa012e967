// virtio-blk device model through real registers and rings: config space,
// reads and writes on RAM and file media, flush, GET_ID, read-only media,
// request validation, and media that outlive device resets and fresh
// device instances.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  VIRTIO_BLK_CONFIG,
  VIRTIO_BLK_F_BLK_SIZE,
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_F_RO,
  VIRTIO_BLK_F_SEG_MAX,
  VIRTIO_BLK_F_SIZE_MAX,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
} from '../../core/uapi/blk.js';
import { VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC, bit } from '../../core/uapi/features.js';
import { VIRTIO_ID_BLOCK } from '../../core/uapi/ids.js';
import { REG } from '../../core/uapi/mmio.js';
import { VIRTIO_CONFIG_S_NEEDS_RESET } from '../../core/uapi/status.js';
import { parseByteSize } from '../../emulator/devices/blk/options.js';
import type { DeviceOptionValue } from '../../emulator/board-contract.js';
import { RawDriver, makeBoard, slotStats, type TestBoard } from '../helpers/raw-driver.js';
import { blkHeader, blkRequest, postChain, usedAt } from '../helpers/raw-requests.js';

const dir = mkdtempSync(join(tmpdir(), 'blk-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function pattern(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/** A board with one blk device in slot 0; a 1 MiB disk unless options or sized say otherwise. */
function blkBoard(options: Record<string, DeviceOptionValue> = {}, sized = true): { tb: TestBoard; drv: RawDriver } {
  const tb = makeBoard([{ type: 'blk', transport: 'mmio', options: sized ? { size: '1M', ...options } : options }], { ramSize: 4 << 20 });
  return { tb, drv: new RawDriver(tb) };
}

function up(drv: RawDriver) {
  return drv.bringUp([16])[0]!;
}

function config32(drv: RawDriver, off: number): number {
  return drv.read(REG.Config + off);
}

describe('virtio-blk configuration', () => {
  it('identifies as a block device and offers its features', () => {
    const { drv } = blkBoard();
    expect(drv.read(REG.DeviceID)).toBe(VIRTIO_ID_BLOCK);
    const f = drv.deviceFeatures();
    for (const b of [VIRTIO_F_VERSION_1, VIRTIO_RING_F_INDIRECT_DESC, VIRTIO_RING_F_EVENT_IDX, VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_BLK_SIZE, VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_SIZE_MAX]) {
      expect(f & bit(b)).not.toBe(0n);
    }
    expect(f & bit(VIRTIO_BLK_F_RO)).toBe(0n);
    drv.write(REG.QueueSel, 0);
    expect(drv.read(REG.QueueNumMax)).toBe(256);
    drv.write(REG.QueueSel, 1);
    expect(drv.read(REG.QueueNumMax)).toBe(0);
  });

  it('reports capacity in 512-byte sectors, blk_size, and segment limits within the request cap', () => {
    const { drv } = blkBoard({ size: '3G' });
    const sectors = (3 * 2 ** 30) / 512;
    expect(config32(drv, VIRTIO_BLK_CONFIG.capacity)).toBe(sectors % 2 ** 32);
    expect(config32(drv, VIRTIO_BLK_CONFIG.capacity + 4)).toBe(Math.floor(sectors / 2 ** 32));
    expect(config32(drv, VIRTIO_BLK_CONFIG.blk_size)).toBe(512);
    const segMax = config32(drv, VIRTIO_BLK_CONFIG.seg_max);
    const sizeMax = config32(drv, VIRTIO_BLK_CONFIG.size_max);
    expect(segMax).toBeGreaterThan(0);
    expect(sizeMax).toBeGreaterThanOrEqual(4096);
    expect(segMax * sizeMax).toBeLessThanOrEqual(1 << 20);
    // Byte-wide access to the 64-bit field, as a driver may do.
    expect(drv.read(REG.Config + VIRTIO_BLK_CONFIG.capacity + 4, 1)).toBe(Math.floor(sectors / 2 ** 32) & 0xff);
  });

  it('ignores config writes', () => {
    const { drv } = blkBoard();
    drv.write(REG.Config + VIRTIO_BLK_CONFIG.capacity, 5);
    expect(config32(drv, VIRTIO_BLK_CONFIG.capacity)).toBe(2048);
  });

  it('parses sizes with binary suffixes and rejects bad options', () => {
    expect(parseByteSize('size', '64M')).toBe(64 << 20);
    expect(parseByteSize('size', '512KiB')).toBe(512 << 10);
    expect(parseByteSize('size', 4096)).toBe(4096);
    expect(() => parseByteSize('size', '12Q')).toThrow(/not a size/);
    expect(() => blkBoard({ size: 1000 })).toThrow(/multiple of 512/);
    expect(() => blkBoard({ colour: 'red' })).toThrow(/unknown option/);
    expect(() => blkBoard({ serial: 'x'.repeat(21) })).toThrow(/serial/);
  });
});

describe('virtio-blk requests on a RAM disk', () => {
  it('reads back what was written, used len counting data and status', () => {
    const { drv } = blkBoard();
    const q = up(drv);
    const data = pattern(3 * 512, 7);
    const w = blkRequest(drv, q, { type: VIRTIO_BLK_T_OUT, sector: 5n, out: data });
    expect(w).toMatchObject({ status: VIRTIO_BLK_S_OK, usedLen: 1 });
    const r = blkRequest(drv, q, { type: VIRTIO_BLK_T_IN, sector: 5n, inLen: 3 * 512 });
    expect(r.status).toBe(VIRTIO_BLK_S_OK);
    expect(r.usedLen).toBe(3 * 512 + 1);
    expect(r.data).toEqual(data);
    // Unwritten sectors read as zeros; the last sector is addressable.
    const tail = blkRequest(drv, q, { type: VIRTIO_BLK_T_IN, sector: 2047n, inLen: 512 });
    expect(tail.status).toBe(VIRTIO_BLK_S_OK);
    expect(tail.data).toEqual(new Uint8Array(512));
  });

  it('takes data spread over several descriptors, in order', () => {
    const { drv, tb } = blkBoard();
    const q = up(drv);
    const a = pattern(512, 1);
    const b = pattern(1024, 2);
    const before = q.usedIdx();
    postChain(drv, q, 0, [{ data: blkHeader(VIRTIO_BLK_T_OUT, 0n) }, { data: a }, { data: b }, { len: 1 }]);
    expect(usedAt(q, before)?.len).toBe(1);
    const r = blkRequest(drv, q, { type: VIRTIO_BLK_T_IN, sector: 0n, inLen: 1536 });
    expect(r.data).toEqual(new Uint8Array([...a, ...b]));
    expect(slotStats(tb).guestErrors).toBe(0);
  });

  it('flushes', () => {
    const { drv } = blkBoard();
    const q = up(drv);
    expect(blkRequest(drv, q, { type: VIRTIO_BLK_T_FLUSH })).toMatchObject({ status: VIRTIO_BLK_S_OK, usedLen: 1 });
  });

  it('returns the serial for GET_ID, NUL-padded to 20 bytes', () => {
    const { drv } = blkBoard({ serial: 'disk-0' });
    const q = up(drv);
    const r = blkRequest(drv, q, { type: VIRTIO_BLK_T_GET_ID, inLen: 20 });
    expect(r.status).toBe(VIRTIO_BLK_S_OK);
    expect(r.usedLen).toBe(21);
    expect(Buffer.from(r.data).toString('latin1')).toBe(`disk-0${'\0'.repeat(14)}`);
    expect(blkRequest(drv, q, { type: VIRTIO_BLK_T_GET_ID, inLen: 8 }).status).toBe(VIRTIO_BLK_S_IOERR);
  });
});

describe('virtio-blk request validation', () => {
  it('fails requests outside the disk with IOERR, including sector overflow', () => {
    const { drv } = blkBoard();
    const q = up(drv);
    for (const sector of [2048n, 2047n, (1n << 64n) - 1n, (1n << 55n), 1n << 32n]) {
      const len = sector === 2047n ? 1024 : 512;
      expect(blkRequest(drv, q, { type: VIRTIO_BLK_T_IN, sector, inLen: len }).status).toBe(VIRTIO_BLK_S_IOERR);
      expect(blkRequest(drv, q, { type: VIRTIO_BLK_T_OUT, sector, out: pattern(len, 3) }).status).toBe(VIRTIO_BLK_S_IOERR);
    }
    // Nothing was written at the end of the disk by the refused requests.
    expect(blkRequest(drv, q, { type: VIRTIO_BLK_T_IN, sector: 2047n, inLen: 512 }).data).toEqual(new Uint8Array(512));
  });

  it('fails data lengths that are not whole sectors or exceed the per-request cap', () => {
    const { drv } = blkBoard({ maxRequestBytes: 8192 });
    const q = up(drv);
    expect(blkRequest(drv, q, { type: VIRTIO_BLK_T_IN, inLen: 100 }).status).toBe(VIRTIO_BLK_S_IOERR);
    expect(blkRequest(drv, q, { type: VIRTIO_BLK_T_OUT, out: pattern(513, 0) }).status).toBe(VIRTIO_BLK_S_IOERR);
    expect(blkRequest(drv, q, { type: VIRTIO_BLK_T_IN, inLen: 8192 + 512 }).status).toBe(VIRTIO_BLK_S_IOERR);
    expect(blkRequest(drv, q, { type: VIRTIO_BLK_T_IN, inLen: 8192 }).status).toBe(VIRTIO_BLK_S_OK);
  });

  it('fails a short header with IOERR and unknown types with UNSUPP', () => {
    const { drv } = blkBoard();
    const q = up(drv);
    const short = blkRequest(drv, q, { type: 0, rawHeader: blkHeader(VIRTIO_BLK_T_IN).subarray(0, 8) });
    expect(short).toMatchObject({ status: VIRTIO_BLK_S_IOERR, usedLen: 1 });
    expect(blkRequest(drv, q, { type: VIRTIO_BLK_T_DISCARD, out: new Uint8Array(16) }).status).toBe(VIRTIO_BLK_S_UNSUPP);
    expect(blkRequest(drv, q, { type: 0x7777 }).status).toBe(VIRTIO_BLK_S_UNSUPP);
  });

  it('fails IN with readable data and OUT with writable data (wrong direction) with IOERR', () => {
    const { drv } = blkBoard();
    const q = up(drv);
    const inWithData = blkRequest(drv, q, { type: 0, rawHeader: new Uint8Array([...blkHeader(VIRTIO_BLK_T_IN), ...new Uint8Array(512)]), inLen: 512 });
    expect(inWithData.status).toBe(VIRTIO_BLK_S_IOERR);
    const outToWritable = blkRequest(drv, q, { type: VIRTIO_BLK_T_OUT, inLen: 512 });
    expect(outToWritable).toMatchObject({ status: VIRTIO_BLK_S_IOERR, usedLen: 1 });
    expect(blkRequest(drv, q, { type: 0, rawHeader: new Uint8Array([...blkHeader(VIRTIO_BLK_T_GET_ID), 0]), inLen: 20 }).status).toBe(VIRTIO_BLK_S_IOERR);
  });

  it('returns a request without a status byte with used len 0 and keeps serving', () => {
    const { drv, tb } = blkBoard();
    const q = up(drv);
    const r = blkRequest(drv, q, { type: VIRTIO_BLK_T_OUT, out: pattern(512, 9), noStatus: true });
    expect(r.usedLen).toBe(0);
    // Nothing was written: the request had no way to report its outcome.
    expect(blkRequest(drv, q, { type: VIRTIO_BLK_T_IN, inLen: 512 }).data).toEqual(new Uint8Array(512));
    expect(drv.status() & VIRTIO_CONFIG_S_NEEDS_RESET).toBe(0);
    expect(slotStats(tb).deviceErrors).toBe(0);
  });

  it('refuses writes on a read-only device and offers VIRTIO_BLK_F_RO', () => {
    const { drv } = blkBoard({ ro: true });
    expect(drv.deviceFeatures() & bit(VIRTIO_BLK_F_RO)).not.toBe(0n);
    const q = up(drv);
    const w = blkRequest(drv, q, { type: VIRTIO_BLK_T_OUT, sector: 1n, out: pattern(512, 4) });
    expect(w).toMatchObject({ status: VIRTIO_BLK_S_IOERR, usedLen: 1 });
    const r = blkRequest(drv, q, { type: VIRTIO_BLK_T_IN, sector: 1n, inLen: 512 });
    expect(r.status).toBe(VIRTIO_BLK_S_OK);
    expect(r.data).toEqual(new Uint8Array(512));
    expect(blkRequest(drv, q, { type: VIRTIO_BLK_T_FLUSH }).status).toBe(VIRTIO_BLK_S_OK);
  });
});

describe('virtio-blk file media', () => {
  it('creates a missing image at the size create= asks for and writes through at sector offsets', () => {
    const file = join(dir, 'new.img');
    const { drv } = blkBoard({ file, create: '64K' }, false);
    expect(statSync(file).size).toBe(64 * 1024);
    const q = up(drv);
    const data = pattern(1024, 11);
    expect(blkRequest(drv, q, { type: VIRTIO_BLK_T_OUT, sector: 4n, out: data }).status).toBe(VIRTIO_BLK_S_OK);
    expect(blkRequest(drv, q, { type: VIRTIO_BLK_T_FLUSH }).status).toBe(VIRTIO_BLK_S_OK);
    expect(new Uint8Array(readFileSync(file).subarray(4 * 512, 6 * 512))).toEqual(data);
    expect(blkRequest(drv, q, { type: VIRTIO_BLK_T_IN, sector: 4n, inLen: 1024 }).data).toEqual(data);
  });

  it('serves an existing image at its own size; read-only leaves it untouched', () => {
    const file = join(dir, 'existing.img');
    const image = pattern(8 * 512, 5);
    writeFileSync(file, image);
    const { drv } = blkBoard({ file, ro: true }, false);
    expect(config32(drv, VIRTIO_BLK_CONFIG.capacity)).toBe(8);
    const q = up(drv);
    expect(blkRequest(drv, q, { type: VIRTIO_BLK_T_IN, sector: 2n, inLen: 1024 }).data).toEqual(image.subarray(1024, 2048));
    expect(blkRequest(drv, q, { type: VIRTIO_BLK_T_OUT, sector: 0n, out: new Uint8Array(512) }).status).toBe(VIRTIO_BLK_S_IOERR);
    expect(new Uint8Array(readFileSync(file))).toEqual(image);
  });
});

describe('virtio-blk media across power events', () => {
  for (const model of ['reset', 'fresh'] as const) {
    for (const backing of ['ram', 'file'] as const) {
      it(`keeps ${backing} disk contents across power '${model}'`, () => {
        const opts: Record<string, DeviceOptionValue> = backing === 'file' ? { file: join(dir, `power-${model}.img`), create: '64M' } : {};
        const { tb, drv } = blkBoard(opts, backing === 'ram');
        const q = up(drv);
        const data = pattern(2048, 21);
        expect(blkRequest(drv, q, { type: VIRTIO_BLK_T_OUT, sector: 100n, out: data }).status).toBe(VIRTIO_BLK_S_OK);

        expect(tb.board.control({ op: 'power', model })).toEqual({ ok: true });
        expect(drv.status()).toBe(0);
        const q2 = up(drv);
        const r = blkRequest(drv, q2, { type: VIRTIO_BLK_T_IN, sector: 100n, inLen: 2048 });
        expect(r.status).toBe(VIRTIO_BLK_S_OK);
        expect(r.data).toEqual(data);
      });
    }
  }

  it('keeps the disk across a driver reset (Status = 0)', () => {
    const { drv } = blkBoard();
    const q = up(drv);
    const data = pattern(512, 33);
    blkRequest(drv, q, { type: VIRTIO_BLK_T_OUT, sector: 9n, out: data });
    drv.reset();
    const q2 = up(drv);
    expect(blkRequest(drv, q2, { type: VIRTIO_BLK_T_IN, sector: 9n, inLen: 512 }).data).toEqual(data);
  });

  it('gives separate boards separate RAM disks', () => {
    const a = blkBoard();
    const b = blkBoard();
    const qa = up(a.drv);
    const qb = up(b.drv);
    blkRequest(a.drv, qa, { type: VIRTIO_BLK_T_OUT, sector: 0n, out: pattern(512, 1) });
    expect(blkRequest(b.drv, qb, { type: VIRTIO_BLK_T_IN, sector: 0n, inLen: 512 }).data).toEqual(new Uint8Array(512));
  });
});
