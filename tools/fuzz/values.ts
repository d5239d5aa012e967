// Value and address pools shared by the fuzz properties. Random u32s alone
// almost never hit a register's interesting values or a guest address, so
// each pool mixes the values drivers use, the boundaries around them and
// plain random words.
import * as fc from 'fast-check';
import { MMIO_WINDOW_SIZE, REG } from '../../core/uapi/mmio.js';
import { FUZZ_RAM_SIZE, MMIO_BASE, RAM_BASE } from './fuzz-board.js';

/** Guest RAM map of the fuzz boards (offsets from RAM_BASE). */
export const LAYOUT = {
  /** Ring layouts: four 8 KiB slots, each with room for a legacy or a split layout. */
  rings: 0x1000,
  ringSlot: 0x2000,
  ringSlots: 4,
  buffers: 0x9000,
  buffersEnd: 0xd000,
  tables: 0xd000,
  tablesEnd: 0xe000,
} as const;

export function ringSlot(i: number): { desc: number; avail: number; used: number } {
  const base = RAM_BASE + LAYOUT.rings + LAYOUT.ringSlot * i;
  return { desc: base, avail: base + 0x800, used: base + 0x1000 };
}

/** Status values: combinations of the defined bits, the reserved ones, everything. */
export const statusValue: fc.Arbitrary<number> = fc.oneof(
  { weight: 6, arbitrary: fc.subarray([1, 2, 4, 8, 0x80]).map((bits) => bits.reduce((a, b) => a | b, 0)) },
  { weight: 1, arbitrary: fc.constantFrom(0, 0x10, 0x20, 0x40, 0x7f, 0xff, 0xffff_ffff) },
  { weight: 1, arbitrary: fc.nat({ max: 0xffff_ffff }) },
);

/** Guest addresses: the ring slots (aligned and not), buffers, boundaries, outside RAM, the register windows. */
export const address: fc.Arbitrary<number> = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(fc.nat({ max: LAYOUT.ringSlots - 1 }), fc.constantFrom<'desc' | 'avail' | 'used'>('desc', 'avail', 'used'), fc.constantFrom(0, 0, 0, 1, 2, 4, 8)).map(([i, k, skew]) => ringSlot(i)[k] + skew) },
  { weight: 2, arbitrary: fc.nat({ max: (LAYOUT.buffersEnd - LAYOUT.buffers) / 8 - 1 }).map((i) => RAM_BASE + LAYOUT.buffers + 8 * i) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(0, RAM_BASE - 16, RAM_BASE + FUZZ_RAM_SIZE - 8, RAM_BASE + FUZZ_RAM_SIZE, MMIO_BASE, MMIO_BASE + REG.Status, 0xffff_fff0),
  },
);

/** Register values: small numbers, powers of two, status combinations, addresses, page frame numbers, anything. */
export const regValue: fc.Arbitrary<number> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(0, 1, 2, 3, 4, 8, 16, 64, 256, 1024, 4096, 0x8000, 0x1_0000, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff) },
  { weight: 2, arbitrary: fc.nat({ max: 64 }) },
  { weight: 2, arbitrary: statusValue },
  { weight: 2, arbitrary: address },
  { weight: 1, arbitrary: address.map((a) => Math.floor(a / 4096)) },
  { weight: 2, arbitrary: fc.nat({ max: 0xffff_ffff }) },
);

/** Offsets in a virtio-mmio window: the defined registers, config space, anything. */
export const mmioOffset: fc.Arbitrary<number> = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...Object.values(REG).filter((o) => o < REG.Config)) },
  { weight: 1, arbitrary: fc.constantFrom(REG.Config, REG.Config + 4, REG.Config + 8, REG.Config + 0x10, MMIO_WINDOW_SIZE - 4) },
  { weight: 1, arbitrary: fc.nat({ max: MMIO_WINDOW_SIZE - 1 }) },
);

export const width: fc.Arbitrary<1 | 2 | 4> = fc.oneof({ weight: 8, arbitrary: fc.constant(4 as const) }, { weight: 1, arbitrary: fc.constantFrom(1 as const, 2 as const) });

/** Queue sizes: the legal ones and a few that are not. */
export const queueNum: fc.Arbitrary<number> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(1, 2, 4, 8, 16, 32, 64) },
  { weight: 1, arbitrary: fc.constantFrom(0, 3, 256, 1024, 0x1_0000, 0xffff_ffff) },
);
