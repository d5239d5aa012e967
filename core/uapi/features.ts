// Device-independent feature bits (spec 6, uapi virtio_config.h / virtio_ring.h).
// Features are 64-bit sets held as bigint on the control path; the register
// file keeps them as two u32 words.
export const VIRTIO_F_NOTIFY_ON_EMPTY = 24;
export const VIRTIO_F_ANY_LAYOUT = 27;
export const VIRTIO_RING_F_INDIRECT_DESC = 28;
export const VIRTIO_RING_F_EVENT_IDX = 29;
export const VIRTIO_F_VERSION_1 = 32;
export const VIRTIO_F_ACCESS_PLATFORM = 33;
export const VIRTIO_F_RING_PACKED = 34;
export const VIRTIO_F_IN_ORDER = 35;
export const VIRTIO_F_ORDER_PLATFORM = 36;
export const VIRTIO_F_SR_IOV = 37;
export const VIRTIO_F_NOTIFICATION_DATA = 38;
export const VIRTIO_F_NOTIF_CONFIG_DATA = 39;
export const VIRTIO_F_RING_RESET = 40;
export const VIRTIO_F_ADMIN_VQ = 41;
export const VIRTIO_F_SUSPEND = 43;

/** Linux: VIRTIO_TRANSPORT_F_START / _END */
export const VIRTIO_TRANSPORT_F_START = 28;
export const VIRTIO_TRANSPORT_F_END = 42;

export function bit(n: number): bigint {
  return 1n << BigInt(n);
}

export function hasBit(features: bigint, n: number): boolean {
  return (features & bit(n)) !== 0n;
}

export function lo32(features: bigint): number {
  return Number(features & 0xffffffffn);
}

export function hi32(features: bigint): number {
  return Number((features >> 32n) & 0xffffffffn);
}

export function fromWords(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

export function featureHex(features: bigint): string {
  return `0x${features.toString(16).padStart(16, '0')}`;
}
