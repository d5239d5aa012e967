// The machine: device placement, both buses behaving alike, interrupts from
// deferred device work, and process lifetime.
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { IRQ_HANDLED, PLATFORM } from '../../core/bus.js';
import { MAGIC_VALUE, REG, VIRTIO_MMIO_INT_CONFIG, VIRTIO_MMIO_INT_VRING } from '../../core/uapi/mmio.js';
import { customDeviceType } from '../../emulator/devices/catalog.js';
import { Machine, placeDevices, type BusKind, type MachineOptions } from '../../emulator/machine.js';
import { FAKE_BOARD_MODULE, FAKE_DEVICE_ID, FAKE_NOTIFIED, FAKE_TIMER, FAKE_TYPE } from '../helpers/fake-board.js';

const machines: Machine[] = [];
async function boot(opts: MachineOptions = {}): Promise<Machine> {
  const m = await Machine.create({ slots: 4, ramSize: 1 << 20, boardModule: FAKE_BOARD_MODULE, ...opts });
  machines.push(m);
  return m;
}
afterEach(async () => {
  await Promise.all(machines.splice(0).map((m) => m.close()));
});

describe('device placement', () => {
  it('puts the first device in slot 0 and the rest in order, around explicit slots', () => {
    const t = placeDevices(['rng', { type: 'blk', slot: 1 }, { type: 'console', transport: 'mmio-legacy' }], 4);
    expect(t.map((d) => d?.type ?? null)).toEqual(['rng', 'blk', 'console', null]);
    expect(t[0]).toEqual({ type: 'rng', transport: 'mmio' });
    expect(t[2]!.transport).toBe('mmio-legacy');
  });

  it('rejects duplicate and out-of-range slots and too many devices', () => {
    const [a, b, c] = ['a', 'b', 'c'].map(customDeviceType);
    expect(() => placeDevices([{ type: a!, slot: 1 }, { type: b!, slot: 1 }], 4)).toThrow(/already holds a/);
    expect(() => placeDevices([{ type: a!, slot: 4 }], 4)).toThrow(RangeError);
    expect(() => placeDevices([a!, b!, c!], 2)).toThrow(/no free slot/);
  });

  it('reports slot addresses and plugged devices', async () => {
    const m = await boot({ devices: [FAKE_TYPE, { type: FAKE_TYPE, slot: 2 }], slots: 40 });
    expect(m.slotAddr(0)).toBe(PLATFORM.MMIO_BASE);
    expect(m.slotAddr(39)).toBe(PLATFORM.MMIO_BASE + 39 * 0x200);
    expect(() => m.slotAddr(40)).toThrow(RangeError);
    expect(m.devices.map((d) => [d.slot, d.line, d.addr])).toEqual([
      [0, 0, PLATFORM.MMIO_BASE],
      [2, 2, PLATFORM.MMIO_BASE + 0x400],
    ]);
    expect(m.irq.lines).toBe(40);
    expect(m.bus.read(m.slotAddr(39) + REG.MagicValue, 4)).toBe(MAGIC_VALUE);
    expect(m.bus.read(m.slotAddr(2) + REG.DeviceID, 4)).toBe(FAKE_DEVICE_ID);
    expect(m.bus.read(m.slotAddr(1) + REG.DeviceID, 4)).toBe(0);
  });

  it('rejects bad sizes', async () => {
    await expect(Machine.create({ slots: 0, boardModule: FAKE_BOARD_MODULE })).rejects.toThrow(RangeError);
    await expect(Machine.create({ ramSize: 100, boardModule: FAKE_BOARD_MODULE })).rejects.toThrow(RangeError);
  });

  it('fails to start with a clear error when the board cannot be built', async () => {
    const bogus = new URL('../helpers/no-such-board.js', import.meta.url);
    await expect(Machine.create({ boardModule: bogus })).rejects.toMatchObject({ code: 'EMU_WORKER_DEAD' });
  });
});

describe.each(['worker', 'inthread'] as BusKind[])('%s bus', (kind) => {
  it('delivers the used-buffer interrupt of a QueueNotify; the handler ACKs and the line drops', async () => {
    const m = await boot({ devices: [FAKE_TYPE, FAKE_TYPE], bus: kind });
    expect(m.busKind).toBe(kind);
    const base = m.slotAddr(1);
    const seen: number[] = [];
    m.irq.request(1, () => {
      const isr = m.bus.read(base + REG.InterruptStatus, 4);
      seen.push(isr);
      m.bus.write(base + REG.InterruptACK, 4, isr);
      return IRQ_HANDLED;
    });
    m.bus.write(base + REG.QueueNotify, 4, 0);
    expect(m.irq.waitAndDeliver(10_000)).toBe(1);
    expect(seen).toEqual([VIRTIO_MMIO_INT_VRING]);
    expect(m.irq.level(1)).toBe(false);
    expect(m.irq.deliverPending()).toBe(0);
    expect(m.bus.read(base + FAKE_NOTIFIED, 4)).toBe(1);
    expect(m.irq.deliveredCount(0)).toBe(0);
  });

  it('an interrupt raised while the line is masked is delivered after unmask', async () => {
    const m = await boot({ devices: [FAKE_TYPE], bus: kind });
    const base = m.slotAddr(0);
    let hits = 0;
    m.irq.request(0, () => {
      hits++;
      m.bus.write(base + REG.InterruptACK, 4, m.bus.read(base + REG.InterruptStatus, 4));
      return IRQ_HANDLED;
    });
    m.irq.mask(0);
    m.bus.write(base + REG.QueueNotify, 4, 0);
    // Wait until the device has done the work (the register counts it).
    for (let i = 0; i < 10_000 && m.bus.read(base + FAKE_NOTIFIED, 4) === 0; i++);
    expect(m.bus.read(base + FAKE_NOTIFIED, 4)).toBe(1);
    expect(m.irq.waitAndDeliver(20)).toBe(0);
    expect(m.irq.isPending(0)).toBe(true);
    expect(hits).toBe(0);
    m.irq.unmask(0);
    expect(m.irq.waitAndDeliver(10_000)).toBe(1);
    expect(hits).toBe(1);
  });

  it('fires device timers while the driver waits', async () => {
    const m = await boot({ devices: [FAKE_TYPE], bus: kind });
    const base = m.slotAddr(0);
    let isr = 0;
    m.irq.request(0, () => {
      isr = m.bus.read(base + REG.InterruptStatus, 4);
      m.bus.write(base + REG.InterruptACK, 4, isr);
      return IRQ_HANDLED;
    });
    m.bus.write(base + FAKE_TIMER, 4, 30);
    expect(m.irq.waitAndDeliver(10_000)).toBe(1);
    expect(isr).toBe(VIRTIO_MMIO_INT_CONFIG);
  });

  it('answers ping and stats; close is idempotent and later accesses give EMU_CLOSED', async () => {
    const m = await boot({ devices: [FAKE_TYPE], bus: kind });
    expect(m.control({ op: 'ping' })).toEqual({ ok: true, value: 'pong' });
    m.bus.read(m.slotAddr(0), 4);
    const stats = m.control({ op: 'stats' }) as { ok: true; value: { reads: number; bus: { kind: string } } };
    expect(stats.value.reads).toBe(1);
    expect(stats.value.bus.kind).toBe(kind);
    await Promise.all([m.close(), m.close()]);
    expect(() => m.bus.read(m.slotAddr(0), 4)).toThrow(expect.objectContaining({ code: 'EMU_CLOSED' }));
  });
});

describe('process lifetime', () => {
  // A child process that boots a machine and ends its script: it must exit
  // on its own, with or without close(), and survive a crashing worker.
  function runChild(body: string): Promise<{ code: number | null; out: string; err: string }> {
    const machineUrl = new URL('../../emulator/machine.js', import.meta.url).href;
    const script = `
      const { Machine } = await import(${JSON.stringify(machineUrl)});
      const m = await Machine.create({ devices: ['fake'], slots: 2, ramSize: 1 << 20, boardModule: ${JSON.stringify(FAKE_BOARD_MODULE.href)} });
      ${body}
    `;
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`child did not exit: ${out} ${err}`));
      }, 15_000);
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, out, err });
      });
    });
  }

  it('exits after close()', async () => {
    const r = await runChild(`console.log(m.bus.read(m.slotAddr(0), 4).toString(16)); await m.close(); console.log('closed');`);
    expect(r.err).toBe('');
    expect(r.out).toBe('74726976\nclosed\n');
    expect(r.code).toBe(0);
  });

  it('exits even if the script forgets close()', async () => {
    const r = await runChild(`console.log(m.bus.read(m.slotAddr(0), 4).toString(16));`);
    expect(r.out).toBe('74726976\n');
    expect(r.code).toBe(0);
  });

  it('survives a crashing worker and exits normally', async () => {
    const r = await runChild(`
      try { m.control({ op: 'fault', kind: 'crash' }); } catch (e) { console.log(e.code); }
      await new Promise((r) => setTimeout(r, 50));
      try { m.bus.read(m.slotAddr(0), 4); } catch (e) { console.log(e.code); }
      await m.close();
      console.log('done');
    `);
    expect(r.out).toBe('EMU_WORKER_DEAD\nEMU_WORKER_DEAD\ndone\n');
    expect(r.code).toBe(0);
  });
});

describe('guest RAM supplied by the caller', () => {
  it('uses a shared WebAssembly.Memory as guest RAM: the worker device writes into it', async () => {
    const { VirtioSystem } = await import('../../tools/system.js');
    const { virtioRngRead } = await import('../../core/drivers/rng.js');
    const memory = new WebAssembly.Memory({ initial: 256, maximum: 256, shared: true });
    const ram = memory.buffer as unknown as SharedArrayBuffer;
    const before = new Uint8Array(ram).slice();
    const sys = await VirtioSystem.create({ devices: ['rng'], ram });
    try {
      expect(sys.machine.mem.size).toBe(256 * 65536);
      expect(sys.machine.mem.u8.buffer).toBe(ram);
      const out = virtioRngRead(sys.device(0)!, 64);
      expect(out).toBeInstanceOf(Uint8Array);
      expect((out as Uint8Array).length).toBe(64);
      // The ring and the entropy the device wrote are in the wasm memory itself.
      const after = new Uint8Array(ram);
      let changed = 0;
      for (let i = 0; i < after.length; i++) if (after[i] !== before[i]) changed++;
      expect(changed).toBeGreaterThan(64);
    } finally {
      await sys.close();
    }
  });

  it('refuses a ramSize that contradicts the supplied RAM', async () => {
    const ram = new SharedArrayBuffer(1 << 20);
    await expect(Machine.create({ ram, ramSize: 2 << 20 })).rejects.toThrow(/differs from the supplied RAM/);
  });
});
