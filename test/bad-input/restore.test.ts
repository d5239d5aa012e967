// BI-30 (VIRTIO-NOTES §6): state that enters the device from outside the
// register path is validated before use: control-plane requests, and
// snapshot documents loaded by restore. Every class of bad document is
// refused with one line naming the field, before anything is allocated for
// it or any device state changes: a refused restore leaves the machine's
// registers, queues and counters exactly as they were.
import { describe, expect, it } from 'vitest';
import { PLATFORM } from '../../core/bus.js';
import { VIRTIO_F_VERSION_1, bit } from '../../core/uapi/features.js';
import { REG } from '../../core/uapi/mmio.js';
import { VIRTIO_CONFIG_S_DRIVER_OK } from '../../core/uapi/status.js';
import type { ControlRequest } from '../../emulator/board-contract.js';
import { Machine } from '../../emulator/machine.js';
import { SNAPSHOT_LIMITS, SNAPSHOT_VERSION } from '../../emulator/snapshot/format.js';
import { W } from '../../tools/testkit/queue-builder.js';
import { concatBytes, editDoc, readDoc, writeDoc, type DocData } from '../helpers/snapshot-docs.js';
import { boardRig, bringUp, bringUpPacked, expectRecovered, onBoard, onBoth, request, requestPacked, workerRig, type Rig, type RigDevice, type RigOptions } from './harness.js';
import { HOLD_Q, PROBE_TYPE } from './probe-device.js';

function snapshot(rig: Rig): Uint8Array {
  const r = rig.control({ op: 'snapshot' });
  if (!r.ok) throw new Error(r.error);
  return r.value as Uint8Array;
}

/** Everything a restore could change: the machine's own snapshot (registers, queues, counters, models) and what the driver reads. */
function observed(rig: Rig): { doc: Uint8Array; regs: number[] } {
  const regs = [rig.dut, rig.other].flatMap((d) => {
    // Only the registers of the window's version: reading another's counts a guest error.
    const v2 = d.read(REG.Version) === 2;
    const common = [d.read(REG.Status), d.read(REG.InterruptStatus), d.read(REG.QueueNumMax)];
    return v2 ? [...common, d.read(REG.QueueReady), d.read(REG.ConfigGeneration)] : [...common, d.read(REG.QueuePFN)];
  });
  return { doc: snapshot(rig), regs };
}

/** The twin of a rig: the same layout, a machine of its own. */
async function twinOf(rig: Rig, opts: RigOptions = {}): Promise<Rig> {
  return rig.kind === 'board' ? boardRig(opts) : workerRig(opts);
}

type Case = [what: string, doc: unknown, reason: RegExp];

const dev = (d: DocData): DocData => d['devices'][0]['device'];
const regs = (d: DocData): DocData => d['devices'][0]['registers'];
const queue = (d: DocData): DocData => dev(d)['queues'][0];

/** The classes of bad documents, from a good one of the rig's layout with a live split ring in slot 0. */
function badDocuments(good: Uint8Array): Case[] {
  const e = (f: (d: DocData) => void): Uint8Array => editDoc(good, f);
  const offered = (d: DocData): number[] => dev(d)['negotiated'];
  return [
    // The document itself
    ['truncated', good.subarray(0, good.length - 7), /truncated/],
    ['cut to one byte', good.subarray(0, 1), /truncated/],
    ['trailing bytes', concatBytes(good, new Uint8Array([0xc0])), /trailing bytes/],
    ['empty', new Uint8Array(0), /empty document/],
    ['not bytes', 'a snapshot', /a snapshot document is bytes/],
    ['not msgpack', new Uint8Array([0xd4, 0x55, 0]), /not a msgpack document \(Unknown extension 85\)/],
    ['a timestamp for a count', e((d) => (d['machine']['slots'] = new Date(0))), /machine\.slots: expected an integer from 1 to 4096, got a map/],
    ['not a map', writeDoc([1, 2, 3]), /expected a map/],
    // A 4 GiB bin header in a 10-byte document: refused as truncated, nothing allocated for it.
    ['a 4 GiB length in 10 bytes', new Uint8Array([0x81, 0xa1, 0x78, 0xc6, 0xff, 0xff, 0xff, 0xff, 0, 0]), /truncated/],
    ['wrong format', e((d) => (d['format'] = 'qemu-vmstate')), /format: expected 'virtio-emu-snapshot'/],
    ['newer version', e((d) => (d['version'] = SNAPSHOT_VERSION + 1)), /version 2 is not supported/],
    ['version as a string', e((d) => (d['version'] = '1')), /version "1" is not supported/],
    ['unknown top-level field', e((d) => (d['extra'] = 1)), /unknown field "extra"/],
    ['missing field', e((d) => delete d['devices']), /field 'devices' missing/],
    // msgpackr reads a __proto__ key as __proto_, never as the prototype.
    ['a __proto__ key', e((d) => Object.defineProperty(d, '__proto__', { value: { polluted: true }, enumerable: true })), /unknown field "__proto_"/],
    // A snapshot of another machine
    ['other RAM size', e((d) => (d['machine']['ramSize'] = 2 << 20)), /guest RAM differs/],
    ['other RAM base', e((d) => (d['machine']['ramBase'] = 0x8000_0000)), /guest RAM differs/],
    ['other slot count', e((d) => (d['machine']['slots'] = 3)), /the snapshot has 3 slots, this machine 2/],
    ['another clock mode', e((d) => (d['machine']['clock'] = 'manual')), /the snapshot's virtual clock is manual, this machine's host/],
    ['an unknown clock mode', e((d) => (d['machine']['clock'] = 'tsc')), /machine\.clock: expected host or manual, got "tsc"/],
    ['clock time not a count', e((d) => (d['clock']['aheadNs'] = '-5')), /clock\.aheadNs: "-5" is not a count of ns/],
    ['clock time past its end', e((d) => (d['clock']['aheadNs'] = '9223372036854775808')), /clock\.aheadNs: .* is not a count of ns from 0 to 9223372036854775807/],
    ['another type in a slot', e((d) => (d['machine']['devices'][0]['type'] = 'rtc')), /slot 0: the snapshot has rtc on mmio, this machine rng on mmio/],
    ['unknown device type', e((d) => (d['machine']['devices'][0]['type'] = 'gpu')), /slot 0: unknown device type "gpu"/],
    ['another transport', e((d) => (d['machine']['devices'][0]['transport'] = 'ccw')), /slot 0: the snapshot has rng on ccw/],
    ['other device options', e((d) => (d['machine']['devices'][0]['options'] = { queueSize: 8 })), /slot 0 \(rng\): device options differ/],
    ['a device missing', e((d) => d['machine']['devices'].pop()), /slot 1: the snapshot has nothing, this machine rng/],
    ['an entry missing', e((d) => d['devices'].pop()), /devices: 1 entries for the 2 devices/],
    ['entries out of order', e((d) => d['devices'].reverse()), /devices\[0\]\.slot: 1, expected 0/],
    ['more entries than slots', e((d) => d['devices'].push(d['devices'][0])), /devices: 3 entries is more than 2/],
    ['slot past the machine', e((d) => (d['devices'][0]['slot'] = 7)), /devices\[0\]\.slot: expected an integer from 0 to 1/],
    // The register file
    ['other mmio version', e((d) => (regs(d)['version'] = 1)), /registers\.version: the snapshot's window is virtio-mmio version 1, this one 2/],
    ['undefined InterruptStatus bits', e((d) => (regs(d)['interruptStatus'] = 0x10)), /interruptStatus: 0x10 has undefined bits/],
    ['GuestPageSize on version 2', e((d) => (regs(d)['guestPageSize'] = 4096)), /a version 2 window has no GuestPageSize/],
    ['QueueSel as a float', e((d) => (regs(d)['queueSel'] = 1.5)), /queueSel: expected an integer/],
    ['queueAlign of the wrong length', e((d) => regs(d)['queueAlign'].push(4096)), /queueAlign: expected 1 entries, got 2/],
    ['unknown register', e((d) => (regs(d)['QueueNotify'] = 0)), /registers: unknown field "QueueNotify"/],
    // Status and features
    ['status bits a device never shows', e((d) => (dev(d)['status'] = 0x10f)), /status: 0x10f has bits a device never shows/],
    ['DRIVER_OK without FEATURES_OK', e((d) => (dev(d)['status'] = 0x07)), /DRIVER_OK without FEATURES_OK on a modern transport/],
    ['status as a BigInt', e((d) => (dev(d)['status'] = 15n)), /status: expected an integer from 0 to 4294967295, got 15n/],
    ['features never offered', e((d) => {
      dev(d)['driverFeatures'] = [offered(d)[0]!, offered(d)[1]! | (1 << 20)];
      dev(d)['negotiated'] = dev(d)['driverFeatures'];
    }), /features this device does not offer/],
    ['no VERSION_1', e((d) => {
      dev(d)['driverFeatures'] = [offered(d)[0]!, 0];
      dev(d)['negotiated'] = [offered(d)[0]!, 0];
    }), /VERSION_1 not negotiated/],
    ['negotiated differs from accepted', e((d) => (dev(d)['negotiated'] = [0, 1])), /is not what the driver accepted/],
    ['features as one number', e((d) => (dev(d)['negotiated'] = 0x1_0000_0000)), /negotiated: expected an array/],
    // Queues
    ['a queue too many', e((d) => dev(d)['queues'].push(queue(d))), /queues: expected 1 entries, got 2/],
    ['unknown ring kind', e((d) => (queue(d)['kind'] = 'ring')), /kind: expected 'split' or 'packed'/],
    ['a packed ring under split features', e((d) => (queue(d)['kind'] = 'packed')), /ring/],
    ['QueueNum past QueueNumMax', e((d) => (queue(d)['regs']['num'] = 2048)), /layout refused: QueueNum 2048 > QueueNumMax 1024/],
    ['QueueNum not a power of 2', e((d) => (queue(d)['regs']['num'] = 6)), /layout refused: QueueNum 6 is not a power of 2/],
    ['QueueNum beyond u32', e((d) => (queue(d)['regs']['num'] = 2 ** 32)), /regs\.num: expected an integer from 0 to 4294967295/],
    ['rings outside RAM', e((d) => (queue(d)['regs']['descLo'] = 0x1000)), /layout refused: descriptor table .* is not inside guest RAM/],
    ['rings in a register window', e((d) => (queue(d)['regs']['deviceLo'] = PLATFORM.MMIO_BASE)), /layout refused: device area .* is not inside guest RAM/],
    ['rings above 4 GiB', e((d) => (queue(d)['regs']['driverHi'] = 1)), /layout refused: driver area .* is not inside guest RAM/],
    ['ring address 0', e((d) => (queue(d)['regs']['descLo'] = 0)), /layout refused: descriptor table address is 0/],
    ['misaligned ring', e((d) => (queue(d)['regs']['deviceLo'] += 2)), /layout refused: device area address is not 4-aligned/],
    ['overlapping rings', e((d) => (queue(d)['regs']['driverLo'] = queue(d)['regs']['descLo'])), /layout refused: descriptor table overlaps driver area/],
    ['index past 16 bits', e((d) => (queue(d)['ring']['nextAvail'] = 0x10000)), /ring\.nextAvail: expected an integer from 0 to 65535/],
    ['chains in flight', e((d) => (queue(d)['ring']['nextAvail'] = (queue(d)['ring']['nextUsed'] + 2) & 0xffff)), /chains in flight/],
    ['ring indices missing', e((d) => delete queue(d)['ring']), /field 'ring' missing/],
    ['unknown ring field', e((d) => (queue(d)['ring']['lastAvail'] = 0)), /ring: unknown field "lastAvail"/],
    ['indices on a stopped queue', e((d) => (queue(d)['ready'] = false)), /unknown field "features"/],
    ['parked without NEEDS_RESET', e((d) => (queue(d)['parked'] = true)), /a parked queue without DEVICE_NEEDS_RESET/],
    ['EVENT_IDX never accepted', e((d) => {
      const f = bit(VIRTIO_F_VERSION_1);
      dev(d)['driverFeatures'] = [0, Number(f >> 32n)];
      dev(d)['negotiated'] = dev(d)['driverFeatures'];
    }), /features\.(indirect|eventIdx): .* was not accepted/],
    // Counters and model state
    ['negative counter', e((d) => (dev(d)['counters']['usedBuffers'] = -1)), /counters\.usedBuffers: expected an integer/],
    ['huge error text', e((d) => (dev(d)['counters']['lastGuestError'] = 'x'.repeat(5000))), /lastGuestError: string of 5000 characters is longer than 4096/],
    ['model state for a stateless model', e((d) => (dev(d)['model'] = { pool: 1 })), /the rng model holds no state/],
    ['armed injection not a boolean', e((d) => (dev(d)['injected']['fault'] = 1)), /injected\.fault: expected true or false/],
  ];
}

async function expectRefused(target: Rig, cases: Case[]): Promise<void> {
  const before = observed(target);
  for (const [what, doc, reason] of cases) {
    const r = target.control({ op: 'restore', doc } as ControlRequest);
    expect(r.ok, what).toBe(false);
    const error = r.ok ? '' : r.error;
    expect(error, what).toMatch(/^restore refused: /);
    expect(error, what).toMatch(reason);
    expect(error.includes('\n'), `${what}: one line`).toBe(false);
    expect(error.length, `${what}: short`).toBeLessThan(400);
    // The check-only request refuses the same way.
    const c = target.control({ op: 'restore', doc, check: true } as ControlRequest);
    expect(c.ok ? '' : c.error, `${what} (check)`).toBe(error);
    expect(observed(target), `${what}: nothing changed`).toEqual(before);
  }
}

describe('BI-30 restore-time state validation', () => {
  onBoth('BI-30 malformed control-plane requests (slots, events, ops, power models) are refused without harm', async (rig) => {
    const bad = [
      { op: 'inject', slot: -1, event: 'config-change' },
      { op: 'inject', slot: 1.5, event: 'config-change' },
      { op: 'inject', slot: 2 ** 40, event: 'needs-reset' },
      { op: 'inject', slot: 0, event: 'no-such-event' },
      { op: 'fault', kind: 'throw-in-device', slot: 99 },
      { op: 'power', model: 'off' },
      { op: 'power', model: 'x'.repeat(100_000) },
      { op: 'frobnicate' },
    ] as unknown as ControlRequest[];
    for (const req of bad) {
      const res = rig.control(req);
      expect(res.ok, JSON.stringify(req).slice(0, 80)).toBe(false);
      expect(res.ok ? '' : res.error.length).toBeLessThan(200);
    }
    expect(rig.dut.status()).toBe(0);
    await expectRecovered(rig);
  });

  onBoth('BI-30 snapshot restore refuses every class of malformed document with one line, and a refused restore changes nothing', async (rig) => {
    const [q] = bringUp(rig, rig.dut, [8]);
    for (let i = 0; i < 3; i++) await request(rig, rig.dut, q!, 0, [W(16)]);
    const good = snapshot(rig);
    // Into a fresh machine of the same layout, and into the machine the document came from.
    const fresh = await twinOf(rig);
    try {
      await expectRefused(fresh, badDocuments(good));
      await expectRefused(rig, badDocuments(good));
      // The good document still loads, and the device goes on from where it was.
      fresh.mem.u8.set(rig.mem.u8);
      const r = fresh.control({ op: 'restore', doc: good });
      expect(r.ok ? 'ok' : r.error).toBe('ok');
      expect(fresh.dut.status() & VIRTIO_CONFIG_S_DRIVER_OK).toBe(VIRTIO_CONFIG_S_DRIVER_OK);
      expect(readDoc(snapshot(fresh))).toEqual(readDoc(good));
      await expectRecovered(fresh);
    } finally {
      await fresh.close();
    }
    await expectRecovered(rig);
  });

  onBoth('BI-30 packed-ring positions beyond the ring and mismatched wrap counters are refused', async (rig) => {
    const [pq] = bringUpPacked(rig, rig.dut, [8]);
    for (let i = 0; i < 3; i++) await requestPacked(rig, rig.dut, pq!, 0, [W(16)]);
    const good = snapshot(rig);
    const e = (f: (d: DocData) => void): Uint8Array => editDoc(good, f);
    await expectRefused(rig, [
      ['position = ring size', e((d) => (queue(d)['ring']['nextAvail'] = queue(d)['ring']['nextUsed'] = 8)), /ring\.nextAvail: expected an integer from 0 to 7/],
      ['wrap counters differ', e((d) => (queue(d)['ring']['availWrap'] = !queue(d)['ring']['usedWrap'])), /chains in flight/],
      ['a flag value the device never writes', e((d) => (queue(d)['ring']['deviceFlags'] = 7)), /deviceFlags: not a value the device writes/],
      ['a split ring under packed features', e((d) => (queue(d)['kind'] = 'split')), /a split ring with the ring features/],
    ]);
    await expectRecovered(rig, [8], {}, 'packed');
  });

  onBoth(
    'BI-30 legacy QueuePFN that does not name the ring, or a ready queue without one, is refused',
    async (rig) => {
      const [q] = bringUp(rig, rig.dut, [8]);
      await request(rig, rig.dut, q!, 0, [W(16)]);
      const good = snapshot(rig);
      const e = (f: (d: DocData) => void): Uint8Array => editDoc(good, f);
      await expectRefused(rig, [
        ['QueuePFN elsewhere', e((d) => (regs(d)['queuePfn'][0] += 1)), /queuePfn\[0\]: queue 0's ring is not the legacy layout of QueuePFN/],
        ['ready without QueuePFN', e((d) => (regs(d)['queuePfn'][0] = 0)), /queue 0 is ready without a QueuePFN/],
        ['GuestPageSize not a power of 2', e((d) => (regs(d)['guestPageSize'] = 3000)), /guestPageSize: 3000 is not a power of 2/],
        ['QueueAlign not a power of 2', e((d) => (regs(d)['queueAlign'][0] = 100)), /queueAlign\[0\]: 100 is not a power of 2/],
        ['version 2 registers', e((d) => (regs(d)['version'] = 2)), /the snapshot's window is virtio-mmio version 2, this one 1/],
      ]);
      await expectRecovered(rig);
    },
    { dut: { type: 'rng', transport: 'mmio-legacy' } },
  );

  const modelCases: [string, RigDevice, (good: Uint8Array) => Case[]][] = [
    [
      'a RAM disk',
      { type: 'blk', transport: 'mmio', options: { size: '256K' } },
      (good) => {
        const e = (f: (d: DocData) => void): Uint8Array => editDoc(good, f);
        const m = (d: DocData): DocData => dev(d)['model']['medium'];
        return [
          ['a chunk past the disk', e((d) => m(d)['chunks'].push([4, new Uint8Array(65536)])), /chunks\[\d+\]\[0\]: expected an integer from 0 to 3/],
          ['a short chunk', e((d) => (m(d)['chunks'][0][1] = new Uint8Array(100))), /a chunk is 65536 bytes, got 100/],
          ['a chunk twice', e((d) => m(d)['chunks'].push(m(d)['chunks'][0])), /out of order or repeated/],
          ['more chunks than the disk has', e((d) => (m(d)['chunks'] = Array.from({ length: 5 }, (_, i) => [i, new Uint8Array(65536)]))), /chunks: 5 entries is more than 4/],
          ['contents left out', e((d) => (m(d)['chunks'] = null)), /the RAM disk contents are not in the snapshot/],
          ['another disk size', e((d) => (m(d)['size'] = 512)), /RAM disk of 512 bytes in the snapshot, 262144 here/],
          ['an image file instead', e((d) => (dev(d)['model']['medium'] = { kind: 'file', path: '/tmp/x.img', size: 262144, readOnly: false })), /the snapshot's disk is an image file, this device's a RAM disk/],
          ['a bigger chunk size', e((d) => (m(d)['chunkSize'] = 1 << 30)), /chunkSize: expected 65536/],
        ];
      },
    ],
    [
      'a console',
      { type: 'console', transport: 'mmio', options: { out: 'none' } },
      (good) => {
        const e = (f: (d: DocData) => void): Uint8Array => editDoc(good, f);
        return [
          ['more pending input than a port holds', e((d) => (dev(d)['model']['port']['input'] = new Uint8Array((1 << 20) + 1))), /port\.input: 1048577 bytes is more than 1048576/],
          ['cols past 16 bits', e((d) => (dev(d)['model']['cols'] = 70000)), /cols: expected an integer from 0 to 65535/],
          ['no model state', e((d) => (dev(d)['model'] = null)), /model: expected a map, got null/],
        ];
      },
    ],
    [
      'a clock',
      { type: 'rtc', transport: 'mmio' },
      (good) => {
        const e = (f: (d: DocData) => void): Uint8Array => editDoc(good, f);
        return [
          ['an offset that is not a number', e((d) => (dev(d)['model']['offsetNs'] = '1e9')), /offsetNs: "1e9" is not a signed 64-bit count of ns/],
          ['an offset past 64 bits', e((d) => (dev(d)['model']['offsetNs'] = '9223372036854775808')), /is not a signed 64-bit count of ns/],
          ['an offset as a number', e((d) => (dev(d)['model']['offsetNs'] = 5)), /offsetNs: expected a string/],
        ];
      },
    ],
  ];
  for (const [what, dut, cases] of modelCases) {
    onBoth(
      `BI-30 device model state of ${what} out of range is refused`,
      async (rig) => {
        const n = dut.type === 'console' ? [8, 8] : [8];
        const qs = bringUp(rig, rig.dut, n);
        if (dut.type === 'blk') {
          // A write, so the RAM disk has a chunk.
          const hdr = new Uint8Array(16);
          hdr[0] = 1;
          await request(rig, rig.dut, qs[0]!, 0, [{ read: hdr }, { read: 512 }, W(1)]);
        }
        await expectRefused(rig, cases(snapshot(rig)));
        if (dut.type !== 'console') return expectRecovered(rig, n);
        // A console answers nothing on its receiveq without input: the bystander and a reset instead.
        const o = await request(rig, rig.other, rig.otherQ, 0, [W(16)]);
        expect(o.used.len).toBe(16);
        rig.dut.reset();
        expect(rig.dut.status()).toBe(0);
        expect(rig.internalErrors()).toBe(0);
      },
      { dut, ramSize: 1 << 20 },
    );
  }

  onBoard('BI-30 documents damaged at random (bytes flipped, cut, spliced): each is loaded or refused with one line, never an internal error; a refusal changes nothing', async (rig) => {
    const [q] = bringUpPacked(rig, rig.dut, [8]);
    for (let i = 0; i < 2; i++) await requestPacked(rig, rig.dut, q!, 0, [W(16)]);
    const good = snapshot(rig);
    // A fixed-seed xorshift: the same damage on every run.
    let x = 0x2545f491;
    const rand = (n: number): number => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) % n;
    };
    let refused = 0;
    for (let i = 0; i < 400; i++) {
      const bad = new Uint8Array(good);
      const kind = rand(3);
      if (kind === 0) for (let k = 0; k <= rand(4); k++) bad[rand(bad.length)] = rand(256);
      const doc = kind === 1 ? bad.subarray(0, rand(bad.length)) : kind === 2 ? concatBytes(bad.subarray(0, rand(bad.length)), bad.subarray(rand(bad.length))) : bad;
      const before = observed(rig);
      const r = rig.control({ op: 'restore', doc });
      if (r.ok) {
        // What loaded is a state the board could hold: it snapshots again, and the good document still loads over it.
        const again = rig.control({ op: 'snapshot' });
        expect(again.ok ? 'ok' : again.error, `mutation ${i} (kind ${kind}) loaded`).toBe('ok');
        const back = rig.control({ op: 'restore', doc: good });
        expect(back.ok ? 'ok' : back.error, `mutation ${i}: the good document over it`).toBe('ok');
        continue;
      }
      refused++;
      expect(r.error).toMatch(/^restore refused: /);
      expect(r.error.includes('\n')).toBe(false);
      expect(observed(rig)).toEqual(before);
    }
    expect(refused).toBeGreaterThan(300);
    expect(rig.internalErrors()).toBe(0);
    const last = rig.control({ op: 'restore', doc: good });
    expect(last.ok ? 'ok' : last.error).toBe('ok');
    await expectRecovered(rig, [8], {}, 'packed');
  });

  onBoard('BI-30 a document past the size limit is refused before it is decoded', async (rig) => {
    // Zero pages: the buffer is never touched, neither here nor by the board.
    const huge = new Uint8Array(SNAPSHOT_LIMITS.maxDocBytes + 1);
    const r = rig.control({ op: 'restore', doc: huge });
    expect(r.ok ? '' : r.error).toBe(`restore refused: document of ${huge.length} bytes is larger than the ${SNAPSHOT_LIMITS.maxDocBytes}-byte limit`);
    await expectRecovered(rig);
  });

  onBoard(
    'BI-30 a snapshot with a chain held by a device is refused, naming the slot and queue; completed work is not',
    async (rig) => {
      const qs = bringUp(rig, rig.dut, [8, 8]);
      const before = qs[HOLD_Q]!.usedIdx();
      qs[HOLD_Q]!.chain([W(8)]);
      rig.dut.notify(HOLD_Q);
      await rig.settle();
      const r = rig.control({ op: 'snapshot' });
      expect(r.ok ? '' : r.error).toBe(`snapshot refused: slot 0 (${PROBE_TYPE}): queue 1 has 1 chain(s) in flight (held by the bi-probe model)`);
      expect(qs[HOLD_Q]!.usedIdx()).toBe(before);
      await expectRecovered(rig, [8, 8]);
    },
    { dut: { type: PROBE_TYPE, transport: 'mmio' } },
  );

  it('BI-30 a machine with virtio-ccw devices refuses a snapshot (format 1 has no subchannel state), and power snapshot before the transition starts', async () => {
    const m = await Machine.create({ devices: ['rng', { type: 'rtc', transport: 'ccw' }], bus: 'inthread', ramSize: 1 << 20 });
    try {
      const r = m.control({ op: 'snapshot' });
      expect(r.ok ? '' : r.error).toBe('snapshot refused: slot 1: ccw devices are not covered by snapshot format 1 (it has no subchannel state)');
      const p = m.control({ op: 'power', model: 'snapshot' });
      expect(p.ok ? '' : p.error).toMatch(/^power snapshot refused: slot 1: ccw devices/);
    } finally {
      await m.close();
    }
    const { VirtioSystem } = await import('../../tools/system.js');
    const sys = await VirtioSystem.create({ devices: ['rng', { type: 'rtc', transport: 'ccw' }], bus: 'inthread', ramSize: 1 << 20 });
    try {
      expect(() => sys.suspend({ power: 'snapshot' })).toThrow(/power snapshot: slot 1 is a virtio-ccw device/);
      expect(sys.dpm.record.length).toBe(0);
    } finally {
      await sys.close();
    }
  });
});
