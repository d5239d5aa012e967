// The register path, one case per register kind, each through the worker
// trap (the product) and with the board in the calling thread (no crossing):
// a plain read, a plain write, the selector-dependent reads as a driver does
// them (selector write, then the read), a Status write, and Status=0 (a full
// device reset inside the write). Plus the whole driver register sequence.
import { MAGIC_VALUE, REG } from '../../../core/uapi/mmio.js';
import { VIRTIO_CONFIG_S_ACKNOWLEDGE, VIRTIO_CONFIG_S_DRIVER } from '../../../core/uapi/status.js';
import { Machine, type BusKind } from '../../../emulator/machine.js';
import { SEQUENCE_ACCESSES, runSequenceSync } from '../register-sequence.js';
import type { BenchCase, BenchContext, BenchInstance } from '../case.js';

type Op = (n: number) => void;

/** A one-rng machine; `op` builds the loop from the bus and the window base. */
async function registerCase(
  ctx: BenchContext,
  bus: BusKind,
  op: (m: Machine, base: number) => Op,
  accessesPerOp: number,
): Promise<BenchInstance> {
  const m = await Machine.create({ devices: ['rng'], ramSize: 1 << 20, bus, ...(ctx.boardModule ? { boardModule: ctx.boardModule } : {}) });
  const base = m.slotAddr(0);
  if (m.bus.read(base + REG.MagicValue, 4) !== MAGIC_VALUE) {
    await m.close();
    throw new Error('slot 0 does not read MagicValue');
  }
  return {
    run: op(m, base),
    teardown: () => m.close(),
    extras: () => ({ accesses_per_op: accessesPerOp }),
  };
}

interface Kind {
  /** Name without the bus suffix. */
  name: string;
  description: string;
  accesses: number;
  op: (m: Machine, base: number) => Op;
}

/** Read one register n times. */
function readKind(name: string, description: string, reg: number): Kind {
  return {
    name,
    description,
    accesses: 1,
    op: (m, base) => {
      const b = m.bus;
      const a = base + reg;
      return (n) => {
        for (let i = 0; i < n; i++) b.read(a, 4);
      };
    },
  };
}

/** Write one value to one register n times. */
function writeKind(name: string, description: string, reg: number, value: number): Kind {
  return {
    name,
    description,
    accesses: 1,
    op: (m, base) => {
      const b = m.bus;
      const a = base + reg;
      return (n) => {
        for (let i = 0; i < n; i++) b.write(a, 4, value);
      };
    },
  };
}

/** A selector write then the register it selects, as a driver does it. */
function selReadKind(name: string, description: string, selReg: number, reg: number, selValue: (i: number) => number): Kind {
  return {
    name,
    description,
    accesses: 2,
    op: (m, base) => {
      const b = m.bus;
      const sel = base + selReg;
      const r = base + reg;
      return (n) => {
        for (let i = 0; i < n; i++) {
          b.write(sel, 4, selValue(i));
          b.read(r, 4);
        }
      };
    },
  };
}

const KINDS: Kind[] = [
  readKind('mmio.read32', 'read MagicValue (a plain register)', REG.MagicValue),
  writeKind('mmio.write32', 'write QueueSel (a plain register)', REG.QueueSel, 0),
  selReadKind(
    'mmio.selread32.devicefeatures',
    'write DeviceFeaturesSel (0/1 alternating), read DeviceFeatures: 2 accesses',
    REG.DeviceFeaturesSel,
    REG.DeviceFeatures,
    (i) => i & 1,
  ),
  selReadKind('mmio.selread32.queuenummax', 'write QueueSel, read QueueNumMax: 2 accesses', REG.QueueSel, REG.QueueNumMax, () => 0),
  writeKind(
    'mmio.write32.status',
    'write Status = ACKNOWLEDGE|DRIVER (the status path, no state change after the first)',
    REG.Status,
    VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER,
  ),
  writeKind('mmio.write32.reset', 'write Status = 0: a full device reset inside the write', REG.Status, 0),
  {
    name: 'mmio.sequence',
    description: `the driver register sequence (probe, handshake, features, queue setup, DRIVER_OK, reset): ${SEQUENCE_ACCESSES} accesses`,
    accesses: SEQUENCE_ACCESSES,
    op: (m, base) => {
      const b = m.bus;
      const port = { read: (a: number) => b.read(a, 4), write: (a: number, v: number) => b.write(a, 4, v) };
      runSequenceSync(port, base, true);
      return (n) => {
        for (let i = 0; i < n; i++) runSequenceSync(port, base);
      };
    },
  },
];

export const cases: BenchCase[] = [
  ...KINDS.map(
    (k): BenchCase => ({
      name: `${k.name}.trap`,
      description: `${k.description}, through the worker trap mailbox`,
      ratioTo: 'sab.pingpong',
      contend: true,
      setup: (ctx) => registerCase(ctx, 'worker', k.op, k.accesses),
    }),
  ),
  ...KINDS.map(
    (k): BenchCase => ({
      name: `${k.name}.inthread`,
      description: `${k.description}, board in the calling thread (no crossing)`,
      ratioTo: `${k.name}.trap`,
      setup: (ctx) => registerCase(ctx, 'inthread', k.op, k.accesses),
    }),
  ),
];
