// The Linux kernel instance when things go wrong: a device that refuses
// features, BUG() in Linux's code and in a test driver, WARN_ON and
// might_sleep as data, a wait no interrupt completes, the device worker dying
// or hanging. Nothing hangs; a dead instance refuses every later call.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BusError } from '../../core/bus.js';
import { REG } from '../../core/uapi/mmio.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FAILED,
  VIRTIO_CONFIG_S_FEATURES_OK,
} from '../../core/uapi/status.js';
import type { BoardStats } from '../../emulator/board.js';
import { Machine } from '../../emulator/machine.js';
import { LINUX_SRC_DIR, LinuxBugError, LinuxCallError, LinuxDeadError, LinuxKernel, type LinuxSystem } from '../../linux/host/index.js';
import { boot, built, closeAllAfterEach, lineOf } from './helpers.js';

const ROOT = path.resolve(LINUX_SRC_DIR, '..', '..', '..');
const ERESTARTSYS = 512;

function notifications(sys: LinuxSystem, slot: number): number {
  const r = sys.machine.control({ op: 'stats' });
  if (!r.ok) throw new Error(r.error);
  return (r.value as BoardStats).slots[slot]!.notifications;
}

describe.skipIf(!built)('Linux kernel faults', () => {
  closeAllAfterEach();

  it('a device that refuses FEATURES_OK: probe fails, FAILED is set, Linux says why; a re-probe after remove binds', async () => {
    const sys = await boot({
      devices: ['rng'],
      beforeBoot: (m) => {
        const r = m.control({ op: 'inject', slot: 0, event: 'refuse-features' });
        if (!r.ok) throw new Error(r.error);
      },
    });
    const d = sys.kernel.device(0)!;
    expect(d.dev).toBe('virtio0');
    expect(d.driver).toBeNull();
    expect(d.rng).toBeNull();
    expect(d.status & VIRTIO_CONFIG_S_FAILED).toBe(VIRTIO_CONFIG_S_FAILED);
    expect(d.status & (VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK)).toBe(0);
    // virtio_features_ok(): the status it read back, in hex.
    const readBack = (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER).toString(16);
    expect(sys.kernel.log).toEqual([
      { level: 'err', loglevel: 3, dev: 'virtio0', driver: 'virtio_rng', msg: `virtio: device refuses features: ${readBack}` },
    ]);
    expect(sys.kernel.warnings).toEqual([]);
    // The injection refuses once: a fresh probe (reset first) binds.
    sys.kernel.remove(0);
    expect(sys.kernel.probe(0)).toBe(true);
    expect(sys.kernel.device(0)).toMatchObject({ driver: 'virtio_rng', status: 0xf });
    expect(sys.kernel.rngRead(0, 16).length).toBe(16);
  });

  it('legacy devices never see FEATURES_OK, so a refusal does not matter to them', async () => {
    const sys = await boot({
      devices: [{ type: 'rng', transport: 'mmio-legacy' }],
      beforeBoot: (m) => void m.control({ op: 'inject', slot: 0, event: 'refuse-features' }),
    });
    expect(sys.kernel.device(0)).toMatchObject({ driver: 'virtio_rng', status: VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK });
    expect(sys.kernel.log).toEqual([]);
  });

  it("virtio.c's own BUG() becomes a LinuxBugError naming the file and line; the instance is dead, its irq handler gone", async () => {
    const sys = await boot({ devices: ['rng'] });
    const src = fs.readFileSync(path.join(LINUX_SRC_DIR, 'drivers/virtio/virtio.c'), 'utf8');
    const line = lineOf(src, /^void virtio_check_driver_offered_feature\(/, /^\tBUG\(\);/);
    let err: unknown;
    try {
      sys.kernel.test.checkFeature(0, 0); // virtio-rng offers no feature at all
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LinuxBugError);
    expect(err).toMatchObject({ kind: 'BUG', file: 'drivers/virtio/virtio.c', line, func: 'virtio_check_driver_offered_feature', what: 'BUG()' });
    expect((err as Error).message).toContain(`drivers/virtio/virtio.c:${line}`);
    expect(sys.kernel.dead).toBe(true);
    expect(sys.kernel.deathCause).toBe(err);
    expect(() => sys.kernel.devices()).toThrow(LinuxDeadError);
    expect(() => sys.kernel.rngRead(0, 16)).toThrow(/dead.*drivers\/virtio\/virtio\.c/);
    // The machine is fine; the dead kernel no longer takes the device's interrupts.
    expect(sys.machine.bus.read(sys.machine.slotAddr(0) + REG.Status, 4)).toBe(0xf);
    expect(sys.machine.control({ op: 'inject', slot: 0, event: 'config-change' }).ok).toBe(true);
    expect(sys.machine.irq.isPending(0)).toBe(true);
    expect(sys.machine.irq.deliverPending()).toBe(0);
  });

  it('BUG() and spinlock recursion in a test driver name linux/drivers/lx-test.c and the line', async () => {
    const src = fs.readFileSync(path.join(ROOT, 'linux/drivers/lx-test.c'), 'utf8');
    const sys = await boot({ devices: ['rng'] });
    expect(() => sys.kernel.test.bug()).toThrow(LinuxBugError);
    expect(sys.kernel.deathCause).toMatchObject({ file: 'linux/drivers/lx-test.c', line: lineOf(src, /lx_test_bug\(void\)/, /BUG\(\);/), func: 'lx_test_bug' });
    const sys2 = await boot({ devices: ['rng'] });
    expect(() => sys2.kernel.test.spinRecursion()).toThrow(/spinlock recursion/);
    // The second spin_lock() is the one reported.
    const first = lineOf(src, /lx_test_spin_recursion\(void\)/, /spin_lock\(/);
    expect(sys2.kernel.deathCause).toMatchObject({ file: 'linux/drivers/lx-test.c', line: first + 1, what: 'spinlock recursion' });
  });

  it('WARN_ON, WARN_ON_ONCE and might_sleep in atomic context are recorded as data with file and line; the kernel goes on', async () => {
    const src = fs.readFileSync(path.join(ROOT, 'linux/drivers/lx-test.c'), 'utf8');
    const sys = await boot({ devices: ['rng'] });
    expect(sys.kernel.warnings).toEqual([]);
    expect(sys.kernel.test.warn(false)).toBe(0);
    expect(sys.kernel.warnings).toEqual([]);
    expect(sys.kernel.test.warn(true)).toBe(2);
    expect(sys.kernel.test.warn(true)).toBe(2);
    const warnOn = lineOf(src, /lx_test_warn\(int cond\)/, /WARN_ON\(cond\)/);
    const once = lineOf(src, /lx_test_warn\(int cond\)/, /WARN_ON_ONCE\(cond\)/);
    expect(sys.kernel.warnings.map((w) => [w.kind, w.what, w.where, w.file, w.line])).toEqual([
      ['WARN_ON', 'cond', 'lx_test_warn', 'linux/drivers/lx-test.c', warnOn],
      ['WARN_ON', 'cond', 'lx_test_warn', 'linux/drivers/lx-test.c', once],
      ['WARN_ON', 'cond', 'lx_test_warn', 'linux/drivers/lx-test.c', warnOn],
    ]);
    sys.kernel.test.sleepInAtomic();
    expect(sys.kernel.warnings[3]).toMatchObject({
      kind: 'sleep-in-atomic',
      file: 'linux/drivers/lx-test.c',
      line: lineOf(src, /lx_test_sleep_in_atomic\(void\)/, /might_sleep\(\);/),
      where: 'lx_test_sleep_in_atomic',
    });
    expect(sys.kernel.dead).toBe(false);
    expect(sys.kernel.rngRead(0, 16).length).toBe(16);
  });

  it("counts might_sleep() per site and flags it as noirq-context while the host says a noirq phase runs", async () => {
    const sys = await boot({ devices: ['rng'] });
    const site = [...sys.kernel.mightSleep.keys()].find((k) => k.startsWith('drivers/virtio/virtio.c:') && k.endsWith(' virtio_add_status'));
    expect(site).toBeDefined();
    const probeCount = sys.kernel.mightSleep.get(site!)!;
    expect(probeCount).toBeGreaterThan(0);
    sys.kernel.noirqDepth = 1;
    sys.kernel.unbindDriver(0);
    sys.kernel.noirqDepth = 0;
    expect(sys.kernel.mightSleep.get(site!)!).toBeGreaterThan(probeCount);
    const flagged = sys.kernel.warnings.filter((w) => w.kind === 'noirq-context');
    expect(flagged.length).toBeGreaterThan(0);
    expect(flagged.every((w) => w.what === 'might_sleep()')).toBe(true);
    expect(flagged.map((w) => w.where)).toContain('virtio_add_status');
  });

  it('a wait no interrupt completes ends in -ERESTARTSYS at the host deadline, not a hang; the latched interrupt completes it later', async () => {
    const sys = await boot({ devices: ['rng'], waitTimeoutMs: 300 });
    sys.machine.irq.mask(0);
    let err: unknown;
    try {
      sys.kernel.rngRead(0, 64);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LinuxCallError);
    expect((err as LinuxCallError).errno).toBe(-ERESTARTSYS);
    expect(sys.kernel.dead).toBe(false);
    const note = sys.kernel.log.find((m) => m.origin === 'host')!;
    expect(note.msg).toMatch(/^wait_for_completion_killable at drivers\/char\/hw_random\/virtio-rng\.c:\d+ \(virtio_read\)/);
    sys.machine.irq.unmask(0);
    const b = sys.kernel.rngRead(0, 64);
    expect(b.length).toBe(64);
  });

  it("pins 6.12.118's copy_data(): after a partial read it serves avail - data_idx bytes, drops the rest, and a blocking read can wait with no request queued", async () => {
    const sys = await boot({ devices: ['rng'], waitTimeoutMs: 300 });
    expect(sys.kernel.hwrngRead(0, 8, true).length).toBe(8);
    // data_avail 56, data_idx 8: min(64, 56 - 8) bytes, not 56.
    expect(sys.kernel.hwrngRead(0, 64, false).length).toBe(48);
    // data_idx 56 >= data_avail 8: the 8 bytes are dropped and a new request is queued.
    const kicks = notifications(sys, 0);
    expect(sys.kernel.hwrngRead(0, 64, false).length).toBe(0);
    expect(notifications(sys, 0)).toBe(kicks + 1);
    expect(sys.kernel.hwrngRead(0, 64, true).length).toBe(64);
    // The same partial read, then a blocking one: 48 bytes copied, then a wait
    // for a completion no request will bring.
    sys.kernel.hwrngRead(0, 8, true);
    expect(() => sys.kernel.hwrngRead(0, 64, true)).toThrow(/-ERESTARTSYS/);
    expect(sys.kernel.dead).toBe(false);
    // The hw_random core's reads (rng_buffer_size() each) never take that path.
    expect(sys.kernel.rngRead(0, 200).length).toBe(200);
  });

  it('a dead device worker is a BusError on the next register access; the instance is dead, nothing hangs', async () => {
    const sys = await boot({ devices: ['rng', 'rng'] });
    sys.kernel.rngRead(0, 64);
    await sys.machine.terminateWorker();
    let err: unknown;
    try {
      sys.kernel.devices(); // get_status(): a trapped read
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BusError);
    expect((err as BusError).code).toBe('EMU_WORKER_DEAD');
    expect(sys.kernel.dead).toBe(true);
    expect(sys.kernel.deathCause).toBe(err);
    expect(() => sys.kernel.rngRead(1, 64)).toThrow(LinuxDeadError);
    expect(() => sys.kernel.remove(0)).toThrow(/dead.*worker/);
  });

  it('a dead worker met inside remove() (a Status write in virtio_reset_device) also surfaces as the BusError', async () => {
    const sys = await boot({ devices: ['rng'] });
    await sys.machine.terminateWorker();
    expect(() => sys.kernel.remove(0)).toThrow(BusError);
    expect(sys.kernel.dead).toBe(true);
  });

  it('a hanging worker is a BusError EMU_TRAP_TIMEOUT within the trap deadline', async () => {
    const sys = await boot({ devices: ['rng'], trapTimeoutMs: 200 });
    expect(sys.machine.control({ op: 'fault', kind: 'hang', ms: 2000 }).ok).toBe(true);
    let err: unknown;
    try {
      sys.kernel.device(0);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BusError);
    expect((err as BusError).code).toBe('EMU_TRAP_TIMEOUT');
    expect(sys.kernel.dead).toBe(true);
  });

  it("refuses a machine whose RAM is not the kernel's memory, and a memory that already held a kernel", async () => {
    const memory = await LinuxKernel.createMemory();
    const other = await Machine.create({ devices: ['rng'], slots: 2, ramSize: memory.buffer.byteLength });
    try {
      await expect(LinuxKernel.boot({ machine: other, memory })).rejects.toThrow(/not this kernel's memory/);
    } finally {
      await other.close();
    }
    const sys = await boot({ devices: ['rng'] });
    await expect(LinuxKernel.boot({ machine: sys.machine, memory: sys.kernel.memory })).rejects.toThrow(/already held a kernel/);
    expect(sys.kernel.device(0)!.driver).toBe('virtio_rng');
  });
});
