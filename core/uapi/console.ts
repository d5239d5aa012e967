// virtio-console (spec 5.3, uapi virtio_console.h): feature bits, config
// layout, queue numbers for port 0.

export const VIRTIO_CONSOLE_F_SIZE = 0;
export const VIRTIO_CONSOLE_F_MULTIPORT = 1;
export const VIRTIO_CONSOLE_F_EMERG_WRITE = 2;

/** Byte offsets in struct virtio_console_config (spec 5.3.4). */
export const VIRTIO_CONSOLE_CONFIG = {
  /** le16, valid with VIRTIO_CONSOLE_F_SIZE */
  cols: 0,
  /** le16, valid with VIRTIO_CONSOLE_F_SIZE */
  rows: 2,
  /** le32, valid with VIRTIO_CONSOLE_F_MULTIPORT */
  max_nr_ports: 4,
  /** le32, write-only, valid with VIRTIO_CONSOLE_F_EMERG_WRITE */
  emerg_wr: 8,
} as const;
export const VIRTIO_CONSOLE_CONFIG_SIZE = 12;

/** Port 0 queues (spec 5.3.2); the control queues exist only with MULTIPORT. */
export const VIRTIO_CONSOLE_RECEIVEQ = 0;
export const VIRTIO_CONSOLE_TRANSMITQ = 1;
export const VIRTIO_CONSOLE_CONTROL_RECEIVEQ = 2;
export const VIRTIO_CONSOLE_CONTROL_TRANSMITQ = 3;
