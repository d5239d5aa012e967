// The driver side's view of the machine: trapped register accesses, guest
// memory for DMA, and interrupt lines. Transports use only this interface;
// emulator/ provides the implementations (worker-backed SharedArrayBuffer
// bus, in-thread bus).

/**
 * Register accesses are at most 32 bits wide: virtio-mmio's registers are
 * 32-bit, and a driver reads and writes a 64-bit config field as two 32-bit
 * accesses (virtio 1.2, 4.2.2.2). A 64-bit access is read64()/write64().
 */
export type AccessWidth = 1 | 2 | 4;

/** Guest-physical memory as the driver sees it for DMA (vrings, buffers). */
export interface GuestMemory {
  /** Guest-physical address of the first byte. */
  readonly base: number;
  readonly size: number;
  /** The whole RAM; index = guest-physical address - base. */
  readonly u8: Uint8Array;
  readonly view: DataView;
}

/** Linux irqreturn_t */
export const IRQ_NONE = 0;
export const IRQ_HANDLED = 1;
export type IrqReturn = typeof IRQ_NONE | typeof IRQ_HANDLED;

export type IrqHandler = (line: number) => IrqReturn;

/**
 * The interrupt controller, driver side. Lines are level-triggered with a
 * pending latch; a masked line keeps latching and is delivered on unmask.
 * Handlers run on the caller's thread: from deliverPending(), from a
 * synchronous wait, or from the event loop when auto delivery is on.
 */
export interface IrqChip {
  readonly lines: number;
  /** request_irq(); IRQF_SHARED: several handlers may share a line. */
  request(line: number, handler: IrqHandler): void;
  /** free_irq() */
  free(line: number, handler: IrqHandler): void;
  /** disable_irq_nosync(): the line keeps latching but is not delivered. */
  mask(line: number): void;
  /** enable_irq(): delivers what latched meanwhile on the next delivery. */
  unmask(line: number): void;
  isMasked(line: number): boolean;
  /** The line is asserted or latched (whether masked or not). */
  isPending(line: number): boolean;
  /** Deliver every pending unmasked line once; returns how many were delivered. */
  deliverPending(): number;
  /**
   * Block the calling thread until an unmasked line is pending (then deliver
   * it, returning the count) or until timeoutMs passes (returning 0).
   */
  waitAndDeliver(timeoutMs: number): number;
  /** Times each line was delivered to its handlers (for tests and traces). */
  deliveredCount(line: number): number;
}

export interface Bus {
  /** A trapped register read; throws BusError if the device side is gone. */
  read(addr: number, width: AccessWidth): number;
  /** A trapped register write; throws BusError if the device side is gone. */
  write(addr: number, width: AccessWidth, value: number): void;
  /**
   * A posted write, for doorbells (QueueNotify), as KVM's ioeventfd makes
   * them: the device sees it in order with every other access, but the call
   * returns without waiting for the device to have seen it. The next access
   * waits for it first; a failure (worker dead or stopped) surfaces there.
   * Optional: without it, callers use write().
   */
  writePosted?(addr: number, width: AccessWidth, value: number): void;
  readonly mem: GuestMemory;
  readonly irq: IrqChip;
}

export type BusErrorCode =
  | 'EMU_WORKER_DEAD' // the device worker exited or crashed
  | 'EMU_TRAP_TIMEOUT' // the device worker did not answer within the deadline
  | 'EMU_CLOSED' // the machine was closed
  | 'EMU_BAD_ACCESS'; // width or address the bus cannot carry

export class BusError extends Error {
  readonly code: BusErrorCode;
  constructor(code: BusErrorCode, message: string) {
    super(message);
    this.name = 'BusError';
    this.code = code;
  }
}

/**
 * A 64-bit access at a register address: two 32-bit accesses, the low word
 * at `addr` first, as the spec has drivers access 64-bit fields (4.2.2.2)
 * and as QEMU splits a 64-bit access to a region that takes 32 bits at most.
 */
export function read64(bus: Pick<Bus, 'read'>, addr: number): bigint {
  const lo = bus.read(addr, 4);
  const hi = bus.read(addr + 4, 4);
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/** The write of read64(): the low word at `addr` first, then the high word. */
export function write64(bus: Pick<Bus, 'write'>, addr: number, value: bigint): void {
  const v = BigInt.asUintN(64, value);
  bus.write(addr, 4, Number(v & 0xffff_ffffn));
  bus.write(addr + 4, 4, Number(v >> 32n));
}

/** Platform address map (QEMU aarch64 `virt` board). */
export const PLATFORM = {
  RAM_BASE: 0x4000_0000,
  RAM_SIZE_DEFAULT: 64 * 1024 * 1024,
  MMIO_BASE: 0x0a00_0000,
  MMIO_SLOTS_DEFAULT: 32,
  /** Channel subsystem window for virtio-ccw subchannels (one 0x40 window each). */
  CSS_BASE: 0x0c00_0000,
  CSS_WINDOW_SIZE: 0x40,
} as const;
