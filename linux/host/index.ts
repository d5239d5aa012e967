// The Linux kernel (virtio core, virtio-mmio, virtio-rng) compiled to wasm32.
export { LinuxKernel, LINUX_IRQ_BASE, RNG_BUFFER_SIZE, machineSlots } from './kernel.js';
export type { LinuxBootOptions, LinuxDevice, LinuxMemStats, LinuxMessage, LinuxSlot, LinuxUevent, LinuxWarning } from './kernel.js';
export { bootLinuxSystem } from './system.js';
export type { LinuxSystem, LinuxSystemOptions } from './system.js';
export { LinuxBugError, LinuxCallError, LinuxDeadError, LinuxHangError, linuxErrnoName } from './errors.js';
export { BUILD_COMMAND, LINUX_SRC_DIR, LINUX_WASM_PATH, createLinuxMemory, linuxBuildInfo, linuxBuilt, loadLinuxModule, memoryImport } from './module.js';
