// The package's public entry point (import ... from 'virtio-mmio-emu'): the
// machine, a machine with a booted kernel, the kernel model's drivers and
// the pieces a harness needs to drive and inspect system sleep.
export { Machine, MACHINE_LIMITS, type MachineOptions, type MachineDevice, type MachineDeviceEntry, type MachinePlatform } from '../emulator/machine.js';
export { BUILTIN_DEVICE_TYPES, customDeviceType, type DeviceType, type CustomDeviceType } from '../emulator/devices/catalog.js';
export { SNAPSHOT_FORMAT, SNAPSHOT_VERSION, SNAPSHOT_LIMITS } from '../emulator/snapshot/format.js';
export { SnapshotError } from '../emulator/snapshot/fields.js';
export { RUN_LIMITS, SCENARIO_LIMITS, FUZZ_LIMITS } from './limits.js';
export { bootLinuxSystem, LinuxKernel, type LinuxDevice, type LinuxSystem, type LinuxSystemOptions } from '../linux/host/index.js';
export {
  VirtioSystem,
  KernelInstance,
  KernelState,
  POWER_MODELS,
  type SystemOptions,
  type SleepOptions,
  type HibernateSystemOptions,
  type PowerModel,
  type SystemSnapshot,
  type RestoreOptions,
} from './system.js';
export type { ControlRequest, ControlResponse, DeviceSpec, TransportKind } from '../emulator/board-contract.js';
export { BusError, PLATFORM, read64, write64, type AccessWidth, type Bus, type IrqChip, type GuestMemory } from '../core/bus.js';
export { kernel, KERNEL_LOG_MAX, type KernelWarning, type KernelMessage } from '../core/kernel.js';
export * from '../core/virtio.js';
export { DpmCore, type PmDevice, type PmInjection, type PmCallRecord } from '../core/pm/dpm.js';
export { pmSuspend, hibernate, HIBERNATION_MODES, type HibernationMode, type PmTransition } from '../core/pm/system.js';
export { PM_CALLBACKS, type PmCallbackName } from '../core/pm/pm.js';
export { drivers, driverByName } from '../core/drivers/index.js';
export { virtioRngDriver, virtioRngRead } from '../core/drivers/rng.js';
export { virtioRtcDriver, virtioRtcNoirqDriver, viortcDev, viortcRead, clockRead } from '../core/drivers/rtc.js';
export { clockConsumerDriver, clockConsumerState } from '../core/drivers/clock-consumer.js';
export * as uapi from '../core/uapi/index.js';
