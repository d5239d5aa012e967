// The DMA allocator (core/dma.ts): first fit with alignment, zeroing,
// coalescing frees, and a clear failure when full.
import { describe, expect, it } from 'vitest';
import type { GuestMemory } from '../../core/bus.js';
import { DmaAllocator, dmaFor, dmaForDevice, setDmaAllocator } from '../../core/dma.js';
import { ENOMEM } from '../../core/uapi/errno.js';
import { KernelBug, VirtioBus, VirtioDevice } from '../../core/virtio.js';
import type { VirtioConfigOps } from '../../core/virtio-types.js';

const BASE = 0x4000_0000;

function mem(size = 64 * 1024): GuestMemory {
  const ab = new ArrayBuffer(size);
  return { base: BASE, size, u8: new Uint8Array(ab), view: new DataView(ab) };
}

describe('DmaAllocator', () => {
  it('hands out guest-physical, aligned, zeroed blocks first fit', () => {
    const m = mem();
    m.u8.fill(0xee);
    const dma = new DmaAllocator(m);
    const a = dma.alloc(10)!;
    expect(a).toBe(BASE);
    expect([...dma.bytes(a, 10)]).toEqual(new Array(10).fill(0));
    const b = dma.alloc(100, 4096)!;
    expect(b).toBe(BASE + 4096);
    const c = dma.alloc(16)!;
    // The gap between a and b is reused first.
    expect(c).toBe(BASE + 16);
    expect(dma.stats()).toMatchObject({ used: 126, allocations: 3 });
  });

  it('returns null (or -ENOMEM) when nothing fits, and counts the failure', () => {
    const dma = new DmaAllocator(mem(8192));
    expect(dma.alloc(8192)).toBe(BASE);
    expect(dma.alloc(1)).toBeNull();
    expect(dma.allocOrErrno(1)).toBe(-ENOMEM);
    expect(dma.stats().failures).toBe(2);
  });

  it('coalesces freed neighbours so a large block fits again', () => {
    const dma = new DmaAllocator(mem(4096));
    const blocks = [0, 1, 2, 3].map(() => dma.alloc(1024)!);
    expect(dma.alloc(1024)).toBeNull();
    for (const i of [1, 3, 0, 2]) dma.free(blocks[i]!);
    expect(dma.stats()).toEqual({ used: 0, free: 4096, allocations: 0, failures: 1, allocCalls: 5, freeCalls: 4 });
    expect(dma.alloc(4096)).toBe(BASE);
  });

  it('treats a double free or a foreign address as a kernel bug', () => {
    const dma = new DmaAllocator(mem());
    const a = dma.alloc(64)!;
    dma.free(a);
    expect(() => dma.free(a)).toThrow(KernelBug);
    expect(() => dma.free(BASE + 12345)).toThrow(KernelBug);
  });

  it('manages only its window and checks accesses against RAM', () => {
    const m = mem();
    const dma = new DmaAllocator(m, BASE + 0x8000, 0x1000);
    expect(dma.alloc(0x1000)).toBe(BASE + 0x8000);
    expect(() => new DmaAllocator(m, BASE + 0xf000, 0x2000)).toThrow(RangeError);
    expect(() => dma.bytes(BASE + m.size - 4, 8)).toThrow(RangeError);
    expect(() => dma.alloc(0)).toThrow(RangeError);
    expect(() => dma.alloc(8, 3)).toThrow(RangeError);
  });

  it('has one shared allocator per guest RAM, replaceable, and one per device set by its transport', () => {
    const m = mem();
    expect(dmaFor(m)).toBe(dmaFor(m));
    const mine = new DmaAllocator(m, BASE, 4096);
    setDmaAllocator(m, mine);
    expect(dmaFor(m)).toBe(mine);
    const ops = {} as VirtioConfigOps;
    const vdev = new VirtioDevice(ops, { device: 4, vendor: 0 }, new VirtioBus());
    expect(() => dmaForDevice(vdev)).toThrow(KernelBug);
  });
});
