// Device IDs (spec 5, uapi virtio_ids.h).
export const VIRTIO_ID_NET = 1;
export const VIRTIO_ID_BLOCK = 2;
export const VIRTIO_ID_CONSOLE = 3;
export const VIRTIO_ID_RNG = 4;
/** spec "RTC (Real Time Clock)"; Linux VIRTIO_ID_CLOCK */
export const VIRTIO_ID_CLOCK = 17;

const NAMES: Record<number, string> = {
  [VIRTIO_ID_NET]: 'net',
  [VIRTIO_ID_BLOCK]: 'blk',
  [VIRTIO_ID_CONSOLE]: 'console',
  [VIRTIO_ID_RNG]: 'rng',
  [VIRTIO_ID_CLOCK]: 'rtc',
};

export function deviceName(id: number): string {
  return NAMES[id] ?? `virtio-${id}`;
}
