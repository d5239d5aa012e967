// A small Board for testing the machine, the buses and the qtest server
// without the real register files. Each occupied slot has a few virtio-mmio
// shaped registers; QueueNotify schedules deferred work that sets
// InterruptStatus and raises the slot's line, as a real device would.
import { MAGIC_VALUE, MMIO_WINDOW_SIZE, REG, VIRTIO_MMIO_INT_CONFIG, VIRTIO_MMIO_INT_VRING } from '../../core/uapi/mmio.js';
import type { AccessWidth } from '../../core/bus.js';
import type { Board, BoardConfig, ControlRequest, ControlResponse, IrqLines } from '../../emulator/board-contract.js';
import { customDeviceType } from '../../emulator/devices/catalog.js';

/** The fake board's device type (it serves any type; tests name this one). */
export const FAKE_TYPE = customDeviceType('fake');
export const FAKE_DEVICE_ID = 0x7e;
export const FAKE_VENDOR_ID = 0x454b4146; // "FAKE"
/** Fake-only register: writing N arms a timer that raises a config interrupt after N ms. */
export const FAKE_TIMER = 0x0f0;
/** Fake-only register: reads the number of QueueNotify writes handled by deferred work. */
export const FAKE_NOTIFIED = 0x0f4;
const CONFIG_BYTES = 0x100;

interface Slot {
  status: number;
  queueSel: number;
  interruptStatus: number;
  notified: number;
  throwOnAccess: boolean;
  config: Uint8Array;
  configView: DataView;
}

class FakeBoard implements Board {
  private readonly slots: (Slot | null)[];
  /** Slots with a QueueNotify not yet processed, in order. */
  private readonly work: number[] = [];
  private readonly timers: { slot: number; at: number }[] = [];
  private reads = 0;
  private writes = 0;

  constructor(
    private readonly cfg: BoardConfig,
    private readonly irq: IrqLines,
  ) {
    this.slots = cfg.devices.map((d) => {
      if (!d) return null;
      const config = new Uint8Array(CONFIG_BYTES);
      return { status: 0, queueSel: 0, interruptStatus: 0, notified: 0, throwOnAccess: false, config, configView: new DataView(config.buffer) };
    });
  }

  private decode(addr: number): { slot: number; off: number } | null {
    const rel = addr - this.cfg.mmioBase;
    if (rel < 0 || rel >= this.cfg.slots * MMIO_WINDOW_SIZE) return null;
    return { slot: Math.floor(rel / MMIO_WINDOW_SIZE), off: rel % MMIO_WINDOW_SIZE };
  }

  read(addr: number, width: AccessWidth): number {
    this.reads++;
    const at = this.decode(addr);
    if (!at) return 0;
    const s = this.slots[at.slot];
    if (at.off >= REG.Config) {
      if (!s) return 0;
      const o = at.off - REG.Config;
      if (o + width > CONFIG_BYTES) return 0;
      return width === 1 ? s.config[o]! : width === 2 ? s.configView.getUint16(o, true) : s.configView.getUint32(o, true);
    }
    if (width !== 4) return 0;
    switch (at.off) {
      case REG.MagicValue:
        return MAGIC_VALUE;
      case REG.Version:
        return 2;
      case REG.DeviceID:
        return s ? FAKE_DEVICE_ID : 0;
    }
    if (!s) return 0;
    if (s.throwOnAccess) throw new Error(`fake device in slot ${at.slot} blew up`);
    switch (at.off) {
      case REG.VendorID:
        return FAKE_VENDOR_ID;
      case REG.QueueSel:
        return s.queueSel;
      case REG.InterruptStatus:
        return s.interruptStatus;
      case REG.Status:
        return s.status;
      case FAKE_NOTIFIED:
        return s.notified;
      default:
        return 0;
    }
  }

  write(addr: number, width: AccessWidth, value: number): void {
    this.writes++;
    const at = this.decode(addr);
    if (!at) return;
    const s = this.slots[at.slot];
    if (!s) return;
    if (s.throwOnAccess) throw new Error(`fake device in slot ${at.slot} blew up`);
    if (at.off >= REG.Config) {
      const o = at.off - REG.Config;
      if (o + width > CONFIG_BYTES) return;
      if (width === 1) s.config[o] = value;
      else if (width === 2) s.configView.setUint16(o, value, true);
      else s.configView.setUint32(o, value, true);
      return;
    }
    if (width !== 4) return;
    switch (at.off) {
      case REG.QueueSel:
        s.queueSel = value;
        break;
      case REG.QueueNotify:
        this.work.push(at.slot);
        break;
      case REG.InterruptACK:
        s.interruptStatus &= ~value;
        if (s.interruptStatus === 0) this.irq.lower(at.slot);
        break;
      case REG.Status:
        s.status = value;
        if (value === 0) {
          s.interruptStatus = 0;
          this.irq.lower(at.slot);
        }
        break;
      case FAKE_TIMER:
        this.timers.push({ slot: at.slot, at: performance.now() + value });
        break;
    }
  }

  private interrupt(slot: number, bit: number): void {
    const s = this.slots[slot];
    if (!s) return;
    s.interruptStatus |= bit;
    this.irq.raise(slot);
  }

  runDeferred(budget: number): boolean {
    const now = performance.now();
    for (let i = this.timers.length - 1; i >= 0; i--) {
      if (this.timers[i]!.at <= now) {
        this.interrupt(this.timers[i]!.slot, VIRTIO_MMIO_INT_CONFIG);
        this.timers.splice(i, 1);
      }
    }
    for (let n = 0; n < budget && this.work.length > 0; n++) {
      const slot = this.work.shift()!;
      this.slots[slot]!.notified++;
      this.interrupt(slot, VIRTIO_MMIO_INT_VRING);
    }
    return this.work.length > 0;
  }

  hasDeferred(): boolean {
    return this.work.length > 0;
  }

  nextTimerMs(): number {
    if (this.timers.length === 0) return Infinity;
    const first = Math.min(...this.timers.map((t) => t.at));
    return Math.max(0, first - performance.now());
  }

  control(req: ControlRequest): ControlResponse {
    switch (req.op) {
      case 'stats':
        return { ok: true, value: { reads: this.reads, writes: this.writes } };
      case 'inject':
        if (req.event === 'config') {
          this.interrupt(req.slot, VIRTIO_MMIO_INT_CONFIG);
          return { ok: true };
        }
        if (req.event === 'exit') process.exit(3);
        return { ok: false, error: `unknown event ${req.event}` };
      case 'fault':
        if (req.kind === 'throw-in-device' && req.slot !== undefined && this.slots[req.slot]) {
          this.slots[req.slot]!.throwOnAccess = true;
          return { ok: true };
        }
        return { ok: false, error: 'bad fault request' };
      default:
        return { ok: false, error: `unsupported control ${req.op}` };
    }
  }
}

export function createBoard(config: BoardConfig, _ram: Uint8Array, irq: IrqLines): Board {
  return new FakeBoard(config, irq);
}

/** For Machine.create({ boardModule }). */
export const FAKE_BOARD_MODULE = new URL('./fake-board.js', import.meta.url);
