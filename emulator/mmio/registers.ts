// Which virtio-mmio registers exist in each version and in which direction
// (VIRTIO-NOTES §1.1). Accesses outside this table are guest errors.
import type { AccessWidth } from '../../core/bus.js';
import { REG, regName } from '../../core/uapi/mmio.js';

/** Our VendorID: "VEMU" little-endian (QEMU uses 0x554d4551, "QEMU"). */
export const VENDOR_ID = 0x554d4556;

export type MmioVersion = 1 | 2;

export type RegDir = 'R' | 'W' | 'RW';

const COMMON: [number, RegDir][] = [
  [REG.MagicValue, 'R'],
  [REG.Version, 'R'],
  [REG.DeviceID, 'R'],
  [REG.VendorID, 'R'],
  [REG.DeviceFeatures, 'R'],
  [REG.DeviceFeaturesSel, 'W'],
  [REG.DriverFeatures, 'W'],
  [REG.DriverFeaturesSel, 'W'],
  [REG.QueueSel, 'W'],
  [REG.QueueNumMax, 'R'],
  [REG.QueueNum, 'W'],
  [REG.QueueNotify, 'W'],
  [REG.InterruptStatus, 'R'],
  [REG.InterruptACK, 'W'],
  [REG.Status, 'RW'],
];

const V1_ONLY: [number, RegDir][] = [
  [REG.GuestPageSize, 'W'],
  [REG.QueueAlign, 'W'],
  [REG.QueuePFN, 'RW'],
];

const V2_ONLY: [number, RegDir][] = [
  [REG.QueueReady, 'RW'],
  [REG.QueueDescLow, 'W'],
  [REG.QueueDescHigh, 'W'],
  [REG.QueueDriverLow, 'W'],
  [REG.QueueDriverHigh, 'W'],
  [REG.QueueDeviceLow, 'W'],
  [REG.QueueDeviceHigh, 'W'],
  [REG.SHMSel, 'W'],
  [REG.SHMLenLow, 'R'],
  [REG.SHMLenHigh, 'R'],
  [REG.SHMBaseLow, 'R'],
  [REG.SHMBaseHigh, 'R'],
  [REG.QueueReset, 'RW'],
  [REG.ConfigGeneration, 'R'],
];

const TABLES: Record<MmioVersion, Map<number, RegDir>> = {
  1: new Map([...COMMON, ...V1_ONLY]),
  2: new Map([...COMMON, ...V2_ONLY]),
};

export function registerDir(version: MmioVersion, offset: number): RegDir | undefined {
  return TABLES[version].get(offset);
}

/**
 * Why a control-register access (offset < 0x100) is invalid, or null.
 * MMIO-R1/R2: aligned 32-bit accesses to defined registers in their direction.
 */
export function controlAccessError(version: MmioVersion, offset: number, width: AccessWidth, isWrite: boolean): string | null {
  // Hot path (every trapped register access): build a message only on failure.
  const dir = width === 4 && offset % 4 === 0 ? registerDir(version, offset) : undefined;
  if (dir === 'RW' || dir === (isWrite ? 'W' : 'R')) return null;
  const what = `${isWrite ? 'write' : 'read'} of ${regName(offset)}`;
  if (width !== 4 || offset % 4 !== 0) return `${width}-byte ${what}: control registers take aligned 32-bit accesses only`;
  if (!dir) return `${what}: no such register in virtio-mmio version ${version}`;
  return isWrite ? `${what}: read-only register` : `${what}: write-only register`;
}
