// The rig every bad-input test runs on: a board with the device under test
// in slot 0 and a virtio-rng bystander in slot 1, driven by raw register
// and guest-memory writes. The same scenario runs on the in-thread board
// (fast, deterministic: the test runs the deferred device work itself) or
// through the real worker Machine (the device worker runs it; the test
// waits, with a generous bound, for what it expects).
import { expect, it } from 'vitest';
import type { GuestMemory } from '../../core/bus.js';
import { MAGIC_VALUE, REG, VIRTIO_MMIO_INT_CONFIG } from '../../core/uapi/mmio.js';
import { VIRTIO_CONFIG_S_NEEDS_RESET } from '../../core/uapi/status.js';
import { Machine, type MachineDevice } from '../../emulator/machine.js';
import type { Board, ControlRequest, ControlResponse, DeviceSpec } from '../../emulator/board-contract.js';
import { QueueBuilder, W, R, WRITE, type Buf, type BuiltChain, type UsedElem } from '../../tools/testkit/queue-builder.js';
import { PackedQueueBuilder, type BuiltPackedChain } from '../../tools/testkit/packed-queue-builder.js';
import {
  Alloc,
  FakeClock,
  RAM_BASE,
  RawDriver,
  RecordingIrq,
  packedFeatures,
  makeBoard,
  type InitOptions,

  type TestBoard,
} from '../helpers/raw-driver.js';
import type { SlotStats } from '../../emulator/board.js';
import './probe-device.js';

export const DUT = 0;
export const OTHER = 1;
/** Generous bound for waits on the device worker; reaching it fails the test, it is not a timing assertion. */
const WAIT_MS = 15_000;

/** A device spec the board and the machine both take. */
export type RigDevice = DeviceSpec & MachineDevice;

export interface RigOptions {
  /** The device under test in slot 0 (default virtio-rng on virtio-mmio v2). */
  dut?: RigDevice;
  ramSize?: number;
  weight?: number;
  /** Extra empty slots after the two devices. */
  slots?: number;
  /** Worker rig: a module exporting createBoard in place of the real board (fault injection). */
  boardModule?: URL;
}

export interface Rig {
  readonly kind: 'board' | 'worker';
  /** The machine behind a worker rig. */
  readonly machine: Machine | null;
  readonly mem: GuestMemory;
  readonly alloc: Alloc;
  readonly dut: RawDriver;
  readonly other: RawDriver;
  /** The bystander's request queue (already live). */
  readonly otherQ: QueueBuilder;
  /** Let the device side run what the last accesses queued. */
  settle(): Promise<void>;
  /** Wait until cond holds (worker), or check it after settling (board). */
  until(what: string, cond: () => boolean): Promise<void>;
  stats(slot?: number): SlotStats;
  internalErrors(): number;
  lineHigh(slot: number): boolean;
  control(req: ControlRequest): ControlResponse;
  close(): Promise<void>;
}

/** Negotiate, lay out and program one ring per size, then DRIVER_OK (unless driverOk is false). */
export function bringUp(rig: Rig, drv: RawDriver, sizes: number[], opts: InitOptions = {}): QueueBuilder[] {
  drv.negotiate(opts);
  const legacy = drv.read(REG.Version) === 1;
  if (legacy) drv.write(REG.GuestPageSize, 4096);
  const qs = sizes.map((n, q) => {
    if (legacy) {
      const b = QueueBuilder.legacy(rig.mem, rig.alloc, n);
      b.programLegacy(drv, q);
      return b;
    }
    const b = new QueueBuilder(rig.mem, rig.alloc, n);
    b.program(drv, q);
    return b;
  });
  if (opts.driverOk ?? true) drv.driverOk();
  return qs;
}

/** The same with packed rings: VIRTIO_F_RING_PACKED accepted (unless opts.features says otherwise). */
export function bringUpPacked(rig: Rig, drv: RawDriver, sizes: number[], opts: InitOptions = {}): PackedQueueBuilder[] {
  drv.negotiate({ features: packedFeatures, ...opts });
  const qs = sizes.map((n, q) => {
    const b = new PackedQueueBuilder(rig.mem, rig.alloc, n);
    b.program(drv, q);
    return b;
  });
  if (opts.driverOk ?? true) drv.driverOk();
  return qs;
}

function memOf(ram: Uint8Array): GuestMemory {
  return { base: RAM_BASE, size: ram.length, u8: ram, view: new DataView(ram.buffer, ram.byteOffset, ram.length) };
}

function statsOf(res: ControlResponse, slot: number): SlotStats {
  if (!res.ok) throw new Error(res.error);
  return (res.value as { slots: SlotStats[] }).slots[slot]!;
}

const RNG: RigDevice = { type: 'rng', transport: 'mmio' };

/** The in-thread board: createBoard directly; the test runs deferred work. */
export function boardRig(opts: RigOptions = {}): Rig {
  const devices = [opts.dut ?? RNG, RNG];
  const tb = makeBoard(devices, {
    slots: 2 + (opts.slots ?? 0),
    ...(opts.ramSize !== undefined ? { ramSize: opts.ramSize } : {}),
    ...(opts.weight !== undefined ? { weight: opts.weight } : {}),
  });
  const mem = memOf(tb.ram);
  const drain = (): void => {
    for (let i = 0; i < 1_000_000 && tb.board.hasDeferred(); i++) tb.board.runDeferred(64);
  };
  const rig: Rig = {
    kind: 'board',
    machine: null,
    mem,
    alloc: tb.alloc,
    dut: new RawDriver(tb, DUT),
    other: new RawDriver(tb, OTHER),
    otherQ: null as unknown as QueueBuilder,
    async settle() {
      drain();
    },
    async until(what, cond) {
      drain();
      if (!cond()) throw new Error(`not reached: ${what}`);
    },
    stats: (slot = DUT) => statsOf(tb.board.control({ op: 'stats' }), slot),
    internalErrors: () => (tb.board.control({ op: 'stats' }) as { ok: true; value: { internalErrors: number } }).value.internalErrors,
    lineHigh: (slot) => tb.irq.isHigh(slot),
    control: (req) => {
      const res = tb.board.control(req);
      drain();
      return res;
    },
    close: async () => {},
  };
  return withBystander(rig);
}

/** The real worker Machine: the board runs in the device worker behind the trap mailbox. */
export async function workerRig(opts: RigOptions = {}): Promise<Rig> {
  const m = await Machine.create({
    devices: [{ ...(opts.dut ?? RNG), slot: DUT }, { ...RNG, slot: OTHER }],
    slots: 2 + (opts.slots ?? 0),
    ramSize: opts.ramSize ?? 1 << 20,
    trapTimeoutMs: WAIT_MS,
    ...(opts.boardModule ? { boardModule: opts.boardModule } : {}),
  });
  const board: Board = {
    read: (a, w) => m.bus.read(a, w),
    write: (a, w, v) => m.bus.write(a, w, v),
    runDeferred: () => false,
    hasDeferred: () => false,
    nextTimerMs: () => Number.POSITIVE_INFINITY,
    control: (req) => m.control(req),
  };
  const alloc = new Alloc(m.mem.base + 0x1000, m.mem.size - 0x1000);
  const tb: TestBoard = { board, ram: m.mem.u8, view: m.mem.view, irq: new RecordingIrq(), clock: new FakeClock(), alloc };
  const until = async (what: string, cond: () => boolean): Promise<void> => {
    const end = performance.now() + WAIT_MS;
    while (!cond()) {
      if (performance.now() > end) throw new Error(`not reached within ${WAIT_MS} ms: ${what}`);
      await new Promise((r) => setTimeout(r, 1));
    }
  };
  const rig: Rig = {
    kind: 'worker',
    machine: m,
    mem: m.mem,
    alloc,
    dut: new RawDriver(tb, DUT),
    other: new RawDriver(tb, OTHER),
    otherQ: null as unknown as QueueBuilder,
    async settle() {
      // The board's deferred work is one FIFO: once a request kicked after
      // everything else completes, the work queued before it has run.
      const q = rig.otherQ;
      const before = q.usedIdx();
      q.chain([W(1)]);
      rig.other.notify(0);
      await until('the settle request on the bystander completes', () => q.usedIdx() !== before);
      q.reclaim();
    },
    until,
    stats: (slot = DUT) => statsOf(m.control({ op: 'stats' }), slot),
    internalErrors: () => (m.control({ op: 'stats' }) as { ok: true; value: { internalErrors: number } }).value.internalErrors,
    lineHigh: (slot) => m.irq.level(slot),
    control: (req) => m.control(req),
    close: () => m.close(),
  };
  return withBystander(rig);
}

function withBystander(rig: Rig): Rig {
  const [q] = bringUp(rig, rig.other, [64]);
  (rig as { otherQ: QueueBuilder }).otherQ = q!;
  return rig;
}

/** Post a chain on queue q, kick it, and return its used element once the device put it. */
export async function request(rig: Rig, drv: RawDriver, qb: QueueBuilder, q: number, bufs: Buf[], opts: { indirect?: boolean } = {}): Promise<{ chain: BuiltChain; used: UsedElem }> {
  const before = qb.usedIdx();
  const chain = qb.chain(bufs, opts);
  drv.notify(q);
  await rig.until(`request on slot ${drv.slot} queue ${q} completes`, () => qb.usedIdx() !== before);
  const used = qb.usedElem(before);
  qb.reclaim();
  return { chain, used };
}

/** A packed-ring request: post, kick, and return its used descriptor once the device wrote it. */
export async function requestPacked(
  rig: Rig,
  drv: RawDriver,
  qb: PackedQueueBuilder,
  q: number,
  bufs: Buf[],
  opts: { indirect?: boolean } = {},
): Promise<{ chain: BuiltPackedChain; used: UsedElem }> {
  const chain = qb.chain(bufs, opts);
  drv.notify(q);
  await rig.until(`packed request on slot ${drv.slot} queue ${q} completes`, () => qb.hasUsed());
  const [used] = qb.reclaim();
  return { chain, used: used! };
}

/**
 * expectNeedsReset for a packed ring: DEVICE_NEEDS_RESET with a config
 * interrupt, the ring error counted with its reason, and the queue parked:
 * a well-formed chain posted after it is not served until reset.
 */
export async function expectPackedNeedsReset(rig: Rig, qb: PackedQueueBuilder, q: number, reason: RegExp): Promise<void> {
  const drv = rig.dut;
  await rig.until('DEVICE_NEEDS_RESET', () => (drv.status() & VIRTIO_CONFIG_S_NEEDS_RESET) !== 0);
  expect(drv.interruptStatus() & VIRTIO_MMIO_INT_CONFIG).toBe(VIRTIO_MMIO_INT_CONFIG);
  expect(rig.lineHigh(DUT)).toBe(true);
  const s = rig.stats();
  expect(s.ringErrors).toBeGreaterThan(0);
  expect(`${s.lastGuestError}`).toMatch(reason);
  const usedBefore = s.usedBuffers;
  qb.takeUsed();
  qb.chain([W(8)]);
  await kick(rig, drv, q);
  expect(qb.hasUsed(), 'a parked queue serves nothing').toBe(false);
  expect(rig.stats().usedBuffers).toBe(usedBefore);
}

/** Kick queue q and let the device run. */
export async function kick(rig: Rig, drv: RawDriver, q: number): Promise<void> {
  drv.notify(q);
  await rig.settle();
}

/**
 * The device reported a malformed ring (spec 2.1.2): DEVICE_NEEDS_RESET with
 * a configuration change interrupt, the ring error counted, and the queue
 * parked: a well-formed request after it is not served until reset.
 */
export async function expectNeedsReset(rig: Rig, qb: QueueBuilder, q: number, reason: RegExp): Promise<void> {
  const drv = rig.dut;
  await rig.until('DEVICE_NEEDS_RESET', () => (drv.status() & VIRTIO_CONFIG_S_NEEDS_RESET) !== 0);
  expect(drv.interruptStatus() & VIRTIO_MMIO_INT_CONFIG).toBe(VIRTIO_MMIO_INT_CONFIG);
  expect(rig.lineHigh(DUT)).toBe(true);
  const s = rig.stats();
  expect(s.ringErrors).toBeGreaterThan(0);
  expect(`${s.lastGuestError}`).toMatch(reason);
  const used = qb.usedIdx();
  // A well-formed one-descriptor chain at index 0 (the malformed one may hold every index).
  qb.raw([[0, { addr: qb.buffer(W(8)).addr, len: 8, flags: WRITE }]]);
  await kick(rig, drv, q);
  expect(qb.usedIdx(), 'a parked queue serves nothing').toBe(used);
}

/**
 * What every bad-input test ends with: the board still answers and had no
 * internal fault, the bystander device still serves requests, and a Status=0
 * reset brings the device under test back to its reset state, after which a
 * re-initialised device serves a request.
 */
export async function expectRecovered(rig: Rig, sizes: number[] = [8], opts: InitOptions = {}, ring: 'split' | 'packed' = 'split'): Promise<void> {
  expect(rig.dut.read(REG.MagicValue)).toBe(MAGIC_VALUE);
  expect(rig.internalErrors()).toBe(0);

  const other = await request(rig, rig.other, rig.otherQ, 0, [W(16)]);
  expect(other.used).toEqual({ id: other.chain.head, len: 16 });

  const d = rig.dut;
  d.reset();
  expect(d.status()).toBe(0);
  expect(d.interruptStatus()).toBe(0);
  expect(rig.lineHigh(DUT)).toBe(false);
  const readyReg = d.read(REG.Version) === 1 ? REG.QueuePFN : REG.QueueReady;
  for (let q = 0; q < sizes.length; q++) {
    d.write(REG.QueueSel, q);
    expect(d.read(readyReg)).toBe(0);
  }
  if (ring === 'packed') {
    const [pq] = bringUpPacked(rig, d, sizes, opts);
    const r = await requestPacked(rig, d, pq!, 0, [R(4), W(16)]);
    expect(r.used.id).toBe(r.chain.id);
    expect(r.used.len).toBeGreaterThan(0);
    expect(d.status() & VIRTIO_CONFIG_S_NEEDS_RESET).toBe(0);
    expect(rig.internalErrors()).toBe(0);
    return;
  }
  const qs = bringUp(rig, d, sizes, opts);
  const r = await request(rig, d, qs[0]!, 0, [R(4), W(16)]);
  expect(r.used.id).toBe(r.chain.head);
  expect(r.used.len).toBeGreaterThan(0);
  expect(d.status() & VIRTIO_CONFIG_S_NEEDS_RESET).toBe(0);
  expect(rig.internalErrors()).toBe(0);
}

/** A bad-input test on the in-thread board. */
export function onBoard(name: string, body: (rig: Rig) => Promise<void>, opts: RigOptions = {}): void {
  it(name, async () => {
    await body(boardRig(opts));
  });
}

/** The same test on the in-thread board and through the real worker Machine. */
export function onBoth(name: string, body: (rig: Rig) => Promise<void>, opts: RigOptions = {}): void {
  onBoard(`${name} [in-thread board]`, body, opts);
  it(`${name} [worker machine]`, async () => {
    const rig = await workerRig(opts);
    try {
      await body(rig);
    } finally {
      await rig.close();
    }
  });
}

/**
 * Run the board's deferred work one item at a time and count the items: a
 * deterministic measure of the deferred-work queue (in-thread board only).
 */
export function pendingWorkItems(rig: Rig): number {
  if (rig.kind !== 'board') throw new Error('pendingWorkItems needs the in-thread board');
  const board = rig.dut.tb.board;
  let n = 0;
  while (board.hasDeferred()) {
    board.runDeferred(1);
    if (++n > 1_000_000) throw new Error('deferred work does not drain');
  }
  return n;
}
