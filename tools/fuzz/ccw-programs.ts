// Property: random channel programs (ORBs, chains of CCWs with any command,
// flags, count and data address, payloads built per command with good and
// bad values) and random subchannel register accesses, against virtio-ccw
// devices. No exception escapes the board (the channel subsystem's own
// catch-all must never fire either), the I/O interrupt line is high exactly
// while status is pending, device Status stays legal, guest memory is written
// only where the driver pointed the device (READ data areas, IRB addresses,
// indicator words, used rings), and a VDEV_RESET always brings the device
// back to the state a fresh one reports.
import * as fc from 'fast-check';
import { PLATFORM } from '../../core/bus.js';
import {
  CCW1,
  CCW_CMD_READ_CONF,
  CCW_CMD_READ_FEAT,
  CCW_CMD_READ_STATUS,
  CCW_CMD_READ_VQ_CONF,
  CCW_CMD_SET_CONF_IND,
  CCW_CMD_SET_IND,
  CCW_CMD_SET_IND_ADAPTER,
  CCW_CMD_SET_VIRTIO_REV,
  CCW_CMD_SET_VQ,
  CCW_CMD_VDEV_RESET,
  CCW_CMD_WRITE_CONF,
  CCW_CMD_WRITE_FEAT,
  CCW_CMD_WRITE_STATUS,
  CCW_FLAG_CC,
  CCW_FLAG_SLI,
  CSS_REG,
  CSS_STATUS_PENDING,
  IRB,
  ORB,
  VQ_INFO_BLOCK,
  VQ_INFO_BLOCK_LEGACY,
} from '../../core/uapi/ccw.js';
import { alignUp, availRingSize, descTableSize, usedRingSize } from '../../core/uapi/ring.js';
import type { AccessWidth } from '../../core/bus.js';
import type { DeviceSpec } from '../../emulator/board-contract.js';
import { writesOutside } from '../testkit/ranges.js';
import { FuzzBoard, RAM_BASE, check, hex } from './fuzz-board.js';
import { statusValue } from './values.js';

const PROGRAMS = RAM_BASE + 0x1000;
const DATA = RAM_BASE + 0x3000;
const IRBS = RAM_BASE + 0x7000;
const INDICATORS = RAM_BASE + 0x7800;
const RINGS = RAM_BASE + 0x8000;
const BUFFERS = RAM_BASE + 0xc000;
/** Rings of the bringUp program, one 8 KiB slot per subchannel. */
const OWN_RINGS = RAM_BASE + 0x1_0000;
const CCW_RAM_SIZE = 0x2_0000;
const ownRing = (slot: number): number => OWN_RINGS + 0x2000 * slot;

export type Payload =
  | { p: 'none' }
  | { p: 'rev'; rev: number; length: number }
  | { p: 'feat'; features: number; index: number }
  | { p: 'status'; v: number }
  | { p: 'vq'; index: number; num: number; desc: number; avail: number; used: number; align: number }
  | { p: 'ind'; addr: number }
  | { p: 'vqconf'; index: number }
  | { p: 'bytes'; data: number[] };

export interface CcwGen {
  cmd: number;
  flags: number;
  /** 'fit': the payload's size; otherwise a raw count. */
  count: number | 'fit';
  /** null: a data slot of its own; a number: that raw address. */
  cda: number | null;
  payload: Payload;
}

export type CcwOp =
  | { k: 'program'; slot: number; ccws: CcwGen[]; chain: boolean; intparm: number; orb: 'ok' | 'unaligned' | 'outside' }
  /** A driver's whole bring-up in one chained program: revision, status steps, features, queue 0, indicators, DRIVER_OK. */
  | { k: 'bringUp'; slot: number; rev: number; num: number }
  /** n one-buffer requests on the bringUp ring, then a notification. */
  | { k: 'request'; slot: number; n: number }
  | { k: 'tsch'; slot: number; irb: number }
  | { k: 'reg'; slot: number; off: number; w: AccessWidth; v: number; read: boolean }
  | { k: 'notify'; slot: number; v: number }
  | { k: 'inject'; slot: number }
  | { k: 'run' };

const guestAddr = (base: number, span: number): fc.Arbitrary<number> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.nat({ max: span / 8 - 1 }).map((i) => base + 8 * i) },
    { weight: 1, arbitrary: fc.nat({ max: span - 1 }).map((i) => base + i) },
    { weight: 1, arbitrary: fc.constantFrom(0, RAM_BASE - 8, 2 ** 32 + RAM_BASE, 2 ** 60, PLATFORM.CSS_BASE) },
  );

const ringAddr = guestAddr(RINGS, 0x4000);
const u16 = fc.oneof(fc.constantFrom(0, 1, 2, 4, 8, 16, 64, 256, 1024, 3, 0xffff), fc.nat({ max: 0xffff }));

const payload: fc.Arbitrary<Payload> = fc.oneof(
  fc.constant({ p: 'none' as const }),
  fc.record({ p: fc.constant('rev' as const), rev: fc.oneof(fc.constantFrom(0, 1, 2), fc.nat({ max: 0xffff })), length: fc.oneof(fc.constant(0), fc.nat({ max: 16 })) }),
  fc.record({ p: fc.constant('feat' as const), features: fc.oneof(fc.constantFrom(0, 0x3000_0000, 1, 0x101, 0xffff_ffff), fc.nat({ max: 0xffff_ffff })), index: fc.oneof(fc.constantFrom(0, 1), fc.nat({ max: 255 })) }),
  fc.record({ p: fc.constant('status' as const), v: statusValue.map((v) => v & 0xff) }),
  fc.record({ p: fc.constant('vq' as const), index: fc.oneof(fc.constantFrom(0, 1), u16), num: u16, desc: ringAddr, avail: ringAddr, used: ringAddr, align: fc.constantFrom(4096, 4096, 0, 16, 0x1_0000) }),
  fc.record({ p: fc.constant('ind' as const), addr: guestAddr(INDICATORS, 0x800) }),
  fc.record({ p: fc.constant('vqconf' as const), index: u16 }),
  fc.record({ p: fc.constant('bytes' as const), data: fc.array(fc.nat({ max: 255 }), { maxLength: 16 }) }),
);

const COMMANDS = [
  CCW_CMD_SET_VIRTIO_REV,
  CCW_CMD_READ_FEAT,
  CCW_CMD_WRITE_FEAT,
  CCW_CMD_READ_CONF,
  CCW_CMD_WRITE_CONF,
  CCW_CMD_WRITE_STATUS,
  CCW_CMD_READ_STATUS,
  CCW_CMD_READ_VQ_CONF,
  CCW_CMD_SET_VQ,
  CCW_CMD_SET_IND,
  CCW_CMD_SET_CONF_IND,
  CCW_CMD_SET_IND_ADAPTER,
  CCW_CMD_VDEV_RESET,
];

/** The payload a command reads, most of the time; any payload otherwise. */
function payloadFor(cmd: number): fc.Arbitrary<Payload> {
  const typed = ((): fc.Arbitrary<Payload> | null => {
    switch (cmd) {
      case CCW_CMD_SET_VIRTIO_REV:
        return payload.filter((p) => p.p === 'rev');
      case CCW_CMD_READ_FEAT:
      case CCW_CMD_WRITE_FEAT:
        return payload.filter((p) => p.p === 'feat');
      case CCW_CMD_WRITE_STATUS:
        return payload.filter((p) => p.p === 'status');
      case CCW_CMD_SET_VQ:
        return payload.filter((p) => p.p === 'vq');
      case CCW_CMD_SET_IND:
      case CCW_CMD_SET_CONF_IND:
        return payload.filter((p) => p.p === 'ind');
      case CCW_CMD_READ_VQ_CONF:
        return payload.filter((p) => p.p === 'vqconf');
    }
    return null;
  })();
  return typed ? fc.oneof({ weight: 5, arbitrary: typed }, { weight: 1, arbitrary: payload }) : payload;
}

export const ccwGen: fc.Arbitrary<CcwGen> = fc
  .oneof({ weight: 8, arbitrary: fc.constantFrom(...COMMANDS) }, { weight: 1, arbitrary: fc.nat({ max: 255 }) })
  .chain((cmd) =>
    fc.record({
      cmd: fc.constant(cmd),
      flags: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(0, CCW_FLAG_SLI) }, { weight: 1, arbitrary: fc.nat({ max: 255 }) }),
      count: fc.oneof({ weight: 5, arbitrary: fc.constant('fit' as const) }, { weight: 2, arbitrary: fc.constantFrom(0, 1, 3, 4, 5, 8, 16, 31, 32, 0x100, 0xffff) }),
      cda: fc.oneof({ weight: 8, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.constantFrom(0, 1, RAM_BASE - 4, 0xffff_ffff, DATA - 8) }),
      payload: payloadFor(cmd),
    }),
  );

export function ccwOp(slots: number): fc.Arbitrary<CcwOp> {
  const slot = fc.nat({ max: slots - 1 });
  return fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({
        k: fc.constant('program' as const),
        slot,
        ccws: fc.array(ccwGen, { minLength: 1, maxLength: 4 }),
        chain: fc.boolean(),
        intparm: fc.nat({ max: 0xffff_ffff }),
        orb: fc.oneof({ weight: 8, arbitrary: fc.constant('ok' as const) }, { weight: 1, arbitrary: fc.constantFrom('unaligned' as const, 'outside' as const) }),
      }),
    },
    { weight: 2, arbitrary: fc.record({ k: fc.constant('bringUp' as const), slot, rev: fc.constantFrom(0, 1, 2), num: fc.constantFrom(1, 2, 4, 8, 16) }) },
    { weight: 3, arbitrary: fc.record({ k: fc.constant('request' as const), slot, n: fc.nat({ max: 4 }) }) },
    { weight: 4, arbitrary: fc.record({ k: fc.constant('tsch' as const), slot, irb: fc.oneof({ weight: 6, arbitrary: fc.nat({ max: 7 }).map((i) => IRBS + IRB.SIZE * i) }, { weight: 1, arbitrary: guestAddr(IRBS, 0x800) }) }) },
    {
      weight: 2,
      arbitrary: fc.record({
        k: fc.constant('reg' as const),
        slot,
        off: fc.oneof(fc.constantFrom(...Object.values(CSS_REG)), fc.nat({ max: PLATFORM.CSS_WINDOW_SIZE - 1 })),
        w: fc.constantFrom<AccessWidth>(4, 4, 4, 2, 1),
        v: fc.oneof(fc.nat({ max: 0xffff_ffff }), guestAddr(IRBS, 0x800)),
        read: fc.boolean(),
      }),
    },
    { weight: 2, arbitrary: fc.record({ k: fc.constant('notify' as const), slot, v: fc.oneof(fc.constantFrom(0, 1, 2, 0xffff, 0x1_0000), fc.nat({ max: 0xffff_ffff })) }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('inject' as const), slot }) },
    { weight: 5, arbitrary: fc.constant({ k: 'run' as const }) },
  );
}

interface Range {
  addr: number;
  len: number;
}

function payloadSize(p: Payload, cmd: number): number {
  switch (p.p) {
    case 'rev':
      return 4 + p.length;
    case 'feat':
      return 5;
    case 'status':
      return 1;
    case 'vq':
      return cmd === CCW_CMD_SET_VQ ? VQ_INFO_BLOCK.SIZE : 32;
    case 'ind':
      return 8;
    case 'vqconf':
      return 4;
    case 'bytes':
      return p.data.length;
    case 'none':
      return 0;
  }
}

/** The driver side of the channel subsystem for one run, with what it has pointed the device at. */
class CcwDriver {
  /** Where the device may write: data areas, IRBs, indicators, used rings. */
  readonly allowed: Range[] = [];
  private programAt = PROGRAMS;
  /** Queue size of each subchannel's bringUp, and the avail idx published on it. */
  private readonly own = new Map<number, { num: number; idx: number }>();
  private dataAt = DATA;
  private readonly irb = new Map<number, [number, number]>();

  constructor(readonly fb: FuzzBoard) {}

  win(slot: number): number {
    return PLATFORM.CSS_BASE + PLATFORM.CSS_WINDOW_SIZE * slot;
  }
  reg(slot: number, off: number, v?: number, w: AccessWidth = 4): number {
    const a = this.win(slot) + off;
    if (v === undefined) return this.fb.board.read(a, w);
    this.fb.board.write(a, w, v);
    if (off === CSS_REG.IrbLow || off === CSS_REG.IrbHigh) this.noteIrb(slot, off, v, w);
    return 0;
  }
  private noteIrb(slot: number, off: number, v: number, w: AccessWidth): void {
    if (w !== 4) return;
    const [lo, hi] = this.irb.get(slot) ?? [0, 0];
    const next: [number, number] = off === CSS_REG.IrbLow ? [v >>> 0, hi] : [lo, v >>> 0];
    this.irb.set(slot, next);
    this.allowed.push({ addr: next[1] * 0x1_0000_0000 + next[0], len: IRB.SIZE });
  }

  private u8(a: number, v: number): void {
    if (a >= RAM_BASE && a < RAM_BASE + this.fb.ram.length) this.fb.ram[a - RAM_BASE] = v & 0xff;
  }
  private u16(a: number, v: number): void {
    this.u8(a, v);
    this.u8(a + 1, v >>> 8);
  }
  private u32(a: number, v: number): void {
    this.u16(a, v & 0xffff);
    this.u16(a + 2, v >>> 16);
  }
  private u64(a: number, v: number): void {
    this.u32(a, v % 0x1_0000_0000);
    this.u32(a + 4, Math.floor(v / 0x1_0000_0000));
  }

  private writePayload(at: number, p: Payload): void {
    switch (p.p) {
      case 'rev':
        this.u16(at, p.rev);
        this.u16(at + 2, p.length);
        return;
      case 'feat':
        this.u32(at, p.features);
        this.u8(at + 4, p.index);
        return;
      case 'status':
        this.u8(at, p.v);
        return;
      case 'vq':
        // Modern and legacy blocks share index/num; the legacy align sits in the modern res0.
        this.u64(at + VQ_INFO_BLOCK.desc, p.desc);
        this.u32(at + VQ_INFO_BLOCK_LEGACY.align, p.align);
        this.u16(at + VQ_INFO_BLOCK.index, p.index);
        this.u16(at + VQ_INFO_BLOCK.num, p.num);
        this.u64(at + VQ_INFO_BLOCK.avail, p.avail);
        this.u64(at + VQ_INFO_BLOCK.used, p.used);
        for (const used of [p.used, p.align > 0 ? alignUp(p.desc + descTableSize(p.num) + availRingSize(p.num), p.align) : p.used]) {
          this.allowed.push({ addr: used, len: usedRingSize(p.num) });
        }
        return;
      case 'ind':
        this.u64(at, p.addr);
        this.allowed.push({ addr: p.addr, len: 8 });
        return;
      case 'vqconf':
        this.u16(at, p.index);
        return;
      case 'bytes':
        p.data.forEach((b, i) => this.u8(at + i, b));
        return;
      case 'none':
        return;
    }
  }

  /** Lay out ORB, CCWs and payloads (not yet started): the ORB address to start and each CCW's data address. */
  layProgram(op: Extract<CcwOp, { k: 'program' }>): { orb: number; cdas: number[] } {
    const orb = this.programAt;
    const ccws = orb + ORB.SIZE;
    this.programAt = alignUp(ccws + CCW1.SIZE * op.ccws.length, 16);
    if (this.programAt > DATA) this.programAt = PROGRAMS;
    const cdas = op.ccws.map((c, i) => {
      const size = payloadSize(c.payload, c.cmd);
      const cda = c.cda ?? this.dataAt;
      if (c.cda === null) {
        this.fb.ram.fill(0, cda - RAM_BASE, cda - RAM_BASE + 64);
        this.dataAt += 64;
        if (this.dataAt >= IRBS) this.dataAt = DATA;
      }
      const count = c.count === 'fit' ? size : c.count;
      this.writePayload(cda, c.payload);
      this.allowed.push({ addr: cda, len: Math.max(count, size) });
      const at = ccws + CCW1.SIZE * i;
      const last = i === op.ccws.length - 1;
      this.u8(at + CCW1.cmd_code, c.cmd);
      this.u8(at + CCW1.flags, (c.flags & ~CCW_FLAG_CC) | (op.chain && !last ? CCW_FLAG_CC : c.flags & CCW_FLAG_CC));
      this.u16(at + CCW1.count, count);
      this.u32(at + CCW1.cda, cda);
      return cda;
    });
    this.u32(orb + ORB.intparm, op.intparm);
    this.u32(orb + ORB.cpa, ccws);
    return { orb: op.orb === 'ok' ? orb : op.orb === 'unaligned' ? orb + 2 : RAM_BASE + this.fb.ram.length, cdas };
  }

  /** The bringUp program: what virtio_ccw does at probe, as one chain. */
  bringUp(op: Extract<CcwOp, { k: 'bringUp' }>): number {
    const ring = ownRing(op.slot);
    this.fb.ram.fill(0, ring - RAM_BASE, ring - RAM_BASE + 0x2000);
    this.own.set(op.slot, { num: op.num, idx: 0 });
    const cmd = (c: number, payload: Payload): CcwGen => ({ cmd: c, flags: 0, count: 'fit', cda: null, payload });
    const status = (v: number): CcwGen => cmd(CCW_CMD_WRITE_STATUS, { p: 'status', v });
    const ccws = [
      cmd(CCW_CMD_SET_VIRTIO_REV, { p: 'rev', rev: op.rev, length: 0 }),
      status(1),
      status(3),
      cmd(CCW_CMD_WRITE_FEAT, { p: 'feat', features: 0, index: 0 }),
      cmd(CCW_CMD_WRITE_FEAT, { p: 'feat', features: op.rev >= 1 ? 1 : 0, index: 1 }),
      status(0xb),
      cmd(CCW_CMD_SET_VQ, { p: 'vq', index: 0, num: op.num, desc: ring, avail: ring + 0x800, used: ring + 0x1000, align: 4096 }),
      cmd(CCW_CMD_SET_IND, { p: 'ind', addr: INDICATORS + 16 * op.slot }),
      cmd(CCW_CMD_SET_CONF_IND, { p: 'ind', addr: INDICATORS + 16 * op.slot + 8 }),
      status(0xf),
    ];
    if (op.rev === 0) ccws.splice(0, 1); // a legacy driver may not send SET_VIRTIO_REV at all
    return this.layProgram({ k: 'program', slot: op.slot, ccws, chain: true, intparm: 0xb00, orb: 'ok' }).orb;
  }

  /** Requests on the bringUp ring (both layouts' avail rings are written: a legacy ring has it after the table). */
  request(op: Extract<CcwOp, { k: 'request' }>): void {
    const own = this.own.get(op.slot) ?? { num: 8, idx: 0 };
    this.own.set(op.slot, own);
    const ring = ownRing(op.slot);
    for (let i = 0; i < op.n; i++) {
      const head = (own.idx + i) % own.num;
      const buf = BUFFERS + 0x400 * op.slot + 32 * (head % 32);
      const d = ring + 16 * head;
      this.u64(d, buf);
      this.u32(d + 8, 32);
      this.u16(d + 12, 2); // VRING_DESC_F_WRITE
      this.u16(d + 14, 0);
      for (const avail of [ring + 0x800, ring + descTableSize(own.num)]) this.u16(avail + 4 + 2 * ((own.idx + i) % own.num), head);
      this.allowed.push({ addr: buf, len: 32 });
    }
    own.idx = (own.idx + op.n) & 0xffff;
    for (const avail of [ring + 0x800, ring + descTableSize(own.num)]) this.u16(avail + 2, own.idx);
  }

  start(slot: number, orb: number): void {
    this.reg(slot, CSS_REG.OrbLow, orb % 0x1_0000_0000);
    this.reg(slot, CSS_REG.OrbHigh, Math.floor(orb / 0x1_0000_0000));
    this.reg(slot, CSS_REG.Ssch, 1);
  }

  tsch(slot: number, irb: number): void {
    this.reg(slot, CSS_REG.IrbLow, irb % 0x1_0000_0000);
    this.reg(slot, CSS_REG.IrbHigh, Math.floor(irb / 0x1_0000_0000));
    this.reg(slot, CSS_REG.Tsch, 1);
  }

  /** A known program to completion; returns [dstat, cstat, first data bytes]. */
  probe(slot: number, ccw: CcwGen): number[] {
    const irb = IRBS + 0x700;
    this.fb.run();
    if (this.reg(slot, CSS_REG.Status) & CSS_STATUS_PENDING) this.tsch(slot, irb);
    const { orb, cdas } = this.layProgram({ k: 'program', slot, ccws: [ccw], chain: false, intparm: 0x5eed, orb: 'ok' });
    const cda = cdas[0]!;
    this.start(slot, orb);
    this.fb.run();
    this.tsch(slot, irb);
    const o = irb - RAM_BASE;
    return [this.fb.ram[o + IRB.dstat]!, this.fb.ram[o + IRB.cstat]!, ...this.fb.ram.slice(cda - RAM_BASE, cda - RAM_BASE + 6)];
  }

  /** VDEV_RESET, then what a driver reads from a reset device: revision, status, queue 0 size. */
  resetProbe(slot: number): number[] {
    return [
      ...this.probe(slot, { cmd: CCW_CMD_VDEV_RESET, flags: 0, count: 0, cda: null, payload: { p: 'none' } }),
      ...this.probe(slot, { cmd: CCW_CMD_SET_VIRTIO_REV, flags: 0, count: 'fit', cda: null, payload: { p: 'rev', rev: 2, length: 0 } }),
      ...this.probe(slot, { cmd: CCW_CMD_READ_STATUS, flags: 0, count: 'fit', cda: null, payload: { p: 'status', v: 0xff } }),
      ...this.probe(slot, { cmd: CCW_CMD_READ_VQ_CONF, flags: 0, count: 'fit', cda: null, payload: { p: 'vqconf', index: 0 } }),
      ...this.probe(slot, { cmd: CCW_CMD_READ_FEAT, flags: 0, count: 'fit', cda: null, payload: { p: 'feat', features: 0, index: 0 } }),
    ];
  }
}

/** virtio-ccw devices of the property: rng (revision 2 and legacy-only) and every other model type. */
export function ccwDevices(types: string[]): DeviceSpec[] {
  const out: DeviceSpec[] = [
    { type: 'rng', transport: 'ccw' },
    { type: 'rng', transport: 'ccw', options: { 'ccw.max_revision': 0 } },
  ];
  for (const t of types) if (t !== 'rng') out.push({ type: t, transport: 'ccw' });
  return out;
}

/** Line high exactly while status is pending, on every subchannel. */
function checkLines(fb: FuzzBoard, drv: CcwDriver, slots: number, where: string): void {
  for (let s = 0; s < slots; s++) {
    const pending = (drv.reg(s, CSS_REG.Status) & CSS_STATUS_PENDING) !== 0;
    check(fb.irq.high(s) === pending, `${where}: subchannel ${s} line ${fb.irq.high(s) ? 'high' : 'low'} with status ${pending ? '' : 'not '}pending`);
  }
}

/** Run one sequence on a fresh board; throws InvariantError on a violation. Returns the Status bits devices reached. */
export function runCcwOps(devices: DeviceSpec[], ops: CcwOp[]): { statusSeen: number } {
  let statusSeen = 0;
  const fb = new FuzzBoard(devices, CCW_RAM_SIZE);
  const drv = new CcwDriver(fb);
  // The probes leave their IRB and data addresses in the subchannels: those stay handed over.
  const fresh = devices.map((_, s) => drv.resetProbe(s));
  ops.forEach((op, i) => {
    const where = `after op ${i} (${op.k})`;
    let act: () => void;
    switch (op.k) {
      case 'program': {
        const { orb } = drv.layProgram(op);
        act = () => drv.start(op.slot, orb);
        break;
      }
      case 'bringUp': {
        const orb = drv.bringUp(op);
        act = () => {
          if (drv.reg(op.slot, CSS_REG.Status) & CSS_STATUS_PENDING) drv.tsch(op.slot, IRBS + IRB.SIZE * op.slot);
          drv.start(op.slot, orb);
          fb.run();
        };
        break;
      }
      case 'request':
        drv.request(op);
        act = () => void drv.reg(op.slot, CSS_REG.Notify, 0);
        break;
      case 'tsch':
        act = () => drv.tsch(op.slot, op.irb);
        break;
      case 'reg': {
        // ORB addresses come only from 'program' (bad ones included): a random ORB would run whatever
        // bytes it lands on, and the data addresses in them are not ones this driver handed over.
        const orbReg = op.off === CSS_REG.OrbLow || op.off === CSS_REG.OrbHigh;
        act = () => void (op.read || orbReg ? drv.reg(op.slot, op.off, undefined, op.w) : drv.reg(op.slot, op.off, op.v, op.w));
        break;
      }
      case 'notify':
        act = () => void drv.reg(op.slot, CSS_REG.Notify, op.v);
        break;
      case 'inject':
        act = () => void fb.board.control({ op: 'inject', slot: op.slot, event: 'config-change' });
        break;
      case 'run':
        act = () => fb.run();
        break;
    }
    const before = fb.ram.slice();
    act();
    const stray = writesOutside(fb.mem, before, drv.allowed);
    check(stray.length === 0, `${where}: device wrote where the driver never pointed it: ${stray.slice(0, 4).map((r) => `${hex(r.addr)}+${r.len}`).join(', ')}`);
    fb.checkInvariants(where);
    checkLines(fb, drv, devices.length, where);
    for (const sl of fb.stats().slots) statusSeen |= sl.status;
  });
  devices.forEach((d, s) => {
    const now = drv.resetProbe(s);
    check(now.every((v, i) => v === fresh[s]![i]), `slot ${s} (${d.type} on ccw): after VDEV_RESET [${now.map(hex).join(' ')}], a fresh device [${fresh[s]!.map(hex).join(' ')}]`);
  });
  fb.checkInvariants('after the reset');
  return { statusSeen };
}

export function ccwProperty(devices: DeviceSpec[]): fc.IPropertyWithHooks<[CcwOp[]]> {
  return fc.property(fc.array(ccwOp(devices.length), { minLength: 1, maxLength: 40, size: 'max' }), (ops) => {
    runCcwOps(devices, ops);
  });
}
