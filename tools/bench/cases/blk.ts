// virtio-blk 4 KiB random reads and writes at queue depth 1 and 64 through
// the shipped virtio_blk driver (virtblkSubmit/virtblkKick/virtblkReap: a
// request per I/O in DMA memory, interrupt-driven completion) against the
// blk device model with its RAM medium, on a split ring, and at depth 64 on
// a packed ring too. The disk is written in full first, so reads copy real
// data rather than the zeros of never-written chunks.
import { SECTOR_SIZE } from '../../../core/uapi/blk.js';
import { ENOSPC, errnoName } from '../../../core/uapi/errno.js';
import { virtblkInfo, virtblkKick, virtblkReap, virtblkSubmit, virtblkWrite, virtioBlkDriver, type BlkIo } from '../../../core/drivers/blk.js';
import { VirtioSystem } from '../../system.js';
import type { BenchCase, BenchContext, BenchInstance } from '../case.js';
import { deviceOnRing, expectRing, type RingKind } from '../ring-layout.js';

const IO_BYTES = 4096;
const DISK_BYTES = 16 << 20;
const BLOCKS = DISK_BYTES / IO_BYTES;

/** xorshift32: a cheap, repeatable random block sequence. */
function blockSequence(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % BLOCKS;
  };
}

async function blkCase(ctx: BenchContext, op: 'read' | 'write', depth: number, ring: RingKind): Promise<BenchInstance> {
  const sys = await VirtioSystem.create({
    devices: [deviceOnRing('blk', ring, { size: DISK_BYTES })],
    slots: 1,
    drivers: [virtioBlkDriver],
    ...(ctx.boardModule ? { boardModule: ctx.boardModule } : {}),
  });
  const vdev = sys.device(0);
  const vq = vdev ? virtblkInfo(vdev)?.vq : null;
  try {
    if (!vdev || !vq) throw new Error('virtio_blk did not bind');
    expectRing(vq, ring);
  } catch (err) {
    await sys.close();
    throw err;
  }
  const fill = new Uint8Array(DISK_BYTES);
  for (let i = 0; i < fill.length; i += SECTOR_SIZE) fill[i] = (i / SECTOR_SIZE) & 0xff;
  const w = virtblkWrite(vdev, 0, fill);
  if (w !== DISK_BYTES) {
    await sys.close();
    throw new Error(`filling the disk failed: ${typeof w === 'number' && w < 0 ? errnoName(w) : w}`);
  }
  const next = blockSequence(0x9e3779b9);
  const payload = new Uint8Array(IO_BYTES).fill(0xa5);
  const io = (): BlkIo => {
    const sector = next() * (IO_BYTES / SECTOR_SIZE);
    return op === 'read' ? { op, sector, count: IO_BYTES / SECTOR_SIZE } : { op, sector, data: payload };
  };
  let inflight = 0;
  return {
    run(n) {
      let submitted = 0;
      let done = 0;
      while (done < n) {
        let added = 0;
        while (inflight < depth && submitted < n) {
          const r = virtblkSubmit(vdev, io(), { kick: false });
          if (typeof r === 'number') {
            if (r === -ENOSPC && inflight > 0) break;
            throw new Error(`blk submit: ${errnoName(r)}`);
          }
          inflight++;
          submitted++;
          added++;
        }
        if (added) virtblkKick(vdev);
        const reaped = virtblkReap(vdev, 1);
        if (typeof reaped === 'number') throw new Error(`blk reap: ${errnoName(reaped)}`);
        for (const req of reaped) {
          if (req.result !== 0) throw new Error(`blk ${req.op} at ${req.sector}: ${errnoName(req.result)}`);
        }
        inflight -= reaped.length;
        done += reaped.length;
      }
    },
    ...(depth > 1 ? { batchSize: 8 * depth } : {}),
    teardown: () => sys.close(),
    extras: (t) => ({ iops: t.ops_per_s, mb_per_s: (t.ops_per_s * IO_BYTES) / 1e6, io_bytes: IO_BYTES, depth, ring, backend: 'ram' }),
  };
}

export const cases: BenchCase[] = [];
for (const op of ['read', 'write'] as const) {
  for (const depth of [1, 64]) {
    cases.push({
      name: `blk.${op}4k.qd${depth}`,
      description: `virtio-blk 4 KiB random ${op}s, ${depth} in flight, RAM medium, split ring (virtio_blk submit/kick/reap)`,
      ...(depth > 1 ? { ratioTo: `blk.${op}4k.qd1`, contend: true } : {}),
      setup: (ctx) => blkCase(ctx, op, depth, 'split'),
    });
  }
}
for (const op of ['read', 'write'] as const) {
  cases.push({
    name: `blk.${op}4k.qd64.packed`,
    description: `the same ${op}s, 64 in flight, on a packed ring (VIRTIO_F_RING_PACKED)`,
    ratioTo: `blk.${op}4k.qd64`,
    setup: (ctx) => blkCase(ctx, op, 64, 'packed'),
  });
}
