// virtio-mmio register offsets (spec 4.2.2, Linux uapi virtio_mmio.h).
export const MAGIC_VALUE = 0x74726976; // "virt"

export const REG = {
  MagicValue: 0x000,
  Version: 0x004,
  DeviceID: 0x008,
  VendorID: 0x00c,
  DeviceFeatures: 0x010,
  DeviceFeaturesSel: 0x014,
  DriverFeatures: 0x020,
  DriverFeaturesSel: 0x024,
  GuestPageSize: 0x028, // legacy
  QueueSel: 0x030,
  QueueNumMax: 0x034,
  QueueNum: 0x038,
  QueueAlign: 0x03c, // legacy
  QueuePFN: 0x040, // legacy
  QueueReady: 0x044,
  QueueNotify: 0x050,
  InterruptStatus: 0x060,
  InterruptACK: 0x064,
  Status: 0x070,
  QueueDescLow: 0x080,
  QueueDescHigh: 0x084,
  QueueDriverLow: 0x090,
  QueueDriverHigh: 0x094,
  QueueDeviceLow: 0x0a0,
  QueueDeviceHigh: 0x0a4,
  SHMSel: 0x0ac,
  SHMLenLow: 0x0b0,
  SHMLenHigh: 0x0b4,
  SHMBaseLow: 0x0b8,
  SHMBaseHigh: 0x0bc,
  QueueReset: 0x0c0,
  ConfigGeneration: 0x0fc,
  Config: 0x100,
} as const;

export type RegName = keyof typeof REG;

const NAMES = new Map<number, RegName>(
  (Object.entries(REG) as [RegName, number][]).map(([k, v]) => [v, k]),
);

/** Register name for an offset inside a 0x200 window ("Config+0x4" for config space). */
export function regName(offset: number): string {
  if (offset >= REG.Config) return `Config+0x${(offset - REG.Config).toString(16)}`;
  return NAMES.get(offset) ?? `0x${offset.toString(16).padStart(3, '0')}`;
}

/** InterruptStatus / InterruptACK bits. */
export const VIRTIO_MMIO_INT_VRING = 1;
export const VIRTIO_MMIO_INT_CONFIG = 2;

/** Size of one virtio-mmio register window. */
export const MMIO_WINDOW_SIZE = 0x200;
