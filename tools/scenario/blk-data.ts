// The data blk steps write and verify, and the record of what a scenario
// wrote. Data is anchored to absolute sector positions, so any sub-range of
// a write regenerates the same bytes ("blk-verify sectors 8+8 seed 1" checks
// part of "blk-write sectors 0+64 seed 1").
import { SECTOR_SIZE } from '../../core/uapi/blk.js';
import type { DataSpec } from './schema.js';

/** mulberry32: small, fast, good enough to make every sector's bytes distinct. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** The bytes of sectors [sector, sector+count) for a data spec. */
export function blkData(spec: DataSpec, sector: number, count: number): Uint8Array {
  const out = new Uint8Array(count * SECTOR_SIZE);
  if ('pattern' in spec) {
    const p = new TextEncoder().encode(spec.pattern);
    const start = sector * SECTOR_SIZE;
    for (let i = 0; i < out.length; i++) out[i] = p[(start + i) % p.length]!;
    return out;
  }
  const words = new DataView(out.buffer);
  for (let s = 0; s < count; s++) {
    // One stream per (seed, sector): hi and lo of the sector both matter.
    const abs = sector + s;
    const next = mulberry32(Math.imul(spec.seed ^ 0x9e3779b9, 0x85ebca6b) ^ (abs >>> 0) ^ Math.imul(Math.floor(abs / 2 ** 32), 0xc2b2ae35));
    for (let w = 0; w < SECTOR_SIZE / 4; w++) words.setUint32(s * SECTOR_SIZE + w * 4, next(), true);
  }
  return out;
}

export function describeData(spec: DataSpec): string {
  return 'seed' in spec ? `seed ${spec.seed}` : `pattern ${JSON.stringify(spec.pattern)}`;
}

/** Index of the first differing byte, or -1. */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** What a scenario wrote to one disk, sector by sector (later writes win). */
export class BlkShadow {
  private readonly sectors = new Map<number, Uint8Array>();

  record(sector: number, data: Uint8Array): void {
    for (let i = 0; i * SECTOR_SIZE < data.length; i++) this.sectors.set(sector + i, data.subarray(i * SECTOR_SIZE, (i + 1) * SECTOR_SIZE));
  }

  get size(): number {
    return this.sectors.size;
  }

  /** Contiguous runs of written sectors, each with its expected bytes. */
  runs(): { sector: number; data: Uint8Array }[] {
    const keys = [...this.sectors.keys()].sort((a, b) => a - b);
    const runs: { sector: number; data: Uint8Array }[] = [];
    for (let i = 0; i < keys.length; ) {
      let j = i + 1;
      while (j < keys.length && keys[j] === keys[j - 1]! + 1) j++;
      const data = new Uint8Array((j - i) * SECTOR_SIZE);
      for (let k = i; k < j; k++) data.set(this.sectors.get(keys[k]!)!, (k - i) * SECTOR_SIZE);
      runs.push({ sector: keys[i]!, data });
      i = j;
    }
    return runs;
  }
}
