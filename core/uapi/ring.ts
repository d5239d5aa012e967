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

// Packed virtqueue layout (spec 2.8, uapi virtio_ring.h).
/** Bit positions of the AVAIL and USED flags in a packed descriptor (the uapi defines shifts). */
export const VRING_PACKED_DESC_F_AVAIL = 7;
export const VRING_PACKED_DESC_F_USED = 15;
export const VRING_PACKED_DESC_F_AVAIL_MASK = 1 << VRING_PACKED_DESC_F_AVAIL;
export const VRING_PACKED_DESC_F_USED_MASK = 1 << VRING_PACKED_DESC_F_USED;

/** Event suppression flags (struct vring_packed_desc_event.flags). */
export const VRING_PACKED_EVENT_FLAG_ENABLE = 0x0;
export const VRING_PACKED_EVENT_FLAG_DISABLE = 0x1;
/** Only with VIRTIO_RING_F_EVENT_IDX: notify at off_wrap. */
export const VRING_PACKED_EVENT_FLAG_DESC = 0x2;
/** Bit 15 of off_wrap: the wrap counter; bits 0-14 the descriptor offset. */
export const VRING_PACKED_EVENT_F_WRAP_CTR = 15;

/** struct vring_packed_desc: addr le64 @0, len le32 @8, id le16 @12, flags le16 @14. */
export const VRING_PACKED_DESC = { addr: 0, len: 8, id: 12, flags: 14 } as const;
/** struct vring_packed_desc_event: off_wrap le16 @0, flags le16 @2. */
export const VRING_PACKED_EVENT = { off_wrap: 0, flags: 2 } as const;
export const VRING_PACKED_EVENT_SIZE = 4;
/** Alignment of the descriptor ring and of the two event suppression areas (spec 2.8.10.1). */
export const VRING_PACKED_DESC_ALIGN = 16;
export const VRING_PACKED_EVENT_ALIGN = 4;

/** Bytes of a packed descriptor ring of num entries. */
export function packedRingSize(num: number): number {
  return VRING_DESC_SIZE * num;
}
