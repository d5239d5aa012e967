// The trap mailbox, driven through a machine whose board (a fake) runs in the
// device worker.
import { afterEach, describe, expect, it } from 'vitest';
import { BusError, PLATFORM, type AccessWidth } from '../../core/bus.js';
import { MAGIC_VALUE, REG } from '../../core/uapi/mmio.js';
import { Machine, type MachineOptions } from '../../emulator/machine.js';
import { MB, MB_TIME, createMailbox } from '../../emulator/bus/mailbox.js';
import { MailboxBus } from '../../emulator/bus/mailbox-driver.js';
import { sharedClock } from '../../emulator/bus/spin.js';
import { IrqController, createIrqState } from '../../emulator/irq/controller.js';
import { FAKE_BOARD_MODULE, FAKE_DEVICE_ID, FAKE_TYPE, FAKE_VENDOR_ID } from '../helpers/fake-board.js';

const machines: Machine[] = [];
async function boot(opts: MachineOptions = {}): Promise<Machine> {
  const m = await Machine.create({ devices: [FAKE_TYPE], slots: 4, ramSize: 1 << 20, boardModule: FAKE_BOARD_MODULE, ...opts });
  machines.push(m);
  return m;
}
afterEach(async () => {
  await Promise.all(machines.splice(0).map((m) => m.close()));
});

function busError(fn: () => unknown): BusError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(BusError);
    return err as BusError;
  }
  throw new Error('expected a BusError, got none');
}

describe('mailbox round trips', () => {
  it('reads identification registers through the worker', async () => {
    const m = await boot();
    const base = m.slotAddr(0);
    expect(m.bus.read(base + REG.MagicValue, 4)).toBe(MAGIC_VALUE);
    expect(m.bus.read(base + REG.DeviceID, 4)).toBe(FAKE_DEVICE_ID);
    expect(m.bus.read(base + REG.VendorID, 4)).toBe(FAKE_VENDOR_ID);
    expect(m.bus.read(m.slotAddr(1) + REG.DeviceID, 4)).toBe(0);
  });

  it.each([
    [1, 0xa5],
    [2, 0xbeef],
    [4, 0xdeadbeef],
  ] as [AccessWidth, number][])('writes and reads back config space at width %i', async (width, value) => {
    const m = await boot();
    const cfg = m.slotAddr(0) + REG.Config + 8;
    m.bus.write(cfg, width, value);
    expect(m.bus.read(cfg, width)).toBe(value);
    // Little-endian lanes: the low byte is at the lowest address.
    expect(m.bus.read(cfg, 1)).toBe(value & 0xff);
  });

  it('truncates a write value to the access width', async () => {
    const m = await boot();
    const cfg = m.slotAddr(0) + REG.Config;
    m.bus.write(cfg, 4, 0);
    m.bus.write(cfg, 2, 0x12345678);
    expect(m.bus.read(cfg, 4)).toBe(0x5678);
  });

  it('keeps request and response paired over many accesses in a row', async () => {
    const m = await boot();
    const sel = m.slotAddr(0) + REG.QueueSel;
    for (let i = 0; i < 20000; i++) {
      m.bus.write(sel, 4, i * 7);
      const v = m.bus.read(sel, 4);
      if (v !== i * 7) expect.fail(`access ${i}: read ${v}, wrote ${i * 7}`);
    }
    const stats = m.control({ op: 'stats' });
    expect(stats.ok).toBe(true);
    const value = (stats as { value: { reads: number; writes: number; bus: { reads: number; writes: number } } }).value;
    expect(value.bus.reads).toBe(20000);
    expect(value.bus.writes).toBe(20000);
    expect(value.reads).toBe(20000);
  });

  it('survives an idle worker falling asleep between accesses', async () => {
    const m = await boot();
    const sel = m.slotAddr(0) + REG.QueueSel;
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 20));
      m.bus.write(sel, 4, i + 1);
      expect(m.bus.read(sel, 4)).toBe(i + 1);
    }
    const stats = m.control({ op: 'stats' }) as { ok: true; value: { bus: { sleeps: number } } };
    expect(stats.value.bus.sleeps).toBeGreaterThan(0);
  });

  it('rejects widths and addresses the bus cannot carry', async () => {
    const m = await boot();
    expect(busError(() => m.bus.read(m.slotAddr(0), 8 as AccessWidth)).code).toBe('EMU_BAD_ACCESS');
    expect(busError(() => m.bus.read(-4, 4)).code).toBe('EMU_BAD_ACCESS');
    expect(busError(() => m.bus.write(2 ** 32, 4, 0)).code).toBe('EMU_BAD_ACCESS');
    // The bus still works afterwards.
    expect(m.bus.read(m.slotAddr(0), 4)).toBe(MAGIC_VALUE);
  });
});

describe('control plane', () => {
  it('answers ping and forwards other requests to the board', async () => {
    const m = await boot();
    expect(m.control({ op: 'ping' })).toEqual({ ok: true, value: 'pong' });
    expect(m.control({ op: 'power', model: 'retain' })).toEqual({ ok: false, error: 'unsupported control power' });
  });
});

describe('faults', () => {
  it('a worker crash fails the pending request and every later access with EMU_WORKER_DEAD', async () => {
    const m = await boot();
    const e1 = busError(() => m.control({ op: 'fault', kind: 'crash' }));
    expect(e1.code).toBe('EMU_WORKER_DEAD');
    expect(e1.message).toContain('fault injected: crash');
    for (let i = 0; i < 3; i++) {
      expect(busError(() => m.bus.read(m.slotAddr(0), 4)).code).toBe('EMU_WORKER_DEAD');
    }
    // After the event loop has seen the worker exit, still the same error.
    await new Promise((r) => setTimeout(r, 20));
    expect(busError(() => m.bus.write(m.slotAddr(0) + REG.QueueSel, 4, 1)).code).toBe('EMU_WORKER_DEAD');
  });

  it('an exception thrown by a device model kills the worker with its text', async () => {
    const m = await boot();
    expect(m.control({ op: 'fault', kind: 'throw-in-device', slot: 0 })).toEqual({ ok: true });
    const e = busError(() => m.bus.read(m.slotAddr(0) + REG.Status, 4));
    expect(e.code).toBe('EMU_WORKER_DEAD');
    expect(e.message).toContain('fake device in slot 0 blew up');
  });

  it('device code calling process.exit() is reported as a dead worker', async () => {
    const m = await boot();
    const e = busError(() => m.control({ op: 'inject', slot: 0, event: 'exit' }));
    expect(e.code).toBe('EMU_WORKER_DEAD');
    expect(e.message).toContain('code 3');
  });

  it('a terminated worker fails later accesses with EMU_WORKER_DEAD', async () => {
    const m = await boot();
    expect(m.bus.read(m.slotAddr(0), 4)).toBe(MAGIC_VALUE);
    await m.terminateWorker();
    expect(busError(() => m.bus.read(m.slotAddr(0), 4)).code).toBe('EMU_WORKER_DEAD');
  });

  it('a worker hanging past the deadline gives EMU_TRAP_TIMEOUT, and the bus recovers after', async () => {
    const m = await boot({ trapTimeoutMs: 50 });
    const sel = m.slotAddr(0) + REG.QueueSel;
    m.bus.write(sel, 4, 5);
    expect(m.control({ op: 'fault', kind: 'hang', ms: 400 })).toEqual({ ok: true });
    expect(busError(() => m.bus.read(sel, 4)).code).toBe('EMU_TRAP_TIMEOUT');
    // Once the worker is back, the late answer is consumed and accesses pair up again.
    let value = -1;
    for (let tries = 0; tries < 100 && value < 0; tries++) {
      try {
        value = m.bus.read(sel, 4);
      } catch (err) {
        expect((err as BusError).code).toBe('EMU_TRAP_TIMEOUT');
      }
    }
    expect(value).toBe(5);
    m.bus.write(sel, 4, 6);
    expect(m.bus.read(sel, 4)).toBe(6);
  });
});

describe('close', () => {
  it('is idempotent and later accesses give EMU_CLOSED', async () => {
    const m = await boot();
    const p1 = m.close();
    const p2 = m.close();
    expect(p2).toBe(p1);
    await p1;
    await m.close();
    expect(m.closed).toBe(true);
    expect(busError(() => m.bus.read(m.slotAddr(0), 4)).code).toBe('EMU_CLOSED');
    expect(busError(() => m.bus.write(m.slotAddr(0), 4, 0)).code).toBe('EMU_CLOSED');
    expect(busError(() => m.control({ op: 'ping' })).code).toBe('EMU_CLOSED');
  });

  it('places guest RAM at PLATFORM.RAM_BASE', async () => {
    const m = await boot();
    expect(m.mem.base).toBe(PLATFORM.RAM_BASE);
    expect(m.mem.size).toBe(1 << 20);
    expect(m.mem.u8.buffer).toBeInstanceOf(SharedArrayBuffer);
  });
});

describe('adaptive spinning (counters, never timings)', () => {
  const mem = { base: 0, size: 0, u8: new Uint8Array(0), view: new DataView(new ArrayBuffer(0)) };
  /** A driver end over a mailbox nobody serves; `sleeping`: a worker that said it sleeps and never wakes. */
  function bareBus(sleeping: boolean): MailboxBus {
    const buffers = createMailbox(64);
    if (sleeping) {
      new Float64Array(buffers.mailbox)[MB_TIME.WORKER_SLEPT_AT] = sharedClock();
      new Int32Array(buffers.mailbox)[MB.WORKER_SLEEPING] = 1;
    }
    return new MailboxBus(buffers, mem, new IrqController(createIrqState(1)), { trapTimeoutMs: 10 });
  }

  it('a worker that is awake but never answers: the driver blocks after the stall window instead of spinning its budget, and the deadline holds', () => {
    const bus = bareBus(false);
    expect(busError(() => bus.read(0x1000, 4)).code).toBe('EMU_TRAP_TIMEOUT');
    const s = bus.stats;
    expect(s.notifies).toBe(0);
    expect(s.blocked).toBe(1);
    expect(s.sleeps).toBeGreaterThan(0);
    expect(s.spin.exhausted).toBe(0);
    expect(s.spin.stalls + s.spin.preemptions).toBe(1);
  });

  it('a worker asleep that never wakes: notified once; each wait spins only its short wake spin, never the full budget', () => {
    const bus = bareBus(true);
    // The first access times out; the later ones wait for its late answer (and time out too).
    for (let i = 0; i < 5; i++) expect(busError(() => bus.read(0x1000, 4)).code).toBe('EMU_TRAP_TIMEOUT');
    const s = bus.stats;
    expect(s.requests).toBe(1);
    expect(s.notifies).toBe(1);
    expect(s.blocked).toBe(5);
    expect(s.spin.exhausted).toBe(0);
    // Each wait ends as a wake miss (a preemption, should this thread lose
    // its CPU mid-spin, then skips the next ones); none runs to the cap.
    expect(s.spin.hits).toBe(0);
    expect(s.spin.wakeMisses + s.spin.preemptions + s.spin.skips).toBe(5);
  });

  it('a hung worker (fault hang) is not spun on: the access blocks and ends with EMU_TRAP_TIMEOUT', async () => {
    const m = await boot({ trapTimeoutMs: 50 });
    const bus = m.bus as MailboxBus;
    expect(m.control({ op: 'fault', kind: 'hang', ms: 400 })).toEqual({ ok: true });
    const before = bus.stats;
    expect(busError(() => bus.read(m.slotAddr(0) + REG.QueueSel, 4)).code).toBe('EMU_TRAP_TIMEOUT');
    const after = bus.stats;
    expect(after.blocked - before.blocked).toBe(1);
    expect(after.spin.exhausted - before.spin.exhausted).toBe(0);
    const cut = ['stalls', 'preemptions', 'skips'] as const;
    expect(cut.reduce((n, k) => n + after.spin[k] - before.spin[k], 0)).toBe(1);
  });

  it('an idle worker sleeps, is notified by the next access, and measures and publishes its wake-up', async () => {
    const m = await boot();
    const bus = m.bus as MailboxBus;
    const sel = m.slotAddr(0) + REG.QueueSel;
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 20));
      m.bus.write(sel, 4, i + 1);
      expect(m.bus.read(sel, 4)).toBe(i + 1);
    }
    expect(bus.stats.notifies).toBeGreaterThanOrEqual(3);
    const stats = m.control({ op: 'stats' }) as { ok: true; value: { bus: { sleeps: number; wakeups: number; wakeSamples: number; wakeMs: number } } };
    const w = stats.value.bus;
    expect(w.sleeps).toBeGreaterThanOrEqual(3);
    expect(w.wakeups).toBeGreaterThanOrEqual(3);
    expect(w.wakeSamples).toBe(w.wakeups);
    expect(w.wakeMs).toBeGreaterThan(0);
    expect(bus.partner.wakeMs()).toBeCloseTo(w.wakeMs, 5);
  });

  it('a posted write (doorbell) does not wait for the worker; the next access does, with the same deadline', async () => {
    const m = await boot({ trapTimeoutMs: 50 });
    const bus = m.bus as MailboxBus;
    const sel = m.slotAddr(0) + REG.QueueSel;
    bus.writePosted(sel, 4, 9);
    expect(m.bus.read(sel, 4)).toBe(9);
    expect(bus.stats.posted).toBe(1);
    expect(m.control({ op: 'fault', kind: 'hang', ms: 300 })).toEqual({ ok: true });
    // The worker is stopped: the posted write still returns at once...
    bus.writePosted(sel, 4, 10);
    // ...and the access after it meets the deadline waiting for it.
    const e = busError(() => m.bus.read(sel, 4));
    expect(e.code).toBe('EMU_TRAP_TIMEOUT');
    expect(e.message).toMatch(/still busy with an earlier access/);
    bus.trapTimeoutMs = 15_000;
    expect(m.bus.read(sel, 4)).toBe(10);
  });

  it('a dead worker fails a posted write at once', async () => {
    const m = await boot();
    await m.terminateWorker();
    expect(busError(() => (m.bus as MailboxBus).writePosted(m.slotAddr(0) + REG.QueueSel, 4, 1)).code).toBe('EMU_WORKER_DEAD');
  });
});
