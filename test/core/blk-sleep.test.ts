// No write lost across system sleep: virtio_blk's freeze commits requests
// queued without a kick and drains everything in flight before the device is
// reset (blk-mq's quiesce and freeze), so kicked and un-kicked requests both
// complete, with their data on the disk, in every power model, for suspend
// and hibernation alike.
import { afterEach, describe, expect, it } from 'vitest';
import { virtblkKick, virtblkRead, virtblkReap, virtblkSubmit, virtioBlkDriver, type VirtblkReq } from '../../core/drivers/blk.js';
import { kernel } from '../../core/kernel.js';
import { POWER_MODELS, type PowerModel, VirtioSystem } from '../../tools/system.js';

const systems: VirtioSystem[] = [];
afterEach(async () => {
  await Promise.all(systems.splice(0).map((s) => s.close()));
  kernel.clear();
});

const pattern = (len: number, seed: number): Uint8Array => Uint8Array.from({ length: len }, (_, i) => (i * 13 + seed * 29 + (i >> 9)) & 0xff);

const cases: ['suspend' | 'hibernate', PowerModel, boolean][] = [];
for (const kind of ['suspend', 'hibernate'] as const) for (const power of POWER_MODELS) for (const kicked of [true, false]) cases.push([kind, power, kicked]);

describe('HI-24: virtio_blk freeze: no write lost across sleep', () => {
  it.each(cases)('%s, power %s, requests kicked: %s — every write completes with 0 and reads back after', async (kind, power, kicked) => {
    const sys = await VirtioSystem.create({ devices: [{ type: 'blk', options: { size: '2M' } }], drivers: [virtioBlkDriver] });
    systems.push(sys);
    const vdev = sys.device(0)!;
    const reqs = [0, 1, 2, 3].map((i) => virtblkSubmit(vdev, { op: 'write', sector: 8 * i, data: pattern(4096, i) }, { kick: false }) as VirtblkReq);
    expect(reqs.every((r) => typeof r === 'object')).toBe(true);
    if (kicked) virtblkKick(vdev);
    const t = kind === 'suspend' ? sys.suspend({ power }) : sys.hibernate({ power });
    expect(t.result).toBe(0);
    expect(reqs.map((r) => [r.done, r.result])).toEqual([[true, 0], [true, 0], [true, 0], [true, 0]]);
    expect((virtblkReap(vdev, 4) as VirtblkReq[]).map((r) => r.tag).sort()).toEqual(reqs.map((r) => r.tag).sort());
    for (let i = 0; i < 4; i++) expect(Buffer.from(virtblkRead(vdev, 8 * i, 8) as Uint8Array).equals(Buffer.from(pattern(4096, i)))).toBe(true);
    expect(kernel.warnings).toEqual([]);
    expect(kernel.messages.filter((m) => m.level === 'err')).toEqual([]);
  });
});
