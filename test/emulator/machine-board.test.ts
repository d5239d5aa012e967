// A machine with the real board (emulator/board.ts) behind the worker bus.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REG } from '../../core/uapi/mmio.js';
import { VIRTIO_ID_RNG } from '../../core/uapi/ids.js';
import { Machine } from '../../emulator/machine.js';

describe('machine with an rng device on the real board', () => {
  let m: Machine;
  beforeAll(async () => {
    m = await Machine.create({ devices: ['rng'], slots: 8, ramSize: 1 << 20 });
  });
  afterAll(async () => {
    await m?.close();
  });

  it('identifies slot 0 as a virtio-mmio v2 rng through the worker', () => {
    expect(m.busKind).toBe('worker');
    const base = m.slotAddr(0);
    expect(m.bus.read(base + REG.MagicValue, 4)).toBe(0x74726976);
    expect(m.bus.read(base + REG.Version, 4)).toBe(2);
    expect(m.bus.read(base + REG.DeviceID, 4)).toBe(VIRTIO_ID_RNG);
  });

  it('shows an empty slot as DeviceID 0', () => {
    const base = m.slotAddr(1);
    expect(m.bus.read(base + REG.MagicValue, 4)).toBe(0x74726976);
    expect(m.bus.read(base + REG.DeviceID, 4)).toBe(0);
    expect(m.bus.read(m.slotAddr(7) + REG.DeviceID, 4)).toBe(0);
  });

  it('answers ping and stats over the control plane', () => {
    expect(m.control({ op: 'ping' })).toEqual({ ok: true, value: 'pong' });
    const stats = m.control({ op: 'stats' });
    expect(stats.ok).toBe(true);
    expect((stats as { value: { bus: { kind: string; reads: number } } }).value.bus).toMatchObject({ kind: 'worker' });
  });
});
