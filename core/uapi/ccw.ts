// virtio-ccw channel command codes (spec 4.3, Linux virtio_ccw.c).
export const CCW_CMD_SET_VQ = 0x13;
export const CCW_CMD_VDEV_RESET = 0x33;
export const CCW_CMD_SET_IND = 0x43;
export const CCW_CMD_SET_CONF_IND = 0x53;
export const CCW_CMD_READ_FEAT = 0x12;
export const CCW_CMD_WRITE_FEAT = 0x11;
export const CCW_CMD_READ_CONF = 0x22;
export const CCW_CMD_WRITE_CONF = 0x21;
export const CCW_CMD_WRITE_STATUS = 0x31;
export const CCW_CMD_READ_VQ_CONF = 0x32;
export const CCW_CMD_READ_STATUS = 0x72;
export const CCW_CMD_SET_IND_ADAPTER = 0x73;
export const CCW_CMD_SET_VIRTIO_REV = 0x83;

/** CCW flags */
export const CCW_FLAG_CC = 0x40; // command chaining
export const CCW_FLAG_SLI = 0x20; // suppress length indication

/** Linux VIRTIO_CCW_REV_MAX */
export const VIRTIO_CCW_REV_MAX = 2;

/** Linux VIRTIO_CCW_CONFIG_SIZE: the config area a READ_CONF/WRITE_CONF can carry. */
export const VIRTIO_CCW_CONFIG_SIZE = 0x100;
/** arch/s390 KVM_VIRTIO_CCW_RING_ALIGN */
export const KVM_VIRTIO_CCW_RING_ALIGN = 4096;
/** DIAGNOSE 0x500 subcode for a queue notification (KVM_S390_VIRTIO_CCW_NOTIFY). */
export const KVM_S390_VIRTIO_CCW_NOTIFY = 3;
/** SENSE ID control-unit type of a virtio-ccw device; the CU model is the virtio device ID. */
export const VIRTIO_CCW_CU_TYPE = 0x3832;

/** More CCW flags (format-1 CCW, struct ccw1). */
export const CCW_FLAG_DC = 0x80; // data chaining
export const CCW_FLAG_SKIP = 0x10;
export const CCW_FLAG_PCI = 0x08;
export const CCW_FLAG_IDA = 0x04;
export const CCW_FLAG_SUSPEND = 0x02;
export const CCW_FLAG_MIDA = 0x01;

/**
 * struct ccw1 { u8 cmd_code; u8 flags; u16 count; u32 cda; }, 8-byte
 * aligned. s390 is big-endian; this board is little-endian, so every
 * multi-byte field of the ccw structures is little-endian here (the feature
 * word of READ_FEAT/WRITE_FEAT is le32 on both).
 */
export const CCW1 = { cmd_code: 0, flags: 1, count: 2, cda: 4, SIZE: 8, ALIGN: 8 } as const;

// Command payloads (virtio_ccw.c / QEMU hw/s390x/virtio-ccw.c).
/** struct virtio_feature_desc { le32 features; u8 index; } __packed */
export const FEATURE_DESC = { features: 0, index: 4, SIZE: 5 } as const;
/** struct vq_config_block { u16 index; u16 num; } */
export const VQ_CONFIG_BLOCK = { index: 0, num: 2, SIZE: 4 } as const;
/** struct vq_info_block_legacy { u64 queue; u32 align; u16 index; u16 num; } */
export const VQ_INFO_BLOCK_LEGACY = { queue: 0, align: 8, index: 12, num: 14, SIZE: 16 } as const;
/** struct vq_info_block { u64 desc; u32 res0; u16 index; u16 num; u64 avail; u64 used; } */
export const VQ_INFO_BLOCK = { desc: 0, res0: 8, index: 12, num: 14, avail: 16, used: 24, SIZE: 32 } as const;
/** struct virtio_rev_info { u16 revision; u16 length; u8 data[]; } */
export const REV_INFO = { revision: 0, length: 2, SIZE: 4 } as const;
/** struct virtio_thinint_area { u64 summary_indicator; u64 indicator; u64 bit_nr; u8 isc; } __packed */
export const THININT_AREA = { summary_indicator: 0, indicator: 8, bit_nr: 16, isc: 24, SIZE: 25 } as const;
/** SET_IND / SET_CONF_IND payload: the u64 address of the indicator word. */
export const INDICATOR_ADDR_SIZE = 8;
/** Classic indicators are one u64: at most 64 queues (QEMU NR_CLASSIC_INDICATOR_BITS). */
export const NR_CLASSIC_INDICATOR_BITS = 64;

/** In-flight flags in the upper half of the driver's intparm (Linux VIRTIO_CCW_DOING_*). */
export const VIRTIO_CCW_DOING_SET_VQ = 0x00010000;
export const VIRTIO_CCW_DOING_RESET = 0x00040000;
export const VIRTIO_CCW_DOING_READ_FEAT = 0x00080000;
export const VIRTIO_CCW_DOING_WRITE_FEAT = 0x00100000;
export const VIRTIO_CCW_DOING_READ_CONFIG = 0x00200000;
export const VIRTIO_CCW_DOING_WRITE_CONFIG = 0x00400000;
export const VIRTIO_CCW_DOING_WRITE_STATUS = 0x00800000;
export const VIRTIO_CCW_DOING_SET_IND = 0x01000000;
export const VIRTIO_CCW_DOING_READ_VQ_CONF = 0x02000000;
export const VIRTIO_CCW_DOING_SET_CONF_IND = 0x04000000;
export const VIRTIO_CCW_DOING_SET_IND_ADAPTER = 0x08000000;
export const VIRTIO_CCW_DOING_SET_VIRTIO_REV = 0x10000000;
export const VIRTIO_CCW_DOING_READ_STATUS = 0x20000000;
export const VIRTIO_CCW_INTPARM_MASK = 0xffff0000;

// Subchannel status word (asm/cio.h, asm/scsw.h).
export const DEV_STAT_ATTENTION = 0x80;
export const DEV_STAT_CHN_END = 0x08;
export const DEV_STAT_DEV_END = 0x04;
export const DEV_STAT_UNIT_CHECK = 0x02;
export const SCHN_STAT_INCORR_LEN = 0x40;
export const SCHN_STAT_PROG_CHECK = 0x20;
export const SCHN_STAT_CHN_DATA_CHK = 0x08;
export const SCSW_FCTL_START_FUNC = 0x04;
export const SCSW_STCTL_ALERT_STATUS = 0x10;
export const SCSW_STCTL_PRIM_STATUS = 0x04;
export const SCSW_STCTL_SEC_STATUS = 0x02;
export const SCSW_STCTL_STATUS_PEND = 0x01;
/** Sense byte 0: command reject. */
export const SNS0_CMD_REJECT = 0x80;

/**
 * This board's stand-in for the s390 I/O instructions: one 0x40-byte window
 * per subchannel at PLATFORM.CSS_BASE + schid * PLATFORM.CSS_WINDOW_SIZE
 * (subchannel number = board slot, I/O interrupt = the slot's line).
 * 32-bit aligned accesses only.
 *
 * | off  | name     | dir | meaning                                                   |
 * |------|----------|-----|-----------------------------------------------------------|
 * | 0x00 | CuType   | R   | SENSE ID control-unit type: 0x3832, or 0 (no device)      |
 * | 0x04 | CuModel  | R   | SENSE ID control-unit model = virtio device ID            |
 * | 0x08 | SchId    | R   | subchannel number                                         |
 * | 0x10 | OrbLow   | R/W | guest-physical address of the ORB, bits 0-31              |
 * | 0x14 | OrbHigh  | R/W | ... bits 32-63                                            |
 * | 0x18 | Ssch     | W   | START SUBCHANNEL with that ORB (value ignored)             |
 * | 0x1c | Status   | R   | cc of the last SSCH/TSCH (bits 0-1), STATUS_PENDING,      |
 * |      |          |     | ACTIVE, ALERT (STORE SUBCHANNEL: reading changes nothing) |
 * | 0x20 | IrbLow   | R/W | guest-physical address for the IRB, bits 0-31             |
 * | 0x24 | IrbHigh  | R/W | ... bits 32-63                                            |
 * | 0x28 | Tsch     | W   | TEST SUBCHANNEL: store the IRB there, clear the pending   |
 * |      |          |     | status and with it the interrupt (value ignored)          |
 * | 0x2c | Intparm  | R   | interruption parameter of the pending status (0: none or  |
 * |      |          |     | unsolicited), as the I/O interruption code carries it     |
 * | 0x30 | Notify   | W   | DIAGNOSE 0x500 subcode 3: queue index, or the             |
 * |      |          |     | notification data with VIRTIO_F_NOTIFICATION_DATA         |
 *
 * SSCH condition codes: 0 started, 1 status pending, 2 busy, 3 not
 * operational (no device). TSCH: 0 status stored and cleared, 1 no status
 * was pending (an IRB without status is stored), 3 not operational or the
 * IRB address is not in RAM (nothing stored).
 */
export const CSS_REG = {
  CuType: 0x00,
  CuModel: 0x04,
  SchId: 0x08,
  OrbLow: 0x10,
  OrbHigh: 0x14,
  Ssch: 0x18,
  Status: 0x1c,
  IrbLow: 0x20,
  IrbHigh: 0x24,
  Tsch: 0x28,
  Intparm: 0x2c,
  Notify: 0x30,
} as const;

/** Condition codes of SSCH and TSCH (the low bits of the CSS Status register). */
export const CC_OK = 0;
export const CC_STATUS_PENDING = 1;
export const CC_BUSY = 2;
export const CC_NOT_OPERATIONAL = 3;

export const CSS_STATUS_CC_MASK = 0x3;
export const CSS_STATUS_PENDING = 0x100;
/** A start function is in progress: the channel program is executing. */
export const CSS_STATUS_ACTIVE = 0x200;
/** The pending status is unsolicited (alert status, no start function). */
export const CSS_STATUS_ALERT = 0x400;

/** Operation request block: {u32 intparm; u32 ctrl (ignored); u32 cpa; u32 reserved}, 4-aligned. */
export const ORB = { intparm: 0, ctrl: 4, cpa: 8, SIZE: 16, ALIGN: 4 } as const;

/**
 * Interruption response block as TSCH stores it (4-aligned), with the
 * format-1 SCSW at its start and the sense bytes in the ECW:
 * {u32 intparm; u8 cc; u8 fctl; u8 actl; u8 stctl; u32 cpa; u8 dstat;
 *  u8 cstat; u16 count; u8 esw[16]; u8 ecw[32]}. The intparm stands in for
 * the I/O interruption code s390 delivers beside the IRB.
 */
export const IRB = { intparm: 0, cc: 4, fctl: 5, actl: 6, stctl: 7, cpa: 8, dstat: 12, cstat: 13, count: 14, ecw: 32, SIZE: 64, ALIGN: 4 } as const;
