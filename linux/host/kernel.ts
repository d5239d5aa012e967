// LinuxKernel: Linux's virtio core, virtio-mmio transport and virtio-rng
// driver compiled to wasm32 (dist/linux/virtio-linux.wasm), driving a
// machine's devices through its Bus. The module's linear memory is the
// machine's guest RAM; every register access the C code makes is a call to
// bus.read/bus.write at the guest-physical address; interrupts arrive
// through bus.irq while the kernel waits for a completion.
//
// Any Bus works whose mem is the kernel's memory (mem.u8.buffer ===
// memory.buffer, mem.base === PLATFORM.RAM_BASE): a tracing or
// fault-injecting wrapper can sit between the kernel and the machine.
import { IRQ_HANDLED, IRQ_NONE, PLATFORM, type AccessWidth, type Bus, type IrqHandler, type IrqReturn } from '../../core/bus.js';
import { keepOutOfImage, type KernelMessage, type KernelWarning, type LogLevel, type LogTarget } from '../../core/kernel.js';
import type { DpmKernel, PmDevice } from '../../core/pm/dpm.js';
import { PM_CALLBACKS, type DevPmOps, type PmCallbackName } from '../../core/pm/pm.js';
import { MMIO_WINDOW_SIZE } from '../../core/uapi/mmio.js';
import type { Machine } from '../../emulator/machine.js';
import { LinuxBugError, LinuxCallError, LinuxDeadError, LinuxHangError, linuxErrnoName } from './errors.js';
import { BUILD_COMMAND, createLinuxMemory, loadLinuxModule, loadLinuxModuleSync, type MemoryImport } from './module.js';

/** A function the module imports: numbers in; a number back, or nothing for a void C function. */
// biome-ignore lint/suspicious/noConfusingVoidType: C functions returning void are imports returning nothing
type WasmImport = (...args: number[]) => number | void;

/** Linux irq number of controller line 0 (linux/interrupt.h LX_IRQ_BASE). */
export const LINUX_IRQ_BASE = 32;

/** The hw_random core reads an rng in chunks of rng_buffer_size(): max(32, SMP_CACHE_BYTES). */
export const RNG_BUFFER_SIZE = 64;

/** One virtio-mmio window the kernel gets a platform device for. */
export interface LinuxSlot {
  slot: number;
  /** Guest-physical base of the register window. */
  addr: number;
  /** Interrupt controller line (Linux irq = LINUX_IRQ_BASE + line). */
  line: number;
  /** Window size (default the virtio-mmio window, 0x200). */
  size?: number;
}

/** The virtio drivers built in that need no setup (linux/glue/entry.c lx_drivers). */
export const LINUX_DRIVER_NAMES = ['virtio_rng', 'virtio_rtc', 'virtio_rtc_noirq'] as const;
export type LinuxDriverName = (typeof LINUX_DRIVER_NAMES)[number];

/** The virtio driver callbacks a test driver can be given (struct virtio_driver). */
export type VirtioPmCallbackName = 'freeze' | 'restore' | 'freeze_noirq' | 'restore_noirq';

/** A driver to register at boot: a built-in one by name, or one of the two that are set up first. */
export type LinuxDriverSpec =
  | LinuxDriverName
  /** linux/drivers/clock-consumer.c: binds deviceId, reads `clock` ("rtc1.0") in restore(). */
  | { driver: 'clock_consumer'; deviceId: number; clock: string }
  /**
   * linux/drivers/lx-pm-test.c ("test-driver-<deviceId>"): `queues` queues
   * (default 1, at most 4) and exactly these callbacks (default none).
   */
  | { driver: 'test_driver'; deviceId: number; queues?: number; callbacks?: readonly VirtioPmCallbackName[] }
  /** A driver of your own, built in with `npm run build:linux -- --driver FILE.c`: its file's name ("my_driver" for my-driver.c). */
  | { driver: 'module'; name: string };

/**
 * What a boot registers without a `drivers` option, in this order: the
 * model's default order (core/drivers: rng, then the clock with the noirq
 * pair before the one without), so the noirq clock driver binds the rtc.
 */
export const LINUX_DEFAULT_DRIVERS: readonly LinuxDriverSpec[] = ['virtio_rng', 'virtio_rtc_noirq', 'virtio_rtc'];

/** The model's driver names (core/drivers/index.ts) and the Linux driver that mirrors each. */
export const LINUX_DRIVER_OF_MODEL: Readonly<Record<string, LinuxDriverName>> = {
  rng: 'virtio_rng',
  rtc: 'virtio_rtc_noirq',
  'rtc-classic': 'virtio_rtc',
};

export interface LinuxBootOptions {
  /** The machine (its bus and its mmio slots); the machine must have been created with ram: memory.buffer. */
  machine?: Machine;
  /** The bus to drive instead of machine.bus (e.g. a tracing wrapper around it). */
  bus?: Bus;
  /**
   * The kernel's memory: guest RAM. Create it with LinuxKernel.createMemory()
   * and hand memory.buffer to Machine.create({ ram }).
   */
  memory: WebAssembly.Memory;
  /**
   * Which windows get a platform device: the machine's occupied mmio slots
   * (default), 'all' of its windows (empty ones probe with -ENODEV as on a
   * board whose device tree lists every window), or an explicit list.
   */
  slots?: 'occupied' | 'all' | readonly LinuxSlot[];
  /** Host deadline for one wait_for_completion*, ms (default 5000). */
  waitTimeoutMs?: number;
  /**
   * The virtio drivers to register after the transport, in this order
   * (default LINUX_DEFAULT_DRIVERS). Each binds the devices it matches that
   * no driver registered before it bound, so the order chooses between two
   * drivers for one device ID, as the model's `drivers` list does.
   */
  drivers?: readonly LinuxDriverSpec[];
}

export interface LinuxMessage extends KernelMessage {
  /** printk level 0 (emerg) .. 7 (debug); level maps 0-3 to err, 4 to warn, 5-7 to info. */
  loglevel: number;
  /** dev_driver_string(): the bound driver, else the bus, for dev_* messages. */
  driver: string | null;
  /** 'host' for the few lines the host adds (a killed wait); absent for printk. */
  origin?: 'host';
}

export interface LinuxWarning extends Omit<KernelWarning, 'kind'> {
  /**
   * 'WARN_ON': WARN_ON/WARN_ON_ONCE/WARN fired; 'sleep-in-atomic':
   * might_sleep() (or a wait) in atomic context or with interrupts off;
   * 'noirq-context': might_sleep() while the host's noirqDepth > 0.
   */
  kind: KernelWarning['kind'] | 'sleep-in-atomic';
  file: string;
  line: number;
  /** WARN(cond, fmt...)'s message, or what the check found. */
  msg: string;
}

export interface LinuxUevent {
  action: string;
  dev: string;
  env: string[];
}

export interface LinuxDevice {
  slot: number;
  /** The platform device: "virtio-mmio.<slot>". */
  transport: string;
  /** Its driver ("virtio-mmio") or null when unbound. */
  transportDriver: string | null;
  /** The virtio device ("virtio0") or null (no device in the window, or the transport unbound). */
  dev: string | null;
  index: number | null;
  deviceId: number;
  vendorId: number;
  /** The bound virtio driver ("virtio_rng") or null. */
  driver: string | null;
  /** Status as Linux reads it (config->get_status(), a trapped read); 0 without a virtio device. */
  status: number;
  /** vdev->features: what was negotiated (all 64 bits). */
  features: bigint;
  /** The registered hwrng ("virtio_rng.0") or null. */
  rng: string | null;
  vqs: number;
  /** The first virtqueue's ring (guest-physical addresses), if any. */
  vq0: { desc: number; avail: number; used: number; size: number } | null;
  /** dev->noirq_state (VIRTIO_NOIRQ_NONE 0, ENTERED 1, RESTORED 2), null without a virtio device. */
  noirqState: number | null;
  /** dev->failed: FAILED as virtio_device_freeze() saw it. */
  failed: boolean;
  /** dev->config_core_enabled: config change interrupts reach the driver. */
  configCoreEnabled: boolean;
}

/** What DpmCore passes to a Linux device's callbacks. */
export interface LinuxPmDev {
  kernel: LinuxKernel;
  slot: number;
  /** The platform device whose dev_pm_ops run: "virtio-mmio.<slot>". */
  transport: string;
  /** Its virtio device at boot: "virtio<index>" (PmDevice.name follows re-probes). */
  vdev: string;
}

/** linux/drivers/virtio_rtc.c's state for a slot. */
export interface LinuxRtcInfo {
  driver: 'virtio_rtc' | 'virtio_rtc_noirq';
  /** The requestq exists (virtio_rtc deletes it in freeze()). */
  hasVq: boolean;
  /** Between freeze() and the restore that brings the clock back. */
  frozen: boolean;
  numClocks: number;
  clock0Type: number;
  /** The reading taken when the clock came back from sleep, or null. */
  resumeReading: bigint | null;
  stats: { requests: number; completed: number; errors: number; polled: number };
}

/** linux/drivers/lx-pm-test.c's counters. */
export interface LinuxPmTestInfo {
  bound: boolean;
  /** Probes and removes of the driver so far (any slot). */
  probes: number;
  removes: number;
  configChanges: number;
  /** Virtqueue callbacks per queue. */
  callbacks: number[];
}

/**
 * What the PM core (core/pm/dpm.ts) needs of a kernel: the noirq depth its
 * suspend_device_irqs() keeps, which the might_sleep() hook reads, and a
 * log for failed callbacks (added to the kernel's log, origin 'host').
 */
class LinuxPmContext implements DpmKernel {
  noirqDepth = 0;
  constructor(private readonly sink: LinuxMessage[]) {}

  log(level: LogLevel, target: LogTarget | null, msg: string): void {
    const loglevel = level === 'err' ? 3 : level === 'warn' ? 4 : 6;
    this.sink.push({ level, loglevel, dev: target?.name ?? 'kernel', driver: null, origin: 'host', msg });
  }
}

export interface LinuxMemStats {
  ramSize: number;
  /** Virtual (= wasm) address where the heap starts (__heap_base, page aligned). */
  heapStart: number;
  heapEnd: number;
  pagesTotal: number;
  pagesFree: number;
  slabPages: number;
  kmallocLive: number;
  kmallocBytes: number;
  pageAllocs: number;
  allocFailures: number;
}

interface LinuxExports {
  lx_boot(lines: number): number;
  lx_platform_add(slot: number, base: number, size: number, line: number): number;
  lx_initcalls(): number;
  lx_slot_info(slot: number): number;
  lx_slot_vdev_name(slot: number): number;
  lx_unbind(slot: number): number;
  lx_bind(slot: number): number;
  lx_virtio_unbind(slot: number): number;
  lx_virtio_bind(slot: number): number;
  lx_slot_rng(slot: number): number;
  lx_sysfs_show(slot: number, name: number, buf: number): number;
  lx_alloc(size: number): number;
  lx_free(p: number): void;
  lx_alloc_page(): number;
  lx_free_page(p: number): void;
  lx_hwrng_read(rng: number, buf: number, size: number, wait: number): number;
  lx_irq_entry(line: number): number;
  lx_mm_stats(): number;
  lx_test_bug(): void;
  lx_test_warn(cond: number): number;
  lx_test_check_feature(slot: number, fbit: number): number;
  lx_test_sleep_in_atomic(): void;
  lx_test_spin_recursion(): void;
  lx_test_config_ops(slot: number, drop: number): number;
  lx_driver_register(name: number): number;
  lx_clock_consumer_setup(deviceId: number, clock: number): number;
  lx_pm_test_setup(deviceId: number, nvqs: number, cbs: number): number;
  lx_pm_test_info(slot: number): number;
  lx_pm_ops(slot: number): number;
  lx_pm_call(slot: number, cb: number): number;
  lx_device_shutdown(slot: number): void;
  lx_rtc_info(slot: number): number;
  lx_rtc_read(slot: number, clockId: number, ns: number): number;
  lx_clock_read(name: number, ns: number): number;
  lx_clock_consumer_reads(slot: number, buf: number, max: number): number;
}

// linux/drivers/lx-pm-test.c LX_PM_TEST_*, linux/drivers/lx-test.c LX_TEST_*
const PM_TEST_CALLBACK_BITS: Record<VirtioPmCallbackName, number> = { freeze: 1, restore: 2, freeze_noirq: 4, restore_noirq: 8 };
const TEST_NO_RESET_VQS = 1;
const TEST_NOT_NOIRQ_SAFE = 2;
/** linux/drivers/clock-consumer.c CLOCK_CONSUMER_MAX_READS */
const CLOCK_CONSUMER_MAX_READS = 64;

// linux/glue/lx.h
const WARN_SLEEP_ATOMIC = 1;
const BUG_PANIC = 1;
const WAIT_UNINTERRUPTIBLE = 0;
const WAIT_KILLABLE = 1;
const WAIT_DONE = 0;
const WAIT_TIMEOUT = 1;
const WAIT_KILLED = 2;

/**
 * Memories a kernel was instantiated over. A shared memory's data segments
 * are initialised once (wasm-ld's __wasm_init_memory keeps a flag in it),
 * so a second instance over the same RAM would start from the first one's
 * .data and .bss: one kernel per memory, unless the memory was zeroed
 * since (power loss), which clears the flag: a new instance then
 * initialises .data and .bss again.
 */
const usedMemories = new WeakSet<object>();

function allZero(buf: SharedArrayBuffer): boolean {
  const w = new Int32Array(buf, 0, buf.byteLength >>> 2);
  for (let i = 0; i < w.length; i++) if (w[i] !== 0) return false;
  return true;
}

function logLevel(loglevel: number): LogLevel {
  return loglevel <= 3 ? 'err' : loglevel === 4 ? 'warn' : 'info';
}

/** The slots a machine's kernel gets platform devices for. */
export function machineSlots(machine: Machine, which: 'occupied' | 'all' = 'occupied'): LinuxSlot[] {
  if (which === 'all') {
    return Array.from({ length: machine.config.slots }, (_, slot) => ({ slot, addr: machine.slotAddr(slot), line: slot }));
  }
  // virtio-ccw devices have no mmio window: Linux's virtio_ccw is not built.
  return machine.devices.filter((d) => d.spec.transport !== 'ccw').map((d) => ({ slot: d.slot, addr: d.addr, line: d.line }));
}

export class LinuxKernel {
  /** Everything printk/dev_printk printed, in order. */
  readonly log: LinuxMessage[] = keepOutOfImage([]);
  /** WARN_ON and might_sleep findings, as data. */
  readonly warnings: LinuxWarning[] = keepOutOfImage([]);
  readonly uevents: LinuxUevent[] = keepOutOfImage([]);
  /** might_sleep() calls per site ("file:line func"). */
  readonly mightSleep = keepOutOfImage(new Map<string, number>());
  /** The PM core's view of this kernel: give it to DpmCore({ kernel }). */
  readonly pm: DpmKernel;
  /** Host deadline for one wait, ms. */
  waitTimeoutMs: number;
  readonly slots: readonly LinuxSlot[];
  /** The drivers registered at boot, in order. */
  readonly drivers: readonly LinuxDriverSpec[];

  private readonly u8: Uint8Array;
  private readonly i32: Int32Array;
  private readonly view: DataView;
  private ex!: LinuxExports;
  private death: unknown = null;
  private readonly lineHandlers = new Map<number, IrqHandler>();
  /** disconnectIrqs() ran: the controller does not reach this instance. */
  private irqsDisconnected = false;
  /** The hw_random core's leftover rng_buffer bytes, per slot. */
  private readonly rngLeft = new Map<number, Uint8Array>();
  private readonly nap = new Int32Array(new SharedArrayBuffer(4));

  private constructor(
    readonly bus: Bus,
    readonly memory: WebAssembly.Memory,
    slots: readonly LinuxSlot[],
    waitTimeoutMs: number,
    drivers: readonly LinuxDriverSpec[],
  ) {
    // The host object is not kernel memory; imageRoots() says what of it is.
    keepOutOfImage(this);
    const buf = memory.buffer as unknown as SharedArrayBuffer;
    this.u8 = new Uint8Array(buf);
    this.i32 = new Int32Array(buf);
    this.view = new DataView(buf);
    this.slots = slots;
    this.waitTimeoutMs = waitTimeoutMs;
    this.drivers = drivers;
    this.pm = new LinuxPmContext(this.log);
  }

  /** The shared memory a kernel needs (guest RAM), sized as the module was linked. */
  static async createMemory(): Promise<WebAssembly.Memory> {
    const { memory } = await loadLinuxModule();
    return createLinuxMemory(memory);
  }

  /** The module's memory import (its size is the build's RAM size). */
  static async memoryImport(): Promise<MemoryImport> {
    return (await loadLinuxModule()).memory;
  }

  /**
   * Instantiate the kernel over `memory`, start its services and the virtio
   * bus, create one platform device per slot, run the transport's initcall
   * (virtio-mmio probes them and registers their virtio devices), then
   * register the virtio drivers in order (opts.drivers), each binding what
   * it matches: the order of a board whose devices exist before the drivers
   * load.
   */
  static async boot(opts: LinuxBootOptions): Promise<LinuxKernel> {
    return LinuxKernel.start(await loadLinuxModule(), opts);
  }

  /**
   * The same, synchronously: for a kernel that boots in the middle of a
   * synchronous transition (the hibernation boot kernel, on the memory the
   * power loss zeroed).
   */
  static bootSync(opts: LinuxBootOptions): LinuxKernel {
    return LinuxKernel.start(loadLinuxModuleSync(), opts);
  }

  private static start(loaded: { module: WebAssembly.Module; memory: MemoryImport }, opts: LinuxBootOptions): LinuxKernel {
    const bus = opts.bus ?? opts.machine?.bus;
    if (!bus) throw new TypeError('LinuxKernel.boot: give a machine or a bus');
    const memory = opts.memory;
    const ram = memory.buffer as unknown;
    if (!(ram instanceof SharedArrayBuffer)) throw new TypeError('LinuxKernel.boot: memory must be shared');
    if (bus.mem.u8.buffer !== ram) {
      throw new Error("LinuxKernel.boot: the bus's guest RAM is not this kernel's memory: create the machine with { ram: memory.buffer }");
    }
    if (bus.mem.base !== PLATFORM.RAM_BASE || bus.mem.size !== ram.byteLength) {
      throw new Error(`LinuxKernel.boot: guest RAM must start at 0x${PLATFORM.RAM_BASE.toString(16)} and span the whole memory`);
    }
    let slots: readonly LinuxSlot[];
    if (Array.isArray(opts.slots)) slots = opts.slots as readonly LinuxSlot[];
    else if (opts.machine) slots = machineSlots(opts.machine, (opts.slots as 'occupied' | 'all' | undefined) ?? 'occupied');
    else throw new TypeError('LinuxKernel.boot: without a machine, give the slots');
    const { module, memory: imp } = loaded;
    if (ram.byteLength !== imp.initial * 65536) {
      throw new Error(`LinuxKernel.boot: the module was linked for ${imp.initial * 64} KiB of RAM, the memory has ${ram.byteLength / 1024} KiB`);
    }
    if (usedMemories.has(ram) && !allZero(ram)) {
      throw new Error('LinuxKernel.boot: this memory already held a kernel; create a new memory (and machine) per boot, or zero it (power loss)');
    }
    for (const s of slots) {
      if (!Number.isInteger(s.line) || s.line < 0 || s.line >= bus.irq.lines) throw new RangeError(`slot ${s.slot}: irq line ${s.line} out of range`);
    }
    const drivers = opts.drivers ?? LINUX_DEFAULT_DRIVERS;
    const k = new LinuxKernel(bus, memory, slots, opts.waitTimeoutMs ?? 5000, drivers);
    usedMemories.add(ram);
    const instance = new WebAssembly.Instance(module, { env: { memory }, lx: k.imports() });
    k.ex = k.guard(instance.exports);
    k.call(() => {
      const r = k.ex.lx_boot(bus.irq.lines);
      if (r !== 0) throw new LinuxCallError('lx_boot', r);
      for (const s of slots) {
        const e = k.ex.lx_platform_add(s.slot, s.addr, s.size ?? MMIO_WINDOW_SIZE, s.line);
        if (e !== 0) throw new LinuxCallError(`platform device for slot ${s.slot}`, e);
      }
      const e = k.ex.lx_initcalls();
      if (e !== 0) throw new LinuxCallError('device initcalls', e);
      for (const d of drivers) k.registerDriver(d);
    });
    return k;
  }

  private registerDriver(d: LinuxDriverSpec): void {
    let name: string;
    if (typeof d === 'string') name = d;
    else if (d.driver === 'clock_consumer') {
      name = d.driver;
      const e = this.withString(d.clock, (p) => this.ex.lx_clock_consumer_setup(d.deviceId, p));
      if (e !== 0) throw new LinuxCallError(`clock_consumer setup (device ${d.deviceId}, clock ${d.clock})`, e);
    } else if (d.driver === 'test_driver') {
      name = d.driver;
      let cbs = 0;
      for (const c of d.callbacks ?? []) cbs |= PM_TEST_CALLBACK_BITS[c];
      const e = this.ex.lx_pm_test_setup(d.deviceId, d.queues ?? 1, cbs);
      if (e !== 0) throw new LinuxCallError(`test_driver setup (device ${d.deviceId})`, e);
    } else if (d.driver === 'module') name = d.name;
    else throw new TypeError(`unknown driver ${JSON.stringify(d)}`);
    const e = this.withString(name, (p) => this.ex.lx_driver_register(p));
    // -ENOENT: no driver of that name in this build.
    if (e === -2) throw new Error(`no driver ${name} in this Linux build (build one in with: ${BUILD_COMMAND} -- --driver FILE.c)`);
    if (e !== 0) throw new LinuxCallError(`registering driver ${name}`, e);
  }

  /** True once a BUG, panic, hang or bus error ended this instance (or close()). */
  get dead(): boolean {
    return this.death !== null;
  }

  /** What ended it. */
  get deathCause(): unknown {
    return this.death;
  }

  /**
   * The depth of noirq phases in progress (the PM core's, this.pm): while
   * it is above 0, might_sleep() records a 'noirq-context' warning.
   */
  get noirqDepth(): number {
    return this.pm.noirqDepth;
  }

  set noirqDepth(n: number) {
    this.pm.noirqDepth = n;
  }

  // ---- queries -----------------------------------------------------------

  /** Every slot's platform device and virtio device, as Linux sees them now. */
  devices(): LinuxDevice[] {
    return this.slots.map((s) => this.device(s.slot)!);
  }

  /** One slot (undefined if the kernel has no platform device there). */
  device(slot: number): LinuxDevice | undefined {
    return this.call(() => {
      const p = this.ex.lx_slot_info(slot);
      const w = (i: number): number => this.view.getUint32(p + 4 * i, true);
      if (!w(0)) return undefined;
      const hasVdev = w(2) !== 0;
      const phys = (lo: number, hi: number): number => w(hi) * 2 ** 32 + w(lo);
      return {
        slot,
        transport: this.str(w(21))!,
        transportDriver: this.str(w(22)),
        dev: hasVdev ? this.str(w(9)) : null,
        index: hasVdev ? this.view.getInt32(p + 12, true) : null,
        deviceId: w(4),
        vendorId: w(5),
        driver: this.str(w(10)),
        status: w(6),
        features: (BigInt(w(8)) << 32n) | BigInt(w(7)),
        rng: this.str(w(12)),
        vqs: w(13),
        vq0: w(13) ? { desc: phys(14, 15), avail: phys(16, 17), used: phys(18, 19), size: w(20) } : null,
        noirqState: hasVdev ? this.view.getInt32(p + 4 * 23, true) : null,
        failed: w(24) !== 0,
        configCoreEnabled: w(25) !== 0,
      };
    });
  }

  /** A virtio device attribute as /sys/bus/virtio/devices/virtioN/<attr> shows it (virtio.c's show functions). */
  sysfs(slot: number, attr: 'device' | 'vendor' | 'status' | 'modalias' | 'features'): string {
    return this.call(() => {
      const page = this.ex.lx_alloc_page();
      const name = this.ex.lx_alloc(attr.length + 1);
      if (!page || !name) throw new LinuxCallError('sysfs buffer', -12);
      try {
        this.u8.set(Buffer.from(`${attr}\0`, 'latin1'), name);
        const n = this.ex.lx_sysfs_show(slot, name, page);
        if (n < 0) throw new LinuxCallError(`sysfs ${attr} of slot ${slot}`, n);
        return Buffer.from(this.u8.slice(page, page + n)).toString('latin1');
      } finally {
        if (!this.death) {
          this.ex.lx_free(name);
          this.ex.lx_free_page(page);
        }
      }
    });
  }

  memStats(): LinuxMemStats {
    return this.call(() => {
      const p = this.ex.lx_mm_stats();
      const w = (i: number): number => this.view.getUint32(p + 4 * i, true);
      return {
        ramSize: w(0),
        heapStart: w(1),
        heapEnd: w(2),
        pagesTotal: w(3),
        pagesFree: w(4),
        slabPages: w(5),
        kmallocLive: w(6),
        kmallocBytes: w(7),
        pageAllocs: w(8),
        allocFailures: w(9),
      };
    });
  }

  /** dev->noirq_state of the slot's virtio device (VIRTIO_NOIRQ_*), or null. */
  noirqState(slot: number): number | null {
    return this.device(slot)?.noirqState ?? null;
  }

  /** linux/drivers/virtio_rtc.c's state, or null when neither rtc driver is bound. */
  rtc(slot: number): LinuxRtcInfo | null {
    return this.call(() => {
      const p = this.ex.lx_rtc_info(slot);
      const w = (i: number): number => this.view.getUint32(p + 4 * i, true);
      if (!w(0)) return null;
      return {
        driver: w(0) === 1 ? 'virtio_rtc' : 'virtio_rtc_noirq',
        hasVq: w(1) !== 0,
        frozen: w(2) !== 0,
        numClocks: w(3),
        resumeReading: w(4) ? (BigInt(w(6)) << 32n) | BigInt(w(5)) : null,
        stats: { requests: w(7), completed: w(8), errors: w(9), polled: w(10) },
        clock0Type: w(11),
      };
    });
  }

  /** A reading of the slot's clock (ns), or -errno (-EAGAIN while frozen, -ENODEV without an rtc driver). */
  rtcRead(slot: number, clockId = 0): bigint | number {
    return this.call(() => this.withBuffer(8, (out) => this.u64Result(this.ex.lx_rtc_read(slot, clockId, out), out)));
  }

  /** A clock by name as another driver reads it ("rtc1.0"): ns, or -errno (-ENODEV: no such clock). */
  clockRead(name: string): bigint | number {
    return this.call(() => this.withBuffer(8, (out) => this.withString(name, (p) => this.u64Result(this.ex.lx_clock_read(p, out), out))));
  }

  /** The clock reads the slot's clock_consumer made in restore(): ns, or -errno; null if it is not bound there. */
  clockConsumerReads(slot: number): (bigint | number)[] | null {
    return this.call(() =>
      this.withBuffer(16 * CLOCK_CONSUMER_MAX_READS, (buf) => {
        const n = this.ex.lx_clock_consumer_reads(slot, buf, CLOCK_CONSUMER_MAX_READS);
        if (n < 0) return null;
        const out: (bigint | number)[] = [];
        for (let i = 0; i < Math.min(n, CLOCK_CONSUMER_MAX_READS); i++) {
          const err = this.view.getInt32(buf + 16 * i, true);
          out.push(err ? err : this.view.getBigUint64(buf + 16 * i + 8, true));
        }
        return out;
      }),
    );
  }

  // ---- PM: the dev_pm_ops of the slots' platform devices ----------------

  /** The dev_pm_ops callbacks the slot's platform driver has (none when unbound), in PM_CALLBACKS order. */
  pmOps(slot: number): PmCallbackName[] {
    const mask = this.call(() => this.ex.lx_pm_ops(slot));
    return PM_CALLBACKS.filter((_, i) => mask & (1 << i));
  }

  /**
   * Run one dev_pm_ops callback of the slot's platform driver (virtio-mmio's
   * virtio_mmio_pm_ops after patch 0003) on its platform device, as
   * dpm_run_callback() does; returns its int (0 for complete). -ENOENT for a
   * callback the driver lacks, -ENODEV when unbound.
   */
  pmCall(slot: number, callback: PmCallbackName): number {
    const cb = PM_CALLBACKS.indexOf(callback);
    if (cb < 0) throw new RangeError(`unknown PM callback ${callback}`);
    return this.call(() => this.ex.lx_pm_call(slot, cb));
  }

  /**
   * The devices for a DpmCore (core/pm/dpm.ts), in slot order (the order
   * their platform devices were added, which is dpm_list's): every slot
   * with a virtio device, named after it ("virtio0", as the model names its
   * devices; a getter, so a re-probe's new name shows), with its
   * interrupt line. `ops` has exactly the callbacks the
   * platform driver has at the moment DpmCore looks (each property is a
   * getter), so absent callbacks are absent, as Linux's dpm skips them.
   */
  pmDevices(): PmDevice<LinuxPmDev>[] {
    const out: PmDevice<LinuxPmDev>[] = [];
    for (const s of this.slots) {
      // No trapped access here (lx_slot_info would read Status).
      const vdevName = (): string | null => (this.death ? null : this.str(this.ex.lx_slot_vdev_name(s.slot)));
      const first = this.call(vdevName);
      if (!first) continue;
      const transport = `virtio-mmio.${s.slot}`;
      const dev: LinuxPmDev = keepOutOfImage({ kernel: this, slot: s.slot, transport, vdev: first });
      const pd: PmDevice<LinuxPmDev> = {
        name: first,
        dev,
        ops: this.liveOps(s.slot),
        irqLine: s.line,
        slot: s.slot,
        // kernel_power_off()'s device_shutdown(): the virtio device's bus shutdown (virtio_dev_shutdown), then the platform device's.
        shutdown: () => this.call(() => this.ex.lx_device_shutdown(s.slot)),
      };
      // The platform device stays on dpm_list across an unbind or re-probe; its virtio child's name may change.
      Object.defineProperty(pd, 'name', { enumerable: true, get: () => vdevName() ?? dev.vdev });
      out.push(keepOutOfImage(pd));
    }
    return out;
  }

  private liveOps(slot: number): DevPmOps<LinuxPmDev> {
    const ops: DevPmOps<LinuxPmDev> = keepOutOfImage({});
    PM_CALLBACKS.forEach((name, i) => {
      const fn = (): number => this.pmCall(slot, name);
      Object.defineProperty(ops, name, {
        enumerable: true,
        get: () => (!this.death && this.ex.lx_pm_ops(slot) & (1 << i) ? fn : undefined),
      });
    });
    return ops;
  }

  /**
   * Host-side state that is kernel memory and so belongs in a hibernation
   * image next to guest RAM: the PM core's noirq depth (this.pm) and the
   * hw_random core's leftover bytes. Logs, warnings and the wiring to the
   * interrupt controller are not (they are observations and hardware).
   */
  imageRoots(): object[] {
    return [this.pm, this.rngLeft];
  }

  /**
   * Power loss: the interrupt controller no longer reaches this instance
   * (its handlers leave the controller; what the kernel requested is kept).
   */
  disconnectIrqs(): void {
    if (this.irqsDisconnected) return;
    this.irqsDisconnected = true;
    for (const [line, h] of this.lineHandlers) this.bus.irq.free(line, h);
  }

  /** The jump back into this instance's image: its handlers are on the controller again. */
  reconnectIrqs(): void {
    if (!this.irqsDisconnected) return;
    this.irqsDisconnected = false;
    if (this.death) return;
    for (const [line, h] of this.lineHandlers) this.bus.irq.request(line, h);
  }

  // ---- actions -----------------------------------------------------------

  /**
   * Read n bytes from the slot's hwrng as the hw_random core's /dev/hwrng
   * read does: the rng's read() always for rng_buffer_size() bytes
   * (RNG_BUFFER_SIZE), what the caller does not take kept for the next
   * read. Blocks unless wait is false (then what is available now,
   * possibly fewer than n bytes).
   */
  rngRead(slot: number, n: number, opts: { wait?: boolean } = {}): Uint8Array {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`rngRead: bad length ${n}`);
    const wait = opts.wait ?? true;
    return this.call(() => {
      const out = new Uint8Array(n);
      let got = 0;
      const left = this.rngLeft.get(slot);
      if (left) {
        const take = Math.min(left.length, n);
        out.set(left.subarray(0, take));
        got = take;
        if (take < left.length) this.rngLeft.set(slot, left.slice(take));
        else this.rngLeft.delete(slot);
      }
      let empty = 0;
      while (got < n) {
        const chunk = this.hwrngRead(slot, RNG_BUFFER_SIZE, wait);
        if (chunk.length === 0) {
          if (!wait) break;
          // virtio_read() returns 0 when a cleanup interrupted it; the core reads again.
          if (++empty > 16) throw new Error(`rngRead: slot ${slot} returned no data ${empty} times in a row`);
          continue;
        }
        empty = 0;
        const take = Math.min(chunk.length, n - got);
        out.set(chunk.subarray(0, take), got);
        got += take;
        if (take < chunk.length) this.rngLeft.set(slot, chunk.slice(take));
      }
      return got === n ? out : out.slice(0, got);
    });
  }

  /**
   * One call of the slot's hwrng read(rng, buf, size, wait), as the core's
   * rng_get_data() makes it (init on first use): the bytes it returned.
   */
  hwrngRead(slot: number, size: number, wait: boolean): Uint8Array {
    if (!Number.isInteger(size) || size < 0) throw new RangeError(`hwrngRead: bad size ${size}`);
    return this.call(() => {
      const rng = this.ex.lx_slot_rng(slot);
      if (!rng) throw new Error(`slot ${slot} has no registered hwrng`);
      const buf = this.ex.lx_alloc(Math.max(size, 1));
      if (!buf) throw new LinuxCallError('hwrng buffer', -12);
      try {
        const r = this.ex.lx_hwrng_read(rng, buf, size, wait ? 1 : 0);
        if (r < 0) throw new LinuxCallError(`hwrng read from slot ${slot}`, r);
        return this.u8.slice(buf, buf + r);
      } finally {
        if (!this.death) this.ex.lx_free(buf);
      }
    });
  }

  /** Unbind the transport (virtio-mmio) from the slot's platform device: its virtio device is unregistered. */
  remove(slot: number): void {
    this.rngLeft.delete(slot);
    this.call(() => {
      const r = this.ex.lx_unbind(slot);
      if (r < 0) throw new LinuxCallError(`remove slot ${slot}`, r);
    });
  }

  /** Bind a driver to the slot's platform device again (probe); true if one bound. */
  probe(slot: number): boolean {
    this.rngLeft.delete(slot);
    return this.call(() => {
      const r = this.ex.lx_bind(slot);
      if (r < 0) throw new LinuxCallError(`probe slot ${slot}`, r);
      return r === 1;
    });
  }

  /** Unbind the virtio driver (virtio_rng) from the slot's virtio device; the device stays. */
  unbindDriver(slot: number): void {
    this.rngLeft.delete(slot);
    this.call(() => {
      const r = this.ex.lx_virtio_unbind(slot);
      if (r < 0) throw new LinuxCallError(`unbind the driver of slot ${slot}`, r);
    });
  }

  /** Match and probe the slot's virtio device again; true if a driver bound. */
  bindDriver(slot: number): boolean {
    this.rngLeft.delete(slot);
    return this.call(() => {
      const r = this.ex.lx_virtio_bind(slot);
      if (r < 0) throw new LinuxCallError(`bind a driver to slot ${slot}`, r);
      return r === 1;
    });
  }

  /** Hooks into linux/drivers/lx-test.c (test-only code paths). */
  readonly test = {
    /** A BUG() in linux/drivers/lx-test.c. */
    bug: (): void => this.call(() => this.ex.lx_test_bug()),
    /** WARN_ON(cond) and WARN_ON_ONCE(cond); returns how many fired. */
    warn: (cond: boolean): number => this.call(() => this.ex.lx_test_warn(cond ? 1 : 0)),
    /** virtio_check_driver_offered_feature(vdev, fbit): virtio.c BUG()s for a feature the driver did not offer. */
    checkFeature: (slot: number, fbit: number): number => this.call(() => this.ex.lx_test_check_feature(slot, fbit)),
    /** might_sleep() inside spin_lock_irqsave(). */
    sleepInAtomic: (): void => this.call(() => this.ex.lx_test_sleep_in_atomic()),
    /** spin_lock() twice on one lock. */
    spinRecursion: (): void => this.call(() => this.ex.lx_test_spin_recursion()),
    /**
     * Point the slot's vdev->config at a copy of virtio-mmio's config ops
     * without reset_vqs and/or with noirq_safe false (a transport as it was
     * before the series); with neither, the transport's own ops again.
     */
    configOps: (slot: number, drop: { resetVqs?: boolean; noirqSafe?: boolean }): void => {
      const mask = (drop.resetVqs ? TEST_NO_RESET_VQS : 0) | (drop.noirqSafe ? TEST_NOT_NOIRQ_SAFE : 0);
      const r = this.call(() => this.ex.lx_test_config_ops(slot, mask));
      if (r !== 0) throw new LinuxCallError(`test config ops of slot ${slot}`, r);
    },
    /** linux/drivers/lx-pm-test.c's counters for the slot. */
    pmTestInfo: (slot: number): LinuxPmTestInfo =>
      this.call(() => {
        const p = this.ex.lx_pm_test_info(slot);
        const w = (i: number): number => this.view.getUint32(p + 4 * i, true);
        return { bound: w(0) !== 0, probes: w(1), removes: w(2), configChanges: w(3), callbacks: [w(4), w(5), w(6), w(7)] };
      }),
  };

  /**
   * Stop this kernel: its interrupt handlers leave the controller and every
   * later call refuses. Devices are left as they are (no remove, no reset).
   */
  close(reason: unknown = new Error('closed')): void {
    if (!this.death) this.kill(reason);
  }

  // ---- plumbing ----------------------------------------------------------

  /** Host-side work that calls into the instance: refused once it is dead. */
  private call<T>(fn: () => T): T {
    if (this.death) throw new LinuxDeadError(this.death);
    return fn();
  }

  /**
   * The instance's exports, each guarded: refused when dead, and any
   * exception that unwinds a wasm call (BUG, panic, hang, a BusError from a
   * trapped access, a wasm trap) kills the instance, since it left the C
   * state in the middle of something.
   */
  private guard(exports: WebAssembly.Exports): LinuxExports {
    const out: Record<string, unknown> = {};
    for (const [name, f] of Object.entries(exports)) {
      if (typeof f !== 'function') continue;
      const fn = f as (...a: number[]) => number;
      out[name] = (...args: number[]): number => {
        if (this.death) throw new LinuxDeadError(this.death);
        try {
          return fn(...args);
        } catch (e) {
          this.kill(e);
          throw e;
        }
      };
    }
    return out as unknown as LinuxExports;
  }

  private kill(reason: unknown): void {
    if (this.death) return;
    this.death = reason;
    if (this.irqsDisconnected) this.lineHandlers.clear();
    for (const [line, h] of this.lineHandlers) {
      try {
        this.bus.irq.free(line, h);
      } catch {
        // the controller may be gone with its machine
      }
    }
    this.lineHandlers.clear();
  }

  /** Run fn with a NUL-terminated copy of s in kernel memory. */
  private withString<T>(s: string, fn: (p: number) => T): T {
    const bytes = Buffer.from(`${s}\0`, 'utf8');
    return this.withBuffer(bytes.length, (p) => {
      this.u8.set(bytes, p);
      return fn(p);
    });
  }

  /** Run fn with a zeroed kmalloc'd buffer of n bytes, freed after. */
  private withBuffer<T>(n: number, fn: (p: number) => T): T {
    const p = this.ex.lx_alloc(Math.max(n, 1));
    if (!p) throw new LinuxCallError('host buffer', -12);
    this.u8.fill(0, p, p + n);
    try {
      return fn(p);
    } finally {
      if (!this.death) this.ex.lx_free(p);
    }
  }

  /** An int result with a u64 out parameter: the value, or the -errno. */
  private u64Result(r: number, out: number): bigint | number {
    return r < 0 ? r : this.view.getBigUint64(out, true);
  }

  private str(p: number): string | null {
    if (!p) return null;
    const end = this.u8.indexOf(0, p);
    return Buffer.from(this.u8.slice(p, end < 0 ? p : end)).toString('utf8');
  }

  private text(p: number, len: number): string {
    return Buffer.from(this.u8.slice(p, p + len)).toString('utf8');
  }

  private onIrq(line: number): IrqReturn {
    if (this.death) return IRQ_NONE;
    return this.call(() => (this.ex.lx_irq_entry(line) & IRQ_HANDLED ? IRQ_HANDLED : IRQ_NONE));
  }

  private imports(): Record<string, WasmImport> {
    return {
      mmio_read: (addr: number, width: number): number => this.bus.read(addr >>> 0, width as AccessWidth),
      mmio_write: (addr: number, width: number, value: number): void => this.bus.write(addr >>> 0, width as AccessWidth, value >>> 0),
      log: (level: number, dev: number, drv: number, msg: number, len: number): void => {
        this.log.push({ level: logLevel(level), loglevel: level, dev: this.str(dev) ?? 'kernel', driver: this.str(drv), msg: this.text(msg, len) });
      },
      warn: (kind: number, file: number, line: number, func: number, cond: number, msg: number, len: number, dev: number): void => {
        this.warnings.push({
          kind: kind === WARN_SLEEP_ATOMIC ? 'sleep-in-atomic' : 'WARN_ON',
          dev: this.str(dev) ?? 'kernel',
          what: this.str(cond) ?? '',
          where: this.str(func) ?? `${this.str(file)}:${line}`,
          file: this.str(file) ?? '?',
          line,
          msg: this.text(msg, len),
        });
      },
      might_sleep: (file: number, line: number, func: number, dev: number): void => {
        const f = this.str(file) ?? '?';
        const fn = this.str(func);
        const key = `${f}:${line}${fn ? ` ${fn}` : ''}`;
        this.mightSleep.set(key, (this.mightSleep.get(key) ?? 0) + 1);
        if (this.noirqDepth > 0) {
          this.warnings.push({ kind: 'noirq-context', dev: this.str(dev) ?? 'kernel', what: 'might_sleep()', where: fn ?? `${f}:${line}`, file: f, line, msg: '' });
        }
      },
      bug: (kind: number, file: number, line: number, func: number, msg: number, len: number): never => {
        throw new LinuxBugError(kind === BUG_PANIC ? 'panic' : 'BUG', this.str(file) ?? '?', line, this.str(func), this.text(msg, len));
      },
      irq_request: (line: number): void => {
        if (this.lineHandlers.has(line)) return;
        const h: IrqHandler = (l) => this.onIrq(l);
        if (!this.irqsDisconnected) this.bus.irq.request(line, h);
        this.lineHandlers.set(line, h);
      },
      irq_free: (line: number): void => {
        const h = this.lineHandlers.get(line);
        if (!h) return;
        this.lineHandlers.delete(line);
        if (!this.irqsDisconnected) this.bus.irq.free(line, h);
      },
      clock_ms: (): number => Math.floor(performance.now()) >>> 0,
      udelay: (us: number): void => void Atomics.wait(this.nap, 0, 0, (us >>> 0) / 1000),
      irq_mask: (line: number): void => this.bus.irq.mask(line),
      irq_unmask: (line: number): void => this.bus.irq.unmask(line),
      wait: (done: number, mode: number, timeoutMs: number, file: number, line: number, func: number): number => this.wait(done, mode, timeoutMs, file, line, func),
      uevent: (action: number, dev: number, env: number, len: number): void => {
        const vars = this.text(env, len).split('\0').filter((s) => s.length > 0);
        this.uevents.push({ action: this.str(action) ?? '?', dev: this.str(dev) ?? '?', env: vars });
      },
    };
  }

  /** lx_host_wait: deliver interrupts until *done != 0, within the caller's timeout and the host's deadline. */
  private wait(done: number, mode: number, timeoutMs: number, file: number, line: number, func: number): number {
    const idx = done >>> 2;
    const start = performance.now();
    const hostDeadline = start + this.waitTimeoutMs;
    const callerDeadline = timeoutMs >= 0 ? start + timeoutMs : Infinity;
    for (;;) {
      if (Atomics.load(this.i32, idx) !== 0) return WAIT_DONE;
      if (this.death) throw new LinuxDeadError(this.death);
      const now = performance.now();
      if (now >= callerDeadline) return WAIT_TIMEOUT;
      if (now >= hostDeadline) {
        const where = `${this.str(file)}:${line}`;
        if (mode === WAIT_UNINTERRUPTIBLE) throw new LinuxHangError(this.str(file) ?? '?', line, this.waitTimeoutMs);
        const how = mode === WAIT_KILLABLE ? 'wait_for_completion_killable' : 'wait_for_completion_interruptible';
        this.log.push({
          level: 'err',
          loglevel: 3,
          dev: 'kernel',
          driver: null,
          origin: 'host',
          msg: `${how} at ${where} (${this.str(func)}): no completion within ${this.waitTimeoutMs} ms; the task is killed (${linuxErrnoName(-512)})`,
        });
        return WAIT_KILLED;
      }
      this.bus.irq.waitAndDeliver(Math.min(callerDeadline, hostDeadline) - now);
    }
  }
}
