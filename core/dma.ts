// Coherent DMA memory for drivers: vrings, indirect tables and data buffers
// live in guest RAM so the device reaches them by guest-physical address, as
// dma_alloc_coherent() memory does on a machine without an IOMMU (dma
// address = physical address). One allocator per guest RAM, shared by every
// transport and driver of the modelled kernel (see dmaFor).
import type { GuestMemory } from './bus.js';
import { ENOMEM } from './uapi/errno.js';
import { KernelBug, type VirtioDevice } from './virtio.js';

export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;

interface Block {
  addr: number;
  size: number;
}

export interface DmaStats {
  /** Bytes handed out and not yet freed. */
  used: number;
  /** Bytes still free (possibly fragmented). */
  free: number;
  /** Live allocations. */
  allocations: number;
  /** Allocations refused for lack of a fitting free block. */
  failures: number;
  /** Calls to alloc() (refused ones included) and to free() so far: what a data path costs the allocator. */
  allocCalls: number;
  freeCalls: number;
}

/**
 * A first-fit allocator over a window of guest RAM. Blocks are zeroed on
 * allocation (__GFP_ZERO semantics), so a fresh vring never shows stale
 * indices from an earlier owner.
 */
export class DmaAllocator {
  readonly mem: GuestMemory;
  /** Guest-physical window managed by this allocator. */
  readonly start: number;
  readonly end: number;
  /** Free blocks sorted by address, coalesced. */
  private readonly freeList: Block[];
  private readonly live = new Map<number, number>();
  private failures = 0;
  private allocCalls = 0;
  private freeCalls = 0;

  constructor(mem: GuestMemory, start = mem.base, size = mem.size - (start - mem.base)) {
    if (start < mem.base || size < 0 || start + size > mem.base + mem.size) {
      throw new RangeError(`DMA window 0x${start.toString(16)}+0x${size.toString(16)} outside guest RAM`);
    }
    this.mem = mem;
    this.start = start;
    this.end = start + size;
    this.freeList = size > 0 ? [{ addr: start, size }] : [];
  }

  /**
   * Allocate `size` zeroed bytes aligned to `align` (a power of two).
   * Returns the guest-physical address, or null when no free block fits
   * (the caller maps that to -ENOMEM, as a failed kmalloc/dma_alloc does).
   */
  alloc(size: number, align = 16): number | null {
    if (!Number.isInteger(size) || size <= 0) throw new RangeError(`bad DMA allocation size ${size}`);
    if (!Number.isInteger(align) || align <= 0 || (align & (align - 1)) !== 0) {
      throw new RangeError(`DMA alignment ${align} is not a power of two`);
    }
    this.allocCalls++;
    for (let i = 0; i < this.freeList.length; i++) {
      const b = this.freeList[i]!;
      const addr = alignUp(b.addr, align);
      const pad = addr - b.addr;
      if (pad + size > b.size) continue;
      const tail = b.size - pad - size;
      // Shrink the block in place; only a split in the middle adds a block.
      if (pad === 0) {
        if (tail > 0) {
          b.addr = addr + size;
          b.size = tail;
        } else {
          this.freeList.splice(i, 1);
        }
      } else {
        b.size = pad;
        if (tail > 0) this.freeList.splice(i + 1, 0, { addr: addr + size, size: tail });
      }
      this.live.set(addr, size);
      this.bytes(addr, size).fill(0);
      return addr;
    }
    this.failures++;
    return null;
  }

  /** alloc() with the errno convention: address, or -ENOMEM. */
  allocOrErrno(size: number, align = 16): number {
    return this.alloc(size, align) ?? -ENOMEM;
  }

  /** Free a block returned by alloc(); freeing anything else is a kernel bug. */
  free(addr: number): void {
    const size = this.live.get(addr);
    if (size === undefined) throw new KernelBug('dma_free', `0x${addr.toString(16)} was not allocated (double free?)`);
    this.freeCalls++;
    this.live.delete(addr);
    const list = this.freeList;
    // First free block above addr (binary search: the list is address-sorted).
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (list[mid]!.addr < addr) lo = mid + 1;
      else hi = mid;
    }
    // Coalesce with the neighbours in place; insert only when neither touches.
    const prev = lo > 0 ? list[lo - 1]! : null;
    const next = lo < list.length ? list[lo]! : null;
    const joinsPrev = prev !== null && prev.addr + prev.size === addr;
    const joinsNext = next !== null && addr + size === next.addr;
    if (joinsPrev && joinsNext) {
      prev.size += size + next.size;
      list.splice(lo, 1);
    } else if (joinsPrev) {
      prev.size += size;
    } else if (joinsNext) {
      next.addr = addr;
      next.size += size;
    } else {
      list.splice(lo, 0, { addr, size });
    }
  }

  /** Size of a live allocation, or undefined. */
  sizeOf(addr: number): number | undefined {
    return this.live.get(addr);
  }

  /** A view of guest memory at a guest-physical address (no copy). */
  bytes(addr: number, len: number): Uint8Array {
    const off = addr - this.mem.base;
    if (off < 0 || len < 0 || off + len > this.mem.size) {
      throw new RangeError(`DMA access 0x${addr.toString(16)}+${len} outside guest RAM`);
    }
    return this.mem.u8.subarray(off, off + len);
  }

  stats(): DmaStats {
    let used = 0;
    for (const s of this.live.values()) used += s;
    let free = 0;
    for (const b of this.freeList) free += b.size;
    return { used, free, allocations: this.live.size, failures: this.failures, allocCalls: this.allocCalls, freeCalls: this.freeCalls };
  }
}

function alignUp(x: number, align: number): number {
  return Math.ceil(x / align) * align;
}

const allocators = new WeakMap<GuestMemory, DmaAllocator>();

/** The allocator of a guest RAM (created on first use, covering all of it). */
export function dmaFor(mem: GuestMemory): DmaAllocator {
  let a = allocators.get(mem);
  if (!a) {
    a = new DmaAllocator(mem);
    allocators.set(mem, a);
  }
  return a;
}

/** Install a specific allocator for a guest RAM (e.g. a smaller window in tests). */
export function setDmaAllocator(mem: GuestMemory, allocator: DmaAllocator): void {
  allocators.set(mem, allocator);
}

const deviceDma = new WeakMap<VirtioDevice, DmaAllocator>();

/** The transport records which allocator serves a device (dev->dev.parent's DMA). */
export function setDeviceDma(vdev: VirtioDevice, allocator: DmaAllocator): void {
  deviceDma.set(vdev, allocator);
}

/** The DMA allocator a driver uses for its device's buffers. */
export function dmaForDevice(vdev: VirtioDevice): DmaAllocator {
  const a = deviceDma.get(vdev);
  if (!a) throw new KernelBug('dma_for_device', `${vdev.name}: transport registered no DMA allocator`);
  return a;
}
