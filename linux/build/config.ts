// What the Linux wasm build compiles and how. The build (build.ts) and the
// host (linux/host) both read this; nothing here runs anything.
import { PLATFORM } from '../../core/bus.js';

/** The Linux source tarball (Debian's linux-source-6.12); LINUX_TARBALL overrides. */
export const TARBALL_DEFAULT = '/usr/src/linux-source-6.12.tar.xz';

/** What to install when a tool or the tarball is missing. */
export const INSTALL_HINT = 'apt-get install -y clang lld linux-source-6.12';

/**
 * Guest RAM = the module's linear memory: a shared WebAssembly.Memory with
 * initial = maximum = this many bytes (a link constant; the host reads it
 * back from the module's memory import). Guest-physical address =
 * PLATFORM.RAM_BASE + wasm address.
 */
export const RAM_SIZE_DEFAULT = PLATFORM.RAM_SIZE_DEFAULT;
export const RAM_BASE = PLATFORM.RAM_BASE;

/** The kernel stack, at the bottom of RAM (--stack-first): overflowing it traps. */
export const STACK_SIZE = 1 << 20;

export interface CFile {
  /** Path: under the extracted tree for Linux files, under the repo for ours. */
  src: string;
  /** Object name; also the identifier LX_OBJ its initcalls are named after. */
  obj: string;
  /** KBUILD_MODNAME: what Linux's Makefile would make of the object's name. */
  modname: string;
}

/** Linux's own C files, compiled unmodified (after linux/patches/ if any). */
export const LINUX_FILES: readonly CFile[] = [
  { src: 'drivers/virtio/virtio.c', obj: 'virtio', modname: 'virtio' },
  { src: 'drivers/virtio/virtio_ring.c', obj: 'virtio_ring', modname: 'virtio_ring' },
  // CONFIG_VIRTIO selects CONFIG_VIRTIO_ANCHOR; virtio.c calls virtio_check_mem_acc_cb() from it.
  { src: 'drivers/virtio/virtio_anchor.c', obj: 'virtio_anchor', modname: 'virtio_anchor' },
  { src: 'drivers/virtio/virtio_mmio.c', obj: 'virtio_mmio', modname: 'virtio_mmio' },
  { src: 'drivers/char/hw_random/virtio-rng.c', obj: 'virtio_rng', modname: 'virtio_rng' },
];

/** Linux headers the files include that the shim does not stand in for. */
export const LINUX_HEADERS: readonly string[] = [
  'include/linux/virtio.h',
  'include/linux/virtio_config.h',
  'include/linux/virtio_ring.h',
  'include/linux/virtio_byteorder.h',
  'include/linux/virtio_anchor.h',
  'include/uapi/linux/virtio_config.h',
  'include/uapi/linux/virtio_ring.h',
  'include/uapi/linux/virtio_types.h',
  'include/uapi/linux/virtio_mmio.h',
  'include/uapi/linux/virtio_rng.h',
  'include/uapi/linux/virtio_ids.h',
];

/** Extracted for `--checkpatch` and the version string. */
export const LINUX_TOOLS: readonly string[] = ['Makefile', 'scripts/checkpatch.pl', 'scripts/spelling.txt', 'scripts/const_structs.checkpatch'];

/** Our kernel services and the host entry points (repo-relative). */
export const GLUE_FILES: readonly CFile[] = [
  { src: 'linux/glue/mm.c', obj: 'mm', modname: 'mm' },
  { src: 'linux/glue/lib.c', obj: 'lib', modname: 'lib' },
  { src: 'linux/glue/printk.c', obj: 'printk', modname: 'printk' },
  { src: 'linux/glue/base.c', obj: 'base', modname: 'base' },
  { src: 'linux/glue/platform.c', obj: 'platform', modname: 'platform' },
  { src: 'linux/glue/irq.c', obj: 'irq', modname: 'irq' },
  { src: 'linux/glue/sched.c', obj: 'sched', modname: 'sched' },
  { src: 'linux/glue/hwrng.c', obj: 'hwrng', modname: 'hwrng' },
  { src: 'linux/glue/power.c', obj: 'power', modname: 'power' },
  { src: 'linux/glue/entry.c', obj: 'entry', modname: 'entry' },
  { src: 'linux/drivers/lx-test.c', obj: 'lx_test', modname: 'lx_test' },
  // The PM cases (mirroring core/drivers/rtc.ts and clock-consumer.ts) and a test driver.
  { src: 'linux/drivers/lx-clock.c', obj: 'lx_clock', modname: 'lx_clock' },
  { src: 'linux/drivers/virtio_rtc.c', obj: 'virtio_rtc', modname: 'virtio_rtc' },
  { src: 'linux/drivers/clock-consumer.c', obj: 'clock_consumer', modname: 'clock_consumer' },
  { src: 'linux/drivers/lx-pm-test.c', obj: 'lx_pm_test', modname: 'lx_pm_test' },
];

/** Headers of ours outside the shim, checked by --checkpatch with every check. */
export const GLUE_HEADERS: readonly string[] = ['linux/glue/lx.h', 'linux/drivers/lx-clock.h'];

/** The kernel configuration: everything built in, no OF/ACPI/Xen/KMSAN/debugfs. */
export const KCONFIG: readonly string[] = [
  'CONFIG_VIRTIO',
  'CONFIG_VIRTIO_ANCHOR',
  'CONFIG_VIRTIO_MMIO',
  'CONFIG_HW_RANDOM',
  'CONFIG_HW_RANDOM_VIRTIO',
  'CONFIG_PM',
  'CONFIG_PM_SLEEP',
  'CONFIG_ARCH_DMA_ADDR_T_64BIT',
  'CONFIG_PHYS_ADDR_T_64BIT',
];

/** Output names, relative to dist/linux/. */
export const OUT = {
  wasm: 'virtio-linux.wasm',
  info: 'virtio-linux.json',
  src: 'src',
  obj: 'obj',
} as const;

/** What the build records next to the module (virtio-linux.json). */
export interface BuildInfo {
  linux: string;
  tarball: string;
  ramSize: number;
  ramBase: number;
  stackSize: number;
  files: string[];
  glue: string[];
  patches: string[];
  kconfig: string[];
  cflags: string[];
  ldflags: string[];
  /** Drivers built in with --driver: the name they register under and their file. */
  drivers: { name: string; file: string }[];
}
