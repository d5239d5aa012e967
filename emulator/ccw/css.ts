// The channel subsystem as a board region: one subchannel per board slot
// (subchannel number = slot, I/O interrupt = the slot's line), each with its
// register window at PLATFORM.CSS_BASE + schid * PLATFORM.CSS_WINDOW_SIZE.
// Slots without a ccw device have a subchannel with no device (CuType 0,
// cc 3), so a driver can scan every slot, as Linux's css scan does.
import { PLATFORM, type AccessWidth } from '../../core/bus.js';
import type { Region, RegionDevice, RegionEnv, RegionSlotState } from '../region.js';
import type { DeviceOptionValue } from '../board-contract.js';
import type { DeviceCore } from '../virtio/device-core.js';
import { Subchannel } from './subchannel.js';
import { CCW_NO_REVISIONS, VirtioCcwProxy } from './virtio-proxy.js';
import { VIRTIO_CCW_REV_MAX } from '../../core/uapi/ccw.js';

/** Options of a ccw device spec that configure the transport, not the model. */
export const CCW_OPTION_PREFIX = 'ccw.';

export interface CcwTransportOptions {
  /** Highest revision the device accepts (QEMU's max_revision); -1: no SET_VIRTIO_REV at all. */
  maxRevision: number;
}

/** Parse the 'ccw.*' options of a device spec; throws on an unknown or bad one. */
export function parseCcwOptions(type: string, options: Readonly<Record<string, DeviceOptionValue>> = {}): CcwTransportOptions {
  const out: CcwTransportOptions = { maxRevision: VIRTIO_CCW_REV_MAX };
  for (const [k, v] of Object.entries(options)) {
    if (!k.startsWith(CCW_OPTION_PREFIX)) continue;
    const name = k.slice(CCW_OPTION_PREFIX.length);
    if (name !== 'max_revision') throw new Error(`${type}: unknown ccw option '${k}' (known: ccw.max_revision)`);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < CCW_NO_REVISIONS || v > VIRTIO_CCW_REV_MAX) {
      throw new Error(`${type}: ccw.max_revision must be an integer from ${CCW_NO_REVISIONS} to ${VIRTIO_CCW_REV_MAX}`);
    }
    out.maxRevision = v;
  }
  return out;
}

export class ChannelSubsystem implements Region {
  readonly base = PLATFORM.CSS_BASE;
  readonly size: number;
  readonly subchannels: Subchannel[] = [];

  constructor(env: RegionEnv, devices: RegionDevice[]) {
    const { config, ram, irq, scheduler } = env;
    const size = config.slots * PLATFORM.CSS_WINDOW_SIZE;
    const overlapsRam = size > 0 && this.base < config.ramBase + config.ramSize && config.ramBase < this.base + size;
    if (overlapsRam && devices.length > 0) throw new Error('board: the channel subsystem windows overlap guest RAM');
    // A board whose RAM covers the windows and has no ccw device has no channel subsystem.
    this.size = overlapsRam ? 0 : size;
    const bySlot = new Map(devices.map((d) => [d.slot, d]));
    for (let slot = 0; slot < this.size / PLATFORM.CSS_WINDOW_SIZE; slot++) {
      const d = bySlot.get(slot);
      let sch: Subchannel;
      if (d) {
        const opts = parseCcwOptions(d.spec.type, d.spec.options);
        const proxy = new VirtioCcwProxy({
          model: d.model,
          ram,
          scheduler,
          ...(env.weight !== undefined ? { weight: env.weight } : {}),
          maxRevision: opts.maxRevision,
          withheld: d.withheld,
          interrupt: () => sch.conditionalInterrupt(),
        });
        sch = new Subchannel(slot, slot, { ram, irq, scheduler }, proxy);
      } else {
        sch = new Subchannel(slot, slot, { ram, irq, scheduler }, null);
      }
      this.subchannels.push(sch);
    }
  }

  read(offset: number, width: AccessWidth): number {
    const sch = this.window(offset, width);
    return sch ? sch.read(offset % PLATFORM.CSS_WINDOW_SIZE, width) : 0;
  }

  write(offset: number, width: AccessWidth, value: number): void {
    this.window(offset, width)?.write(offset % PLATFORM.CSS_WINDOW_SIZE, width, value);
  }

  /** The subchannel whose window holds [offset, offset + width); an access across two is refused. */
  private window(offset: number, width: AccessWidth): Subchannel | null {
    const sch = this.subchannels[Math.floor(offset / PLATFORM.CSS_WINDOW_SIZE)];
    if (!sch) return null;
    if ((offset % PLATFORM.CSS_WINDOW_SIZE) + width > PLATFORM.CSS_WINDOW_SIZE) {
      sch.device?.guestError(`${width}-byte access crossing the end of the subchannel window`);
      return null;
    }
    return sch;
  }

  reset(): void {
    for (const s of this.subchannels) s.reset();
  }

  core(slot: number): DeviceCore | undefined {
    return this.subchannels[slot]?.device?.core;
  }

  /** Only slots with a ccw device report here; the others are the mmio bank's. */
  state(slot: number): RegionSlotState | undefined {
    const core = this.core(slot);
    return core ? { counters: core.counters, interruptStatus: 0, irqRaised: 0 } : undefined;
  }
}

export function createChannelSubsystem(env: RegionEnv, devices: RegionDevice[]): Region {
  return new ChannelSubsystem(env, devices);
}
