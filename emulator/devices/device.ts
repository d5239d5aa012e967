// The transport-agnostic device model interface (the counterpart of QEMU's
// VirtIODevice subclasses). A model describes what the device offers and
// handles its queues through a DeviceContext; it never sees registers,
// interrupt lines or the transport that exposes it (virtio-mmio, legacy
// virtio-mmio, later virtio-ccw). The device core (emulator/virtio/) owns
// status, feature negotiation, the rings and every bounds check.
import {
  VIRTIO_F_RING_PACKED,
  VIRTIO_F_RING_RESET,
  VIRTIO_F_VERSION_1,
  VIRTIO_RING_F_EVENT_IDX,
  VIRTIO_RING_F_INDIRECT_DESC,
  bit,
} from '../../core/uapi/features.js';
import type { DeviceOptionValue } from '../board-contract.js';
import type { Chain } from '../vring/chain.js';
import type { SnapshotOptions } from '../snapshot/format.js';

export type { Chain };

export type ConfigWidth = 1 | 2 | 4;

/**
 * The device-independent features every model offers: VERSION_1 and the
 * ring features the device core implements for any device (indirect
 * descriptors, EVENT_IDX suppression, packed rings, per-queue reset). The
 * device option packed=false withholds VIRTIO_F_RING_PACKED (board.ts).
 */
export const RING_FEATURES =
  bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_RING_F_INDIRECT_DESC) | bit(VIRTIO_RING_F_EVENT_IDX) | bit(VIRTIO_F_RING_PACKED) | bit(VIRTIO_F_RING_RESET);

/** What a model may do to its device. One long-lived context per device instance. */
export interface DeviceContext {
  /** Negotiated features (0n until FEATURES_OK, or DRIVER_OK for legacy drivers). */
  readonly features: bigint;
  hasFeature(bit: number): boolean;
  /** DRIVER_OK is set and the device is not in DEVICE_NEEDS_RESET. */
  readonly running: boolean;
  /**
   * Pop the next available chain of `queue`, or null when the queue is empty,
   * not ready, the device is not running, the ring is malformed (the core has
   * then set DEVICE_NEEDS_RESET and parked the queue) or this invocation's work
   * budget is used up (the core then calls handleQueue again later).
   */
  pop(queue: number): Chain | null;
  /** Put a chain on its used ring with `len` bytes written (clamped to writableBytes). */
  pushUsed(chain: Chain, len: number): void;
  /**
   * Pop, serve and push every available chain of `queue` (as pop does, and
   * within the same work budget): `serve` gets each chain for the duration
   * of the call only and returns the used length. The chain handed over is
   * the queue's reusable record, dead once the call returns: no per-chain
   * allocation. For request/response devices (serveQueue).
   */
  serve(queue: number, serve: (chain: Chain) => number): void;
  /**
   * Send the used-buffer notification for queue now, subject to
   * VRING_AVAIL_F_NO_INTERRUPT / EVENT_IDX suppression. The core also does
   * this after every model entry point, so calling it is only needed to
   * notify early within a long handler.
   */
  notifyUsed(queue: number): void;
  /** Device-specific config changed: bumps ConfigGeneration, config interrupt if DRIVER_OK. */
  configChanged(): void;
  /** Unrecoverable device error: DEVICE_NEEDS_RESET (+ config interrupt if DRIVER_OK). */
  needsReset(reason: string): void;
  /** Run fn after ms (on the device's thread, via the board's deferred work). Cancelled by a device reset. */
  setTimer(ms: number, fn: () => void): number;
  clearTimer(id: number): void;
}

export interface DeviceModel {
  /** virtio device ID (core/uapi/ids.ts). */
  readonly deviceId: number;
  readonly name: string;
  /**
   * Offered features, including VERSION_1 and the ring features the device
   * core implements that this model wants: INDIRECT_DESC, EVENT_IDX, RING_RESET.
   */
  readonly features: bigint;
  /** QueueNumMax per queue (power of 2, ≤ 32768); the length is the number of queues. */
  readonly queueNumMax: readonly number[];
  /** Bytes of device-specific config space (≤ 0x100 for virtio-mmio). */
  readonly configSize: number;
  /** Config read; offset + width ≤ configSize is guaranteed by the transport. Required when configSize > 0. */
  readConfig?(offset: number, width: ConfigWidth): number;
  /** Config write; absent: the config space is read-only and writes are ignored. */
  writeConfig?(offset: number, width: ConfigWidth, value: number): void;
  /**
   * Device reset: forget held chains and device state. Queues and timers are
   * reset by the core; absent: the model holds nothing across requests.
   */
  reset?(): void;
  /** Available-buffer notification (or a deferred continuation) for `queue`. */
  handleQueue(ctx: DeviceContext, queue: number): void;
  /** Extra acceptance check at FEATURES_OK (e.g. feature dependencies); default accepts. */
  validateFeatures?(features: bigint): boolean;
  /** DRIVER_OK was set. */
  activate?(ctx: DeviceContext): void;
  /** One queue was reset or stopped (RING_RESET, QueueReady=0): forget its held chains. */
  queueReset?(queue: number): void;
  /** Model-specific injected event (board control 'inject'); false if unknown. */
  inject?(ctx: DeviceContext, event: string, args: Readonly<Record<string, DeviceOptionValue>>): boolean;
  /**
   * Snapshot (emulator/snapshot/format.ts): the model's own state, as plain
   * maps, numbers, strings, booleans and bytes. Absent: the model holds
   * nothing beyond what the device core saves (rng).
   */
  saveState?(opts: SnapshotOptions): unknown;
  /** Check a snapshot's model state for this instance; throws SnapshotError at `path`, changes nothing. */
  checkState?(state: unknown, path: string, opts: SnapshotOptions): void;
  /** Load a state checkState accepted (into a fresh instance). */
  loadState?(state: unknown, opts: SnapshotOptions): void;
}

export type DeviceOptions = Readonly<Record<string, DeviceOptionValue>>;

/**
 * Host-side objects that outlive a device instance (disk media, console
 * backends): the board keeps one store per slot across power 'fresh', which
 * models a VMM restart where the device is new but its host resources remain.
 */
export interface RetainedStore {
  get(key: string): unknown;
  set(key: string, value: unknown): void;
}

/** What the board lends a model beyond its options. */
export interface DeviceHost {
  readonly retained: RetainedStore;
  /** The machine's virtual clock: what a clock device reads (absent: the host's UTC). */
  readonly clock?: { utcNs(): bigint };
}

/** Creates a fresh model instance from the device spec's options. */
export type DeviceFactory = (options: DeviceOptions, host: DeviceHost) => DeviceModel;

/**
 * The queue handler of a request/response device: serve every available
 * chain of `queue` at once; `serve` returns the bytes written (the used
 * length) and must not keep the chain.
 */
export function serveQueue(ctx: DeviceContext, queue: number, serve: (chain: Chain) => number): void {
  ctx.serve(queue, serve);
}
