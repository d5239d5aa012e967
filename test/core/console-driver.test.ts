// The virtio-console driver (core/drivers/console.ts) on the real machine:
// transmit to a file sink, input injected by the host arrives through the
// interrupt path, an in= file is read at activation, resize reaches the
// driver as a config change, and freeze/restore (suspend, hibernation) keep
// the port working.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { virtconsInfo, virtconsRead, virtconsReadWait, virtconsStats, virtconsWrite, virtioConsoleDriver } from '../../core/drivers/console.js';
import { driverByName } from '../../core/drivers/index.js';
import { kernel } from '../../core/kernel.js';
import { EAGAIN, ETIMEDOUT } from '../../core/uapi/errno.js';
import type { DeviceOptionValue } from '../../emulator/board-contract.js';
import { type PowerModel, VirtioSystem } from '../../tools/system.js';
import { virtconsOptions } from '../../core/drivers/console.js';

const dir = mkdtempSync(join(tmpdir(), 'console-driver-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const systems: VirtioSystem[] = [];
afterEach(async () => {
  virtconsOptions.timeoutMs = 5000;
  await Promise.all(systems.splice(0).map((s) => s.close()));
  kernel.clear();
});

let files = 0;
function sink(): string {
  return join(dir, `out-${files++}.txt`);
}

async function boot(options: Record<string, DeviceOptionValue>, bus: 'worker' | 'inthread' = 'worker') {
  const sys = await VirtioSystem.create({ devices: [{ type: 'console', options }], drivers: [virtioConsoleDriver], bus });
  systems.push(sys);
  const vdev = sys.device(0)!;
  expect(vdev.driver).toBe(virtioConsoleDriver);
  return { sys, vdev };
}

const text = (b: Uint8Array | number): string => (typeof b === 'number' ? `errno ${b}` : new TextDecoder().decode(b));

function input(sys: VirtioSystem, data: string): void {
  expect(sys.machine.control({ op: 'inject', slot: 0, event: 'input', args: { data } })).toEqual({ ok: true });
}

describe.each(['worker', 'inthread'] as const)('port 0 over the %s bus', (bus) => {
  it('posts receive buffers, transmits to the file sink and counts lines', async () => {
    const out = sink();
    const { vdev } = await boot({ out }, bus);
    const port = virtconsInfo(vdev)!.port;
    expect(port.inVq!.numFree).toBe(0); // fill_queue filled the ring
    expect(vdev.vqs.map((q) => q.name)).toEqual(['input', 'output']);
    expect(virtconsWrite(vdev, 'hello\n')).toBe(6);
    expect(virtconsWrite(vdev, 'second line\nthird')).toBe(17);
    expect(readFileSync(out, 'utf8')).toBe('hello\nsecond line\nthird');
    expect(virtconsStats(vdev)).toMatchObject({ bytesSent: 23, buffersSent: 2, linesSent: 2, errors: 0 });
    // every transmit buffer came back and was freed
    expect(port.outVq!.numFree).toBe(port.outVq!.getVringSize());
  });

  it('input injected by the host arrives, in order, and the receive buffers go back', async () => {
    const { sys, vdev } = await boot({ out: 'none' }, bus);
    input(sys, 'abc');
    expect(text(virtconsReadWait(vdev, 3))).toBe('abc');
    input(sys, 'de');
    input(sys, 'f\n');
    expect(text(virtconsReadWait(vdev, 4))).toBe('def\n');
    expect(text(virtconsRead(vdev))).toBe('');
    const port = virtconsInfo(vdev)!.port;
    expect(port.stats.bytesReceived).toBe(7);
    expect(port.inVq!.numFree).toBe(0);
  });
});

describe('console details', () => {
  it('a transmit larger than a page goes out as several buffers', async () => {
    const out = sink();
    const { vdev } = await boot({ out });
    const big = `${'x'.repeat(10_000)}\n`;
    expect(virtconsWrite(vdev, big)).toBe(big.length);
    expect(readFileSync(out, 'utf8')).toBe(big);
    expect(virtconsStats(vdev).buffersSent).toBe(3);
  });

  it('the in= file is delivered at activation', async () => {
    const inFile = join(dir, 'in.txt');
    writeFileSync(inFile, 'from a file\n');
    const { vdev } = await boot({ out: 'none', in: inFile });
    expect(text(virtconsReadWait(vdev, 12))).toBe('from a file\n');
  });

  it('a read that gets nothing times out with -ETIMEDOUT', async () => {
    const { vdev } = await boot({ out: 'none' });
    virtconsOptions.timeoutMs = 100;
    expect(virtconsReadWait(vdev, 1)).toBe(-ETIMEDOUT);
  });

  it('a resize reaches the driver as a config change', async () => {
    const { sys, vdev } = await boot({ out: 'none' });
    expect(virtconsInfo(vdev)!.port.ws).toBeNull();
    expect(sys.machine.control({ op: 'inject', slot: 0, event: 'resize', args: { cols: 132, rows: 43 } })).toEqual({ ok: true });
    sys.bus.irq.deliverPending();
    expect(virtconsInfo(vdev)!.port.ws).toEqual({ cols: 132, rows: 43 });
  });

  it('the registry entry transmits one line and counts it', async () => {
    const out = sink();
    const { vdev } = await boot({ out });
    const entry = driverByName('console')!;
    const r = entry.exercise(vdev, { bytes: 4096 });
    expect(r.failures).toEqual([]);
    expect(readFileSync(out, 'utf8')).toMatch(/^virtio-emu: virtio\d+ console check\n$/);
    expect(entry.stats(vdev)).toMatchObject({ requests: 1, errors: 0 });
  });
});

describe('system sleep', () => {
  it.each<PowerModel>(['retain', 'reset', 'fresh'])('after a suspend (power %s) the port transmits and receives; I/O while frozen is refused', async (power) => {
    const out = sink();
    const { sys, vdev } = await boot({ out });
    expect(virtconsWrite(vdev, 'before\n')).toBe(7);
    let during: number | null = null;
    sys.dpm.hooks.push((e) => {
      if (e.phase === 'suspend' && e.when === 'after') during = virtconsWrite(vdev, 'frozen\n');
    });
    const ring = vdev.vqs[0];
    expect(sys.suspend({ power }).result).toBe(0);
    expect(during).toBe(-EAGAIN);
    expect(vdev.vqs[0]).not.toBe(ring); // remove_vqs + init_vqs
    expect(virtconsWrite(vdev, 'after\n')).toBe(6);
    expect(readFileSync(out, 'utf8')).toBe('before\nafter\n');
    input(sys, 'ping');
    expect(text(virtconsReadWait(vdev, 4))).toBe('ping');
    expect(kernel.warnings).toEqual([]);
  });

  it('input the host queued while the guest was asleep arrives after resume', async () => {
    const { sys, vdev } = await boot({ out: 'none' });
    sys.dpm.hooks.push((e) => {
      if (e.phase === 'suspend_noirq' && e.when === 'after') input(sys, 'while asleep');
    });
    expect(sys.suspend({ power: 'reset' }).result).toBe(0);
    expect(text(virtconsReadWait(vdev, 12))).toBe('while asleep');
  });

  it('after a hibernation with power loss the port works again', async () => {
    const out = sink();
    const { sys, vdev } = await boot({ out });
    expect(virtconsWrite(vdev, 'one\n')).toBe(4);
    expect(sys.hibernate({ power: 'fresh' }).result).toBe(0);
    expect(virtconsWrite(vdev, 'two\n')).toBe(4);
    expect(readFileSync(out, 'utf8')).toBe('one\ntwo\n');
    input(sys, 'back');
    expect(text(virtconsReadWait(vdev, 4))).toBe('back');
    expect(virtconsStats(vdev).linesSent).toBe(2);
    expect(kernel.warnings).toEqual([]);
  });
});
