// Faults of the emulator's own machinery, through the real worker Machine:
// the device worker crashing or terminated in the middle of an access, of
// device work, of virtio_mmio_probe and of a PM cycle; a stopped (hanging)
// worker against trap deadlines; an exception inside one device model; a
// full guest-RAM DMA allocator. Every pending and later access must end with
// a clear BusError, nothing may hang, and the machine must close. The only
// time bounds are the tests' own timeouts (no timing assertions).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BusError } from '../../core/bus.js';
import { DmaAllocator, PAGE_SIZE, dmaFor, setDmaAllocator } from '../../core/dma.js';
import { rngOptions, virtioRngDriver, virtioRngRead } from '../../core/drivers/rng.js';
import { kernel } from '../../core/kernel.js';
import { DpmCore } from '../../core/pm/dpm.js';
import { pmSuspend } from '../../core/pm/system.js';
import { EIO, ENOMEM, ETIMEDOUT } from '../../core/uapi/errno.js';
import { MAGIC_VALUE, REG, VIRTIO_MMIO_INT_CONFIG as INT_CONFIG } from '../../core/uapi/mmio.js';
import { VIRTIO_CONFIG_S_FAILED as FAILED, VIRTIO_CONFIG_S_NEEDS_RESET as NEEDS_RESET } from '../../core/uapi/status.js';
import { VirtioBus, registerVirtioDriver } from '../../core/virtio.js';
import type { MailboxBus } from '../../emulator/bus/mailbox-driver.js';
import { Machine, type MachineOptions } from '../../emulator/machine.js';
import { virtioMmioPmOps, virtioMmioScan, type VirtioMmioDevice } from '../../transports/mmio/index.js';
import { bringUp, expectRecovered, kick, workerRig } from '../bad-input/harness.js';
import { CRASH_IN_DEVICE_WORK, FAULT_BOARD_MODULE, FAULT_REG, crashAtAccess } from '../helpers/fault-board.js';
import { W, pattern } from '../../tools/testkit/queue-builder.js';

const machines: Machine[] = [];

async function boot(opts: MachineOptions = {}): Promise<Machine> {
  const m = await Machine.create({ devices: ['rng', 'rng'], slots: 2, ramSize: 4 << 20, boardModule: FAULT_BOARD_MODULE, trapTimeoutMs: 15_000, ...opts });
  machines.push(m);
  return m;
}

function probe(m: Machine): VirtioMmioDevice[] {
  const vbus = new VirtioBus();
  registerVirtioDriver(virtioRngDriver, vbus);
  return virtioMmioScan(m.bus, m.config.slots, vbus).devices;
}

/** Run fn, which must throw a BusError; returns it. */
function busError(fn: () => unknown): BusError {
  try {
    fn();
  } catch (err) {
    if (err instanceof BusError) return err;
    throw err;
  }
  throw new Error('expected a BusError, got none');
}

/** A read that ended at its time bound: fewer bytes than asked, or -ETIMEDOUT if none. */
function expectShortRead(r: Uint8Array | number, asked: number): void {
  if (typeof r === 'number') expect(r).toBe(-ETIMEDOUT);
  else expect(r.length).toBeLessThan(asked);
}

/** The worker is gone: reads, writes and control requests all fail with EMU_WORKER_DEAD, and the machine closes. */
async function expectDeadThenClosed(m: Machine, why: RegExp): Promise<void> {
  const base = m.slotAddr(0);
  for (const access of [() => m.bus.read(base + REG.MagicValue, 4), () => m.bus.write(base + REG.Status, 4, 0), () => m.control({ op: 'ping' })]) {
    const e = busError(access);
    expect(e.code).toBe('EMU_WORKER_DEAD');
    expect(e.message).toMatch(why);
  }
  await m.close();
  expect(m.closed).toBe(true);
  expect(busError(() => m.bus.read(base, 4))).toBeInstanceOf(BusError);
}

beforeEach(() => {
  kernel.clear();
  rngOptions.waitTimeoutMs = 5000;
});
afterEach(async () => {
  rngOptions.waitTimeoutMs = 5000;
  await Promise.all(machines.splice(0).map((m) => m.close()));
});

describe('the device worker crashes', () => {
  it('in the middle of a register access: that access and every later one fail with EMU_WORKER_DEAD', async () => {
    const m = await boot();
    const base = m.slotAddr(0);
    expect(m.bus.read(base + REG.MagicValue, 4)).toBe(MAGIC_VALUE);
    m.bus.write(FAULT_REG, 4, crashAtAccess(1));
    const e = busError(() => m.bus.read(base + REG.Status, 4));
    expect(e.code).toBe('EMU_WORKER_DEAD');
    expect(e.message).toMatch(/crash armed at this read/);
    await expectDeadThenClosed(m, /crash armed/);
  });

  it('in the middle of a request (while the device processes the queue): the wait ends at its bound, accesses fail at once', async () => {
    const m = await boot();
    const [dev] = probe(m);
    expect((virtioRngRead(dev!, 100) as Uint8Array).length).toBe(100);
    rngOptions.waitTimeoutMs = 300;
    m.bus.write(FAULT_REG, 4, CRASH_IN_DEVICE_WORK);
    let result: number | Uint8Array | BusError;
    try {
      result = virtioRngRead(dev!, 4096);
    } catch (err) {
      if (!(err instanceof BusError)) throw err;
      result = err;
    }
    // Either the driver's bounded wait for the interrupt ran out (a short read,
    // or -ETIMEDOUT with nothing read), or its next kick met the dead worker.
    if (result instanceof BusError) expect(result.code).toBe('EMU_WORKER_DEAD');
    else expectShortRead(result, 4096);
    await expectDeadThenClosed(m, /crash during device work/);
  });

  it('terminated while the device works through thousands of requests: later accesses fail with EMU_WORKER_DEAD', async () => {
    const rig = await workerRig({ dut: { type: 'rng', transport: 'mmio', options: { queueSize: 4096 } }, ramSize: 8 << 20 });
    const m = rig.machine!;
    machines.push(m);
    const [q] = bringUp(rig, rig.dut, [4096]);
    const heads = [];
    for (let i = 0; i < 4096; i++) heads.push(q!.chain([W(1024)], { publish: false }).head);
    q!.publish(...heads);
    rig.dut.notify(0);
    await m.terminateWorker();
    const e = busError(() => rig.dut.status());
    expect(e.code).toBe('EMU_WORKER_DEAD');
    await expectDeadThenClosed(m, /terminated|exited/);
  });

  describe.each([1, 12, 35, 70])('during virtio_mmio_probe of two devices (70 accesses), at access %i', (n) => {
    it('the probe ends with EMU_WORKER_DEAD; the machine closes', async () => {
      const m = await boot();
      m.bus.write(FAULT_REG, 4, crashAtAccess(n));
      const e = busError(() => probe(m));
      expect(e.code).toBe('EMU_WORKER_DEAD');
      expect(e.message).toMatch(/crash armed at this (read|write)/);
      await expectDeadThenClosed(m, /crash armed/);
    });
  });

  describe.each([1, 20, 40, 64])('during a suspend/resume cycle of two devices (64 accesses), at access %i', (n) => {
    it('every later PM callback fails with -EIO and the error text; the transition ends; the machine closes', async () => {
      const m = await boot();
      const devs = probe(m);
      expect(devs).toHaveLength(2);
      const dpm = new DpmCore<VirtioMmioDevice>({ irq: m.irq });
      devs.forEach((d, i) => dpm.devicePmAdd({ name: d.name, dev: d, ops: virtioMmioPmOps, irqLine: i, slot: i }));
      m.bus.write(FAULT_REG, 4, crashAtAccess(n));
      const t = pmSuspend(dpm);
      const failed = t.records.filter((r) => r.error);
      expect(failed.length).toBeGreaterThan(0);
      for (const r of failed) {
        expect(r.result).toBe(-EIO);
        expect(r.error).toMatch(/device worker died/);
      }
      // Suspend-side failures abort the transition; a failure while resuming cannot abort it.
      if (['suspend', 'suspend_noirq'].includes(failed[0]!.phase)) expect(t.result).toBe(-EIO);
      for (let line = 0; line < 2; line++) expect(m.irq.isMasked(line), `line ${line} unmasked again`).toBe(false);
      await expectDeadThenClosed(m, /crash armed/);
    });
  });
});

describe('a stopped (hanging) worker and trap deadlines', () => {
  it('accesses end with EMU_TRAP_TIMEOUT at the deadline while it is stopped; close() ends it; then EMU_CLOSED', async () => {
    const m = await boot({ trapTimeoutMs: 100 });
    const base = m.slotAddr(0);
    expect(m.control({ op: 'fault', kind: 'hang', ms: 60_000 })).toEqual({ ok: true });
    expect(busError(() => m.bus.read(base + REG.Status, 4)).code).toBe('EMU_TRAP_TIMEOUT');
    const stale = busError(() => m.bus.write(base + REG.Status, 4, 0));
    expect(stale.code).toBe('EMU_TRAP_TIMEOUT');
    expect(stale.message).toMatch(/still busy with an earlier access/);
    expect(busError(() => m.control({ op: 'ping' })).code).toBe('EMU_TRAP_TIMEOUT');
    await m.close();
    expect(busError(() => m.bus.read(base, 4)).code).toBe('EMU_CLOSED');
  });

  it('once the worker runs again, the late answers are consumed and a driver read works', async () => {
    const m = await boot({ trapTimeoutMs: 50 });
    const [dev] = probe(m);
    expect(m.control({ op: 'fault', kind: 'hang', ms: 300 })).toEqual({ ok: true });
    expect(busError(() => m.bus.read(m.slotAddr(0) + REG.Status, 4)).code).toBe('EMU_TRAP_TIMEOUT');
    (m.bus as MailboxBus).trapTimeoutMs = 15_000;
    expect(m.bus.read(m.slotAddr(0) + REG.MagicValue, 4)).toBe(MAGIC_VALUE);
    expect((virtioRngRead(dev!, 256) as Uint8Array).length).toBe(256);
  });
});

describe('an exception inside one device model', () => {
  it('puts that device in DEVICE_NEEDS_RESET with a config interrupt; the other device keeps working; a reset brings it back [worker machine]', async () => {
    const rig = await workerRig();
    machines.push(rig.machine!);
    const [q] = bringUp(rig, rig.dut, [8]);
    await rig.settle();
    expect(rig.control({ op: 'fault', kind: 'throw-in-device', slot: 0 })).toEqual({ ok: true });
    q!.chain([W(8)]);
    await kick(rig, rig.dut, 0);
    await rig.until('DEVICE_NEEDS_RESET', () => (rig.dut.status() & NEEDS_RESET) !== 0);
    expect(rig.dut.interruptStatus() & INT_CONFIG).toBe(INT_CONFIG);
    expect(rig.stats().deviceErrors).toBe(1);
    const stats = rig.control({ op: 'stats' }) as { ok: true; value: { slots: { lastDeviceError: string | null }[] } };
    expect(stats.value.slots[0]!.lastDeviceError).toMatch(/rng.handleQueue threw: injected device fault/);
    expect(q!.usedIdx()).toBe(0);
    await expectRecovered(rig);
  });

  it('through the drivers: reads from the faulty device end at their bound, the other device reads on', async () => {
    const m = await boot();
    const [dev0, dev1] = probe(m);
    rngOptions.waitTimeoutMs = 300;
    expect(m.control({ op: 'fault', kind: 'throw-in-device', slot: 0 })).toEqual({ ok: true });
    // What the device returned before the fault is read; the request after it never completes.
    expectShortRead(virtioRngRead(dev0!, 4096), 4096);
    expect(dev0!.config.getStatus(dev0!) & NEEDS_RESET).toBe(NEEDS_RESET);
    expect((virtioRngRead(dev1!, 1000) as Uint8Array).length).toBe(1000);
  });
});

describe('a full guest-RAM DMA allocator', () => {
  it('refuses with null / -ENOMEM, counts the failure, and leaves every live allocation intact', () => {
    const ram = new Uint8Array(new SharedArrayBuffer(64 * 1024));
    const mem = { base: 0x4000_0000, size: ram.length, u8: ram, view: new DataView(ram.buffer) };
    const dma = new DmaAllocator(mem, mem.base + 4096, 8 * 1024);
    const live: { addr: number; data: Uint8Array }[] = [];
    for (let i = 0; ; i++) {
      const addr = dma.alloc(1024, 16);
      if (addr === null) break;
      const data = pattern(1024, i);
      dma.bytes(addr, 1024).set(data);
      live.push({ addr, data });
    }
    expect(live.length).toBe(8);
    expect(dma.allocOrErrno(64)).toBe(-ENOMEM);
    expect(dma.alloc(8 * 1024 + 1)).toBeNull();
    expect(dma.stats().failures).toBe(3);
    for (const { addr, data } of live) expect(dma.bytes(addr, 1024)).toEqual(data);
    const sorted = [...live].sort((a, b) => a.addr - b.addr);
    for (let i = 1; i < sorted.length; i++) expect(sorted[i]!.addr).toBeGreaterThanOrEqual(sorted[i - 1]!.addr + 1024);
    // Free one: the next allocation fits, is zeroed, and touches no neighbour.
    dma.free(live[3]!.addr);
    const again = dma.alloc(1024, 16)!;
    expect(again).toBe(live[3]!.addr);
    expect(dma.bytes(again, 1024).every((b) => b === 0)).toBe(true);
    for (const { addr, data } of live.filter((_, i) => i !== 3)) expect(dma.bytes(addr, 1024)).toEqual(data);
  });

  it('a probe that cannot get DMA memory fails with -ENOMEM, marks the device FAILED, leaks nothing and corrupts nothing', async () => {
    const m = await boot({ devices: ['rng'], slots: 1 });
    const dma = new DmaAllocator(m.mem, m.mem.base + PAGE_SIZE, PAGE_SIZE);
    setDmaAllocator(m.mem, dma);
    const keep = dma.alloc(64, 64)!;
    dma.bytes(keep, 64).set(pattern(64));
    const vbus = new VirtioBus();
    registerVirtioDriver(virtioRngDriver, vbus);
    const scan = virtioMmioScan(m.bus, 1, vbus);
    const dev = scan.devices[0]!;
    expect(dev.probeResult).toBe(-ENOMEM);
    expect(dev.driver).toBeNull();
    expect(dev.config.getStatus(dev) & FAILED).toBe(FAILED);
    expect(dma.stats().allocations).toBe(1);
    expect(dma.bytes(keep, 64)).toEqual(pattern(64));
    expect(dmaFor(m.mem)).toBe(dma);
    expect(m.bus.read(m.slotAddr(0) + REG.MagicValue, 4)).toBe(MAGIC_VALUE);
  });
});
