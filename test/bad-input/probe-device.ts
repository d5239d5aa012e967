// A device model for bad-input tests that need what virtio-rng lacks: two
// queues (0 answers at once, 1 holds chains until told to complete them, so
// requests can be in flight), a 64-bit config field that changes on demand
// (torn reads), and a feature with a prerequisite. Registered for in-thread
// boards only (the device worker knows the built-in models alone).
import { VIRTIO_F_RING_PACKED, VIRTIO_F_RING_RESET, VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC, bit, hasBit } from '../../core/uapi/features.js';
import type { Chain, ConfigWidth, DeviceContext, DeviceModel } from '../../emulator/devices/device.js';
import { customDeviceType, registerDeviceType } from '../../emulator/devices/catalog.js';

export const PROBE_TYPE = customDeviceType('bi-probe');
export const PROBE_DEVICE_ID = 0x71;
/** Device feature bits: B needs A (validateFeatures refuses B alone). */
export const PROBE_F_A = 0;
export const PROBE_F_B = 1;
export const ECHO_Q = 0;
export const HOLD_Q = 1;
/** Byte the device writes into held chains when it completes them. */
export const PROBE_FILL = 0x5a;

export class ProbeDevice implements DeviceModel {
  /** The instance most recently created (in-thread boards only). */
  static last: ProbeDevice | null = null;
  readonly deviceId = PROBE_DEVICE_ID;
  readonly name = 'bi-probe';
  readonly features =
    bit(VIRTIO_F_VERSION_1) |
    bit(VIRTIO_RING_F_INDIRECT_DESC) |
    bit(VIRTIO_RING_F_EVENT_IDX) |
    bit(VIRTIO_F_RING_PACKED) |
    bit(VIRTIO_F_RING_RESET) |
    bit(PROBE_F_A) |
    bit(PROBE_F_B);
  readonly queueNumMax = [256, 256];
  /** 0..7: a read-only u64 counter; 8..15: scratch the driver may write. */
  readonly configSize = 16;
  held: Chain[] = [];
  /** A buggy model that keeps its chains across a reset: the core must still protect guest memory. */
  keepAcrossReset = false;
  private counter = 0n;
  private readonly scratch = new Uint8Array(8);
  private ctx: DeviceContext | null = null;

  constructor() {
    ProbeDevice.last = this;
  }

  validateFeatures(f: bigint): boolean {
    return !hasBit(f, PROBE_F_B) || hasBit(f, PROBE_F_A);
  }

  readConfig(offset: number, width: ConfigWidth): number {
    const bytes = new Uint8Array(16);
    const v = new DataView(bytes.buffer);
    v.setBigUint64(0, this.counter, true);
    bytes.set(this.scratch, 8);
    let out = 0;
    for (let i = 0; i < width; i++) out |= bytes[offset + i]! << (8 * i);
    return out >>> 0;
  }

  writeConfig(offset: number, width: ConfigWidth, value: number): void {
    for (let i = 0; i < width; i++) {
      const o = offset + i;
      if (o >= 8) this.scratch[o - 8] = (value >>> (8 * i)) & 0xff;
    }
  }

  reset(): void {
    if (!this.keepAcrossReset) this.held = [];
  }

  queueReset(q: number): void {
    if (q === HOLD_Q && !this.keepAcrossReset) this.held = [];
  }

  handleQueue(ctx: DeviceContext, q: number): void {
    this.ctx = ctx;
    for (let c = ctx.pop(q); c; c = ctx.pop(q)) {
      if (q === HOLD_Q) {
        this.held.push(c);
        continue;
      }
      const data = new Uint8Array(Math.min(c.readableBytes, c.writableBytes));
      c.read(data);
      ctx.pushUsed(c, c.write(data));
    }
  }

  /** Complete every held chain: fill its writable bytes, put it on the used ring. */
  completeHeld(): void {
    for (const c of this.held) {
      const n = c.write(new Uint8Array(c.writableBytes).fill(PROBE_FILL));
      this.ctx?.pushUsed(c, n);
    }
    this.held = [];
  }

  inject(ctx: DeviceContext, event: string): boolean {
    this.ctx = ctx;
    if (event === 'complete') {
      this.completeHeld();
      return true;
    }
    if (event === 'tick') {
      // Both halves change, so a 2×32-bit read across the change is visibly torn.
      this.counter = (this.counter + 0x1_0000_0001n) & 0xffff_ffff_ffff_ffffn;
      ctx.configChanged();
      return true;
    }
    return false;
  }
}

registerDeviceType(PROBE_TYPE, () => new ProbeDevice());
