// The bank of virtio-mmio windows as a board region: one 0x200-byte window
// per slot at config.mmioBase + 0x200 * slot, a register file where a
// virtio-mmio device (v2 or legacy) is plugged, an empty slot elsewhere.
import type { AccessWidth } from '../../core/bus.js';
import { MMIO_WINDOW_SIZE } from '../../core/uapi/mmio.js';
import type { Region, RegionDevice, RegionEnv, RegionSlotState, RegionSnapshots } from '../region.js';
import type { DeviceCore } from '../virtio/device-core.js';
import { EmptySlot } from './empty-slot.js';
import { MmioRegisterFile, type MmioRegisterState } from './register-file.js';
import type { CoreState } from '../virtio/device-core.js';
import { SnapshotError } from '../snapshot/fields.js';
import type { MmioWindow } from './window.js';

/** Largest config space a virtio-mmio window can show (0x100..0x1ff). */
const MMIO_CONFIG_MAX = MMIO_WINDOW_SIZE - 0x100;

export class MmioBank implements Region {
  readonly base: number;
  readonly size: number;
  readonly snapshots: RegionSnapshots = {
    save: (slot, opts) => {
      const f = this.file(slot);
      return { registers: f.saveState(), device: f.core.saveState(opts) };
    },
    check: (slot, state, path, opts) => this.file(slot).checkState(state.registers, state.device, `${path}.registers`, `${path}.device`, opts),
    load: (slot, state, opts) => this.file(slot).loadState(state.registers as MmioRegisterState, state.device as CoreState, opts),
  };
  private readonly windows: MmioWindow[] = [];
  private readonly files: (MmioRegisterFile | null)[] = [];

  constructor(env: RegionEnv, devices: RegionDevice[]) {
    const { config } = env;
    this.base = config.mmioBase;
    this.size = config.slots * MMIO_WINDOW_SIZE;
    if (this.size > 0 && this.base < config.ramBase + config.ramSize && config.ramBase < this.base + this.size) {
      throw new Error('board: the virtio-mmio windows overlap guest RAM');
    }
    const bySlot = new Map(devices.map((d) => [d.slot, d]));
    for (let slot = 0; slot < config.slots; slot++) {
      const d = bySlot.get(slot);
      if (!d) {
        this.windows.push(new EmptySlot());
        this.files.push(null);
        continue;
      }
      if (d.model.configSize > MMIO_CONFIG_MAX) {
        throw new Error(`board: ${d.spec.type} config space of ${d.model.configSize} bytes does not fit a virtio-mmio window`);
      }
      const file = new MmioRegisterFile(d.model, {
        version: d.spec.transport === 'mmio' ? 2 : 1,
        line: slot,
        irq: env.irq,
        ram: env.ram,
        scheduler: env.scheduler,
        withheld: d.withheld,
        ...(env.weight !== undefined ? { weight: env.weight } : {}),
      });
      this.windows.push(file);
      this.files.push(file);
    }
  }

  read(offset: number, width: AccessWidth): number {
    const w = this.window(offset, width, 'read');
    return w ? w.read(offset % MMIO_WINDOW_SIZE, width) >>> 0 : 0;
  }

  write(offset: number, width: AccessWidth, value: number): void {
    this.window(offset, width, 'write')?.write(offset % MMIO_WINDOW_SIZE, width, value);
  }

  /** The window holding [offset, offset + width); an access across its end is a guest error of that slot. */
  private window(offset: number, width: AccessWidth, dir: 'read' | 'write'): MmioWindow | null {
    const w = this.windows[Math.floor(offset / MMIO_WINDOW_SIZE)];
    if (!w) return null;
    if ((offset % MMIO_WINDOW_SIZE) + width > MMIO_WINDOW_SIZE) {
      w.counters.guestErrors++;
      w.counters.lastGuestError = `${width}-byte ${dir} crossing the end of the window`;
      return null;
    }
    return w;
  }

  reset(): void {
    for (const f of this.files) f?.reset();
  }

  private file(slot: number): MmioRegisterFile {
    const f = this.files[slot];
    if (!f) throw new SnapshotError(`slot ${slot}: no virtio-mmio device`);
    return f;
  }

  core(slot: number): DeviceCore | undefined {
    return this.files[slot]?.core;
  }

  state(slot: number): RegionSlotState | undefined {
    const w = this.windows[slot];
    if (!w) return undefined;
    const f = this.files[slot];
    return { counters: w.counters, interruptStatus: f?.interruptStatus ?? 0, irqRaised: f?.irqRaised ?? 0 };
  }
}

export function createMmioBank(env: RegionEnv, devices: RegionDevice[]): Region {
  return new MmioBank(env, devices);
}
