// Device status bits (spec 2.1, uapi virtio_config.h).
export const VIRTIO_CONFIG_S_ACKNOWLEDGE = 1;
export const VIRTIO_CONFIG_S_DRIVER = 2;
export const VIRTIO_CONFIG_S_DRIVER_OK = 4;
export const VIRTIO_CONFIG_S_FEATURES_OK = 8;
/** spec v1.4, with VIRTIO_F_SUSPEND */
export const VIRTIO_CONFIG_S_SUSPEND = 16;
export const VIRTIO_CONFIG_S_NEEDS_RESET = 0x40;
export const VIRTIO_CONFIG_S_FAILED = 0x80;

const BITS: [number, string][] = [
  [VIRTIO_CONFIG_S_ACKNOWLEDGE, 'ACKNOWLEDGE'],
  [VIRTIO_CONFIG_S_DRIVER, 'DRIVER'],
  [VIRTIO_CONFIG_S_DRIVER_OK, 'DRIVER_OK'],
  [VIRTIO_CONFIG_S_FEATURES_OK, 'FEATURES_OK'],
  [VIRTIO_CONFIG_S_SUSPEND, 'SUSPEND'],
  [VIRTIO_CONFIG_S_NEEDS_RESET, 'DEVICE_NEEDS_RESET'],
  [VIRTIO_CONFIG_S_FAILED, 'FAILED'],
];

/** "ACKNOWLEDGE|DRIVER|FEATURES_OK" for 0x0b; "0" for 0. */
export function statusString(status: number): string {
  if (status === 0) return '0';
  const names = BITS.filter(([bit]) => status & bit).map(([, n]) => n);
  const rest = status & ~BITS.reduce((a, [b]) => a | b, 0);
  if (rest) names.push(`0x${rest.toString(16)}`);
  return names.join('|');
}
