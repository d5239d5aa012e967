// The device snapshot document (format version 1): what a board saves of
// its devices at a quiescent point and loads into a machine of the same
// layout. It is one msgpack map (msgpackr, plain maps, no records, no
// BigInt: 64-bit feature sets are [low, high] u32 pairs):
//
//   format   'virtio-emu-snapshot'
//   version  1 (SNAPSHOT_VERSION)
//   machine  { ramBase, ramSize, mmioBase, slots, clock: 'host'|'manual',
//              devices: [ { slot, type, transport, options } ] }  occupied slots, in order
//   clock    { aheadNs, utcAtStartNs }  the virtual clock (decimal ns): what
//            steps added, UTC at power-on (emulator/virtio/clock.ts)
//   devices  [ { slot,
//                registers: { version, interruptStatus, irqRaised, deviceFeaturesSel,
//                             driverFeaturesSel, queueSel, guestPageSize,
//                             queueAlign: [..], queuePfn: [..] } (virtio-mmio register file),
//                device: { status, configGeneration, driverFeatures: [lo, hi],
//                          driverBeyond64, negotiated: [lo, hi],
//                          injected: { refuseFeaturesOk, fault },
//                          queues: [ { kind: 'split'|'packed', regs: { num, descLo, descHi,
//                                      driverLo, driverHi, deviceLo, deviceHi },
//                                      ready, parked, features?: { indirect, eventIdx },
//                                      ring?: { ...the device's own indices } } ],
//                          counters: { guestErrors, ..., lastDeviceError },
//                          model: null | per type (blk: { medium }, console: { cols, rows, input, ... },
//                                 rtc: { offsetNs }) } } ]
//
// The document holds device state only: guest RAM is the caller's (the
// embedding API copies it beside the document), and a disk image file is
// the user's (a blk device records its path and size, never its contents;
// a RAM disk's chunks are included). virtio-ccw devices are refused: this
// version has no subchannel state.
import { Packr } from 'msgpackr';
import type { BoardConfig, DeviceOptionValue, DeviceSpec } from '../board-contract.js';
import { SnapshotError, fail, int, list, plainMap, record, shown, str } from './fields.js';
import { CLOCK_MAX_NS, CLOCK_MODES, type ClockMode } from '../virtio/clock.js';

export const SNAPSHOT_FORMAT = 'virtio-emu-snapshot';
export const SNAPSHOT_VERSION = 1;

export const SNAPSHOT_LIMITS = {
  /** A document's bytes, checked before it is decoded (RAM disks are the large part). */
  maxDocBytes: 256 * 1024 * 1024,
  /** Queues of one device. */
  maxQueues: 64,
  /** A counter's last-error text. */
  maxMessage: 4096,
} as const;

/** What snapshot and restore carry besides registers. */
export interface SnapshotOptions {
  /**
   * RAM disks' contents (default true). The power model `snapshot` leaves
   * them out: the board keeps the same medium across the power cycle, as a
   * VMM keeps a host resource.
   */
  media: boolean;
}

export interface LayoutDevice {
  slot: number;
  type: string;
  transport: string;
  options: Record<string, DeviceOptionValue>;
}

export interface MachineLayout {
  ramBase: number;
  ramSize: number;
  mmioBase: number;
  slots: number;
  clock: ClockMode;
  devices: LayoutDevice[];
}

/** The virtual clock's state (VirtualClock.saveState), in decimal ns. */
export interface ClockState {
  aheadNs: string;
  utcAtStartNs: string;
}

/** One device's entry: the transport's registers, the device core's state (checked by their owners). */
export interface SlotSnapshot {
  slot: number;
  registers: unknown;
  device: unknown;
}

export interface SnapshotDoc {
  format: typeof SNAPSHOT_FORMAT;
  version: typeof SNAPSHOT_VERSION;
  machine: MachineLayout;
  clock: ClockState;
  devices: SlotSnapshot[];
}

/** Plain maps both ways; bytes come back as Uint8Array (Buffer). */
const codec = new Packr({ useRecords: false, moreTypes: false });

export function encodeSnapshot(doc: SnapshotDoc): Uint8Array {
  const bytes = codec.pack(doc);
  if (bytes.length > SNAPSHOT_LIMITS.maxDocBytes) {
    throw new SnapshotError(`snapshot of ${bytes.length} bytes is larger than the ${SNAPSHOT_LIMITS.maxDocBytes}-byte limit (RAM disk contents are the large part)`);
  }
  // pack() answers a view of the codec's reusable buffer, which the next pack overwrites: the caller keeps a copy.
  return new Uint8Array(bytes);
}

/**
 * The document's top-level fields, checked: its size before anything is
 * decoded, then the msgpack (truncated or with trailing bytes refused),
 * the format tag, the version and the layout's shape. What each device
 * holds is checked by the board against the machine it goes into.
 */
export function decodeSnapshot(bytes: unknown): SnapshotDoc {
  if (!(bytes instanceof Uint8Array)) fail('', `a snapshot document is bytes, got ${shown(bytes)}`);
  if (bytes.length > SNAPSHOT_LIMITS.maxDocBytes) fail('', `document of ${bytes.length} bytes is larger than the ${SNAPSHOT_LIMITS.maxDocBytes}-byte limit`);
  if (bytes.length === 0) fail('', 'empty document');
  let raw: unknown;
  try {
    raw = codec.unpack(bytes);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    // msgpackr's trailing-data message quotes the whole document.
    if (msg.startsWith('Data read, but end of buffer not reached')) fail('', 'trailing bytes after the document');
    // A read past the end shows as msgpackr's own message or a DataView RangeError.
    if (err instanceof RangeError || msg.includes('Unexpected end')) fail('', `truncated: the msgpack data of ${bytes.length} bytes ends inside a value`);
    fail('', `not a msgpack document (${msg.split('\n')[0]!.slice(0, 80)})`);
  }
  const top = record(raw, '', ['format', 'version', 'machine', 'clock', 'devices']);
  if (top['format'] !== SNAPSHOT_FORMAT) fail('format', `expected '${SNAPSHOT_FORMAT}', got ${shown(top['format'])}`);
  if (top['version'] !== SNAPSHOT_VERSION) fail('version', `version ${shown(top['version'])} is not supported (this build reads version ${SNAPSHOT_VERSION})`);
  const machine = readLayout(top['machine'], 'machine');
  const c = record(top['clock'], 'clock', ['aheadNs', 'utcAtStartNs']);
  const clock = { aheadNs: decimalNs(c['aheadNs'], 'clock.aheadNs'), utcAtStartNs: decimalNs(c['utcAtStartNs'], 'clock.utcAtStartNs') };
  const devices = list(top['devices'], 'devices', machine.slots, (v, p) => {
    const d = record(v, p, ['slot', 'registers', 'device']);
    return { slot: int(d['slot'], `${p}.slot`, 0, machine.slots - 1), registers: d['registers'], device: d['device'] };
  });
  return { format: SNAPSHOT_FORMAT, version: SNAPSHOT_VERSION, machine, clock, devices };
}

/** A count of ns as the clock keeps it: a decimal string of 0 to CLOCK_MAX_NS. */
function decimalNs(v: unknown, path: string): string {
  const s = str(v, path, 19);
  if (!/^\d{1,19}$/.test(s) || BigInt(s) > CLOCK_MAX_NS) fail(path, `${shown(s)} is not a count of ns from 0 to ${CLOCK_MAX_NS}`);
  return s;
}

const MAX_SLOTS = 4096;
const MAX_OPTIONS = 64;
const MAX_OPTION_LENGTH = 4096;

function readLayout(v: unknown, path: string): MachineLayout {
  const m = record(v, path, ['ramBase', 'ramSize', 'mmioBase', 'slots', 'clock', 'devices']);
  const clock = m['clock'];
  if (!(CLOCK_MODES as readonly unknown[]).includes(clock)) fail(`${path}.clock`, `expected ${CLOCK_MODES.join(' or ')}, got ${shown(clock)}`);
  const slots = int(m['slots'], `${path}.slots`, 1, MAX_SLOTS);
  let last = -1;
  const devices = list(m['devices'], `${path}.devices`, slots, (x, p) => {
    const d = record(x, p, ['slot', 'type', 'transport', 'options']);
    const slot = int(d['slot'], `${p}.slot`, 0, slots - 1);
    if (slot <= last) fail(`${p}.slot`, `slot ${slot} out of order or repeated`);
    last = slot;
    const o = plainMap(d['options'], `${p}.options`);
    const keys = Object.keys(o);
    if (keys.length > MAX_OPTIONS) fail(`${p}.options`, `more than ${MAX_OPTIONS} options`);
    const options: Record<string, DeviceOptionValue> = {};
    for (const k of keys) {
      const val = o[k];
      if (typeof val === 'string') str(val, `${p}.options.${k}`, MAX_OPTION_LENGTH);
      else if (typeof val !== 'number' && typeof val !== 'boolean') fail(`${p}.options.${k}`, `expected a string, number or boolean, got ${shown(val)}`);
      options[k] = val as DeviceOptionValue;
    }
    return { slot, type: str(d['type'], `${p}.type`, 64), transport: str(d['transport'], `${p}.transport`, 16), options };
  });
  return {
    ramBase: int(m['ramBase'], `${path}.ramBase`, 0, 2 ** 32),
    ramSize: int(m['ramSize'], `${path}.ramSize`, 1, 2 ** 32),
    mmioBase: int(m['mmioBase'], `${path}.mmioBase`, 0, 2 ** 32),
    slots,
    clock: clock as ClockMode,
    devices,
  };
}

/** The layout of a board configuration, as a document records it. */
export function layoutOf(config: BoardConfig): MachineLayout {
  const devices: LayoutDevice[] = [];
  config.devices.forEach((d: DeviceSpec | null, slot) => {
    if (d) devices.push({ slot, type: d.type, transport: d.transport, options: { ...(d.options ?? {}) } });
  });
  return { ramBase: config.ramBase, ramSize: config.ramSize, mmioBase: config.mmioBase, slots: config.slots, clock: config.clock ?? 'host', devices };
}

function optionsText(o: Record<string, DeviceOptionValue>): string {
  const t = JSON.stringify(Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]])));
  return t.length > 200 ? `${t.slice(0, 197)}...` : t;
}

function sameOptions(a: Record<string, DeviceOptionValue>, b: Record<string, DeviceOptionValue>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && a[k] === b[k]);
}

/**
 * Why a document's layout cannot go into a machine with `mine`, or null.
 * Device options count: they decide QueueNumMax, the features offered and
 * the medium, so a different option is a different machine.
 */
export function layoutMismatch(doc: MachineLayout, mine: MachineLayout, knownTypes: readonly string[]): string | null {
  for (const d of doc.devices) {
    if (!knownTypes.includes(d.type)) return `slot ${d.slot}: unknown device type ${shown(d.type)} (known: ${knownTypes.join(', ')})`;
  }
  const hex = (n: number): string => `0x${n.toString(16)}`;
  if (doc.ramBase !== mine.ramBase || doc.ramSize !== mine.ramSize) {
    return `guest RAM differs: the snapshot has ${doc.ramSize} bytes at ${hex(doc.ramBase)}, this machine ${mine.ramSize} at ${hex(mine.ramBase)}`;
  }
  if (doc.mmioBase !== mine.mmioBase) return `virtio-mmio windows differ: the snapshot's are at ${hex(doc.mmioBase)}, this machine's at ${hex(mine.mmioBase)}`;
  if (doc.slots !== mine.slots) return `the snapshot has ${doc.slots} slots, this machine ${mine.slots}`;
  if (doc.clock !== mine.clock) return `the snapshot's virtual clock is ${doc.clock}, this machine's ${mine.clock}`;
  const at = (l: MachineLayout, slot: number): LayoutDevice | undefined => l.devices.find((d) => d.slot === slot);
  for (let slot = 0; slot < mine.slots; slot++) {
    const a = at(doc, slot);
    const b = at(mine, slot);
    if (!a && !b) continue;
    const what = (d: LayoutDevice | undefined): string => (d ? `${d.type} on ${d.transport}` : 'nothing');
    if (!a || !b || a.type !== b.type || a.transport !== b.transport) return `slot ${slot}: the snapshot has ${what(a)}, this machine ${what(b)}`;
    if (!sameOptions(a.options, b.options)) return `slot ${slot} (${a.type}): device options differ: the snapshot has ${optionsText(a.options)}, this machine ${optionsText(b.options)}`;
  }
  return null;
}
