// Split virtqueue layout (spec 2.7, uapi virtio_ring.h).
export const VRING_DESC_F_NEXT = 1;
export const VRING_DESC_F_WRITE = 2;
export const VRING_DESC_F_INDIRECT = 4;

export const VRING_AVAIL_F_NO_INTERRUPT = 1;
export const VRING_USED_F_NO_NOTIFY = 1;

export const VRING_DESC_SIZE = 16;
export const VRING_USED_ELEM_SIZE = 8;
export const VRING_DESC_ALIGN = 16;
export const VRING_AVAIL_ALIGN = 2;
export const VRING_USED_ALIGN = 4;
/** Largest split queue size (spec 2.7). */
export const VIRTQUEUE_MAX_SIZE = 32768;

export function descTableSize(num: number): number {
  return VRING_DESC_SIZE * num;
}
/** flags, idx, ring[num], used_event */
export function availRingSize(num: number): number {
  return 6 + 2 * num;
}
/** flags, idx, ring[num] of {id,len}, avail_event */
export function usedRingSize(num: number): number {
  return 6 + VRING_USED_ELEM_SIZE * num;
}

export function alignUp(x: number, align: number): number {
  return Math.ceil(x / align) * align;
}

/** Linux vring_size(num, align): legacy contiguous layout. */
export function vringSize(num: number, align: number): number {
  return alignUp(descTableSize(num) + availRingSize(num), align) + usedRingSize(num);
}

/** vring_need_event(event, new, old): notify if event is in [old, new). */
export function vringNeedEvent(event: number, newIdx: number, old: number): boolean {
  return ((newIdx - event - 1) & 0xffff) < ((newIdx - old) & 0xffff);
}

export function isPowerOf2(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}
