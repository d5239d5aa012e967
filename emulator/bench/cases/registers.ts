// The register path, one case per register kind, each through the worker
// trap (the product) and with the board in the calling thread (no crossing):
// a plain read, a plain write, the selector-dependent reads as a driver does
// them (selector write, then the read), a Status write, and Status=0 (a full
// device reset inside the write). Plus the whole driver register sequence.
import { MAGIC_VALUE, REG } from '../../../core/uapi/mmio.js';
import { VIRTIO_CONFIG_S_ACKNOWLEDGE, VIRTIO_CONFIG_S_DRIVER } from '../../../core/uapi/status.js';
import { Machine, type BusKind } from '../../machine.js';
import { SEQUENCE_ACCESSES, runSequenceSync } from '../register-sequence.js';
import type { BenchCase, BenchContext, BenchInstance } from '../registry.js';

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

const KINDS: Kind[] = [
  {
    name: 'mmio.read32',
    description: 'read MagicValue (a plain register)',
    accesses: 1,
    op: (m, base) => {
      const b = m.bus;
      const a = base + REG.MagicValue;
      return (n) => {
        for (let i = 0; i < n; i++) b.read(a, 4);
      };
    },
  },
  {
    name: 'mmio.write32',
    description: 'write QueueSel (a plain register)',
    accesses: 1,
    op: (m, base) => {
      const b = m.bus;
      const a = base + REG.QueueSel;
      return (n) => {
        for (let i = 0; i < n; i++) b.write(a, 4, 0);
      };
    },
  },
  {
    name: 'mmio.selread32.devicefeatures',
    description: 'write DeviceFeaturesSel (0/1 alternating), read DeviceFeatures: 2 accesses',
    accesses: 2,
    op: (m, base) => {
      const b = m.bus;
      const sel = base + REG.DeviceFeaturesSel;
      const reg = base + REG.DeviceFeatures;
      return (n) => {
        for (let i = 0; i < n; i++) {
          b.write(sel, 4, i & 1);
          b.read(reg, 4);
        }
      };
    },
  },
  {
    name: 'mmio.selread32.queuenummax',
    description: 'write QueueSel, read QueueNumMax: 2 accesses',
    accesses: 2,
    op: (m, base) => {
      const b = m.bus;
      const sel = base + REG.QueueSel;
      const reg = base + REG.QueueNumMax;
      return (n) => {
        for (let i = 0; i < n; i++) {
          b.write(sel, 4, 0);
          b.read(reg, 4);
        }
      };
    },
  },
  {
    name: 'mmio.write32.status',
    description: 'write Status = ACKNOWLEDGE|DRIVER (the status path, no state change after the first)',
    accesses: 1,
    op: (m, base) => {
      const b = m.bus;
      const a = base + REG.Status;
      const v = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;
      return (n) => {
        for (let i = 0; i < n; i++) b.write(a, 4, v);
      };
    },
  },
  {
    name: 'mmio.write32.reset',
    description: 'write Status = 0: a full device reset inside the write',
    accesses: 1,
    op: (m, base) => {
      const b = m.bus;
      const a = base + REG.Status;
      return (n) => {
        for (let i = 0; i < n; i++) b.write(a, 4, 0);
      };
    },
  },
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
