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
import type { KernelMessage, KernelWarning, LogLevel } from '../../core/kernel.js';
import { MMIO_WINDOW_SIZE } from '../../core/uapi/mmio.js';
import type { Machine } from '../../emulator/machine.js';
import { LinuxBugError, LinuxCallError, LinuxDeadError, LinuxHangError, linuxErrnoName } from './errors.js';
import { createLinuxMemory, loadLinuxModule, type MemoryImport } from './module.js';

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
}

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
 * .data and .bss: one kernel per memory.
 */
const usedMemories = new WeakSet<object>();

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
  readonly log: LinuxMessage[] = [];
  /** WARN_ON and might_sleep findings, as data. */
  readonly warnings: LinuxWarning[] = [];
  readonly uevents: LinuxUevent[] = [];
  /** might_sleep() calls per site ("file:line func"). */
  readonly mightSleep = new Map<string, number>();
  /** Set by a PM driver around noirq phases: might_sleep() then records a 'noirq-context' warning. */
  noirqDepth = 0;
  /** Host deadline for one wait, ms. */
  waitTimeoutMs: number;
  readonly slots: readonly LinuxSlot[];

  private readonly u8: Uint8Array;
  private readonly i32: Int32Array;
  private readonly view: DataView;
  private ex!: LinuxExports;
  private death: unknown = null;
  private readonly lineHandlers = new Map<number, IrqHandler>();
  /** The hw_random core's leftover rng_buffer bytes, per slot. */
  private readonly rngLeft = new Map<number, Uint8Array>();

  private constructor(
    readonly bus: Bus,
    readonly memory: WebAssembly.Memory,
    slots: readonly LinuxSlot[],
    waitTimeoutMs: number,
  ) {
    const buf = memory.buffer as unknown as SharedArrayBuffer;
    this.u8 = new Uint8Array(buf);
    this.i32 = new Int32Array(buf);
    this.view = new DataView(buf);
    this.slots = slots;
    this.waitTimeoutMs = waitTimeoutMs;
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
   * bus, create one platform device per slot, then run the device
   * initcalls (virtio-mmio, virtio-rng), which probe them: the order of a
   * board whose devices exist before the drivers load.
   */
  static async boot(opts: LinuxBootOptions): Promise<LinuxKernel> {
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
    const { module, memory: imp } = await loadLinuxModule();
    if (ram.byteLength !== imp.initial * 65536) {
      throw new Error(`LinuxKernel.boot: the module was linked for ${imp.initial * 64} KiB of RAM, the memory has ${ram.byteLength / 1024} KiB`);
    }
    if (usedMemories.has(ram)) throw new Error('LinuxKernel.boot: this memory already held a kernel; create a new memory (and machine) per boot');
    for (const s of slots) {
      if (!Number.isInteger(s.line) || s.line < 0 || s.line >= bus.irq.lines) throw new RangeError(`slot ${s.slot}: irq line ${s.line} out of range`);
    }
    const k = new LinuxKernel(bus, memory, slots, opts.waitTimeoutMs ?? 5000);
    usedMemories.add(ram);
    const instance = await WebAssembly.instantiate(module, { env: { memory }, lx: k.imports() });
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
    });
    return k;
  }

  /** True once a BUG, panic, hang or bus error ended this instance (or close()). */
  get dead(): boolean {
    return this.death !== null;
  }

  /** What ended it. */
  get deathCause(): unknown {
    return this.death;
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
  };

  /**
   * Stop this kernel: its interrupt handlers leave the controller and every
   * later call refuses. Devices are left as they are (no remove, no reset).
   */
  close(): void {
    if (!this.death) this.kill(new Error('closed'));
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
    for (const [line, h] of this.lineHandlers) {
      try {
        this.bus.irq.free(line, h);
      } catch {
        // the controller may be gone with its machine
      }
    }
    this.lineHandlers.clear();
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
        this.bus.irq.request(line, h);
        this.lineHandlers.set(line, h);
      },
      irq_free: (line: number): void => {
        const h = this.lineHandlers.get(line);
        if (!h) return;
        this.lineHandlers.delete(line);
        this.bus.irq.free(line, h);
      },
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
