// virtio-blk (spec 5.2, uapi virtio_blk.h): feature bits, config layout,
// request format. Shared by the device model and the driver side.

// Feature bits (spec 5.2.3).
export const VIRTIO_BLK_F_SIZE_MAX = 1;
export const VIRTIO_BLK_F_SEG_MAX = 2;
export const VIRTIO_BLK_F_GEOMETRY = 4;
export const VIRTIO_BLK_F_RO = 5;
export const VIRTIO_BLK_F_BLK_SIZE = 6;
export const VIRTIO_BLK_F_FLUSH = 9;
export const VIRTIO_BLK_F_TOPOLOGY = 10;
export const VIRTIO_BLK_F_CONFIG_WCE = 11;
export const VIRTIO_BLK_F_MQ = 12;
export const VIRTIO_BLK_F_DISCARD = 13;
export const VIRTIO_BLK_F_WRITE_ZEROES = 14;

/** Byte offsets in struct virtio_blk_config (spec 5.2.4). */
export const VIRTIO_BLK_CONFIG = {
  /** le64, in 512-byte sectors whatever blk_size says */
  capacity: 0,
  /** le32, VIRTIO_BLK_F_SIZE_MAX: largest single data segment */
  size_max: 8,
  /** le32, VIRTIO_BLK_F_SEG_MAX: most data segments in one request */
  seg_max: 12,
  /** le16 cylinders, u8 heads, u8 sectors (VIRTIO_BLK_F_GEOMETRY) */
  geometry: 16,
  /** le32, VIRTIO_BLK_F_BLK_SIZE */
  blk_size: 20,
  /** u8 physical_block_exp, u8 alignment_offset, le16 min_io_size, le32 opt_io_size */
  topology: 24,
  writeback: 32,
  num_queues: 34,
} as const;

/** Request types (struct virtio_blk_outhdr.type). */
export const VIRTIO_BLK_T_IN = 0;
export const VIRTIO_BLK_T_OUT = 1;
export const VIRTIO_BLK_T_FLUSH = 4;
export const VIRTIO_BLK_T_GET_ID = 8;
export const VIRTIO_BLK_T_GET_LIFETIME = 10;
export const VIRTIO_BLK_T_DISCARD = 11;
export const VIRTIO_BLK_T_WRITE_ZEROES = 13;
export const VIRTIO_BLK_T_SECURE_ERASE = 14;

/** Status byte written by the device, the last device-writable byte of a request. */
export const VIRTIO_BLK_S_OK = 0;
export const VIRTIO_BLK_S_IOERR = 1;
export const VIRTIO_BLK_S_UNSUPP = 2;

/** struct virtio_blk_outhdr: le32 type, le32 reserved (ioprio), le64 sector. */
export const VIRTIO_BLK_OUTHDR_SIZE = 16;
export const VIRTIO_BLK_OUTHDR = { type: 0, ioprio: 4, sector: 8 } as const;

/** The protocol's sector: always 512 bytes (spec 5.2.6), independent of blk_size. */
export const SECTOR_SHIFT = 9;
export const SECTOR_SIZE = 1 << SECTOR_SHIFT;

/** GET_ID: NUL-padded ASCII, no terminator when it is exactly this long. */
export const VIRTIO_BLK_ID_BYTES = 20;
