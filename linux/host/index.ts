// The Linux kernel (virtio core, virtio-mmio, virtio-rng) compiled to wasm32.
export { LINUX_DRIVER_NAMES, LinuxKernel, LINUX_DEFAULT_DRIVERS, LINUX_DRIVER_OF_MODEL, LINUX_IRQ_BASE, RNG_BUFFER_SIZE, machineSlots } from './kernel.js';
export type {
  LinuxBootOptions,
  LinuxDevice,
  LinuxDriverName,
  LinuxDriverSpec,
  LinuxMemStats,
  LinuxMessage,
  LinuxPmDev,
  LinuxPmTestInfo,
  LinuxRtcInfo,
  LinuxSlot,
  LinuxUevent,
  LinuxWarning,
  VirtioPmCallbackName,
} from './kernel.js';
export { bootLinuxSystem } from './system.js';
export type { LinuxHibernateOptions, LinuxPowerModel, LinuxSleepOptions, LinuxSystem, LinuxSystemOptions } from './system.js';
export { LinuxBugError, LinuxCallError, LinuxDeadError, LinuxHangError, linuxErrnoName } from './errors.js';
export { BUILD_COMMAND, LINUX_SRC_DIR, LINUX_WASM_PATH, linuxWasmPath, createLinuxMemory, linuxBuildInfo, linuxBuilt, loadLinuxModule, memoryImport } from './module.js';
