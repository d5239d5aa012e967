// The fuzz campaign behind `virtio-emu fuzz`: every property in turn, in
// small batches with seeds derived from one base seed, until the time is up.
// A failing batch is shrunk by fast-check; each distinct failure (property
// and message) is reported once with its shrunk counterexample and the seed
// and path that replay it (fc.check(property, { seed, path })).
import * as fc from 'fast-check';
import type { FuzzPropertyName } from './property-names.js';
import { deviceTypes } from '../../emulator/devices/catalog.js';
import { ccwDevices, ccwProperty } from './ccw-programs.js';
import { mmioRegisterProperty, registerBoardDevices } from './mmio-registers.js';
import { packedRingProperty } from './packed-rings.js';
import { ringProperty } from './rings.js';
import { statusDevices, statusFeatureProperty } from './status-features.js';
import { WorkerRegisterFuzz } from './worker-registers.js';
import { QtestLineFuzz } from './qtest-lines.js';
import { traceReaderProperty } from './trace-reader.js';

/** A property and what it needs around it (the worker one holds a machine). */
export interface OpenProperty {
  property: fc.IProperty<unknown[]>;
  close?(): Promise<void>;
}

export interface FuzzTarget {
  name: FuzzPropertyName | (string & {});
  description: string;
  /** Runs per batch: small enough that a batch takes well under a second. */
  batch: number;
  open(): Promise<OpenProperty>;
}

const asRaw = <T extends unknown[]>(p: fc.IProperty<T>): fc.IProperty<unknown[]> => p as unknown as fc.IProperty<unknown[]>;

export const FUZZ_TARGETS: FuzzTarget[] = [
  {
    name: 'mmio-registers',
    description: 'register-access sequences over virtio-mmio devices of every model type (v2) and legacy rng',
    batch: 20,
    open: async () => ({ property: asRaw(mmioRegisterProperty(registerBoardDevices(deviceTypes()))) }),
  },
  {
    name: 'rings',
    description: 'descriptor tables, indirect tables, avail rings and indices; writes checked against what was handed over',
    batch: 25,
    open: async () => ({ property: asRaw(ringProperty()) }),
  },
  {
    name: 'packed-rings',
    description: 'packed descriptor rings: chains, raw descriptors with any AVAIL/USED bits and ids, indirect tables, event suppression areas; writes and buffer ids checked',
    batch: 25,
    open: async () => ({ property: asRaw(packedRingProperty()) }),
  },
  {
    name: 'status-features',
    description: 'orders of Status writes and feature-register accesses, every model type',
    batch: 50,
    open: async () => ({ property: asRaw(statusFeatureProperty(statusDevices(deviceTypes()))) }),
  },
  {
    name: 'ccw-programs',
    description: 'channel programs and subchannel accesses over virtio-ccw devices',
    batch: 15,
    open: async () => ({ property: asRaw(ccwProperty(ccwDevices(deviceTypes()))) }),
  },
  {
    name: 'worker-registers',
    description: 'register-access sequences through the trap mailbox to the device worker',
    batch: 5,
    open: async () => {
      const w = await WorkerRegisterFuzz.create();
      return { property: asRaw(w.property()), close: () => w.close() };
    },
  },
  {
    name: 'qtest-lines',
    description: 'random and mutated qtest command lines: one bounded OK/FAIL reply each, and the line splitter under random chunking',
    batch: 10,
    open: async () => {
      const q = await QtestLineFuzz.create();
      return { property: asRaw(q.property()), close: () => q.close() };
    },
  },
  {
    name: 'trace-reader',
    description: 'random bytes and damaged traces through the trace reader, show and the Chrome export: a TraceFormatError or a read, bounded buffers',
    batch: 50,
    open: async () => ({ property: asRaw(traceReaderProperty()) }),
  },
];

export interface FuzzCounterexample {
  property: string;
  /** Replay: fc.check(property, { seed, path }). */
  seed: number;
  path: string | null;
  error: string;
  /** The shrunk input. */
  counterexample: unknown;
}

export interface FuzzReport {
  iterations: number;
  failures: number;
  counterexamples: FuzzCounterexample[];
}

export interface FuzzProgress {
  elapsedMs: number;
  iterations: number;
  failures: number;
  perProperty: Record<string, number>;
}

export interface FuzzOptions {
  seconds: number;
  seed: number;
  /** Property names to run (default all). */
  only?: string[];
  /** The properties to choose from (default FUZZ_TARGETS). */
  targets?: FuzzTarget[];
  /** Called after every batch. */
  onProgress?(p: FuzzProgress): void;
}

function firstLine(err: unknown): string {
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return text.split('\n')[0]!;
}

/** The seed of batch `round` of property `index`: distinct, and reproducible from the base seed. */
export function batchSeed(base: number, round: number, index: number): number {
  return (base + 0x9e37 * round + 0x3c6e_f372 * index) | 0;
}

export async function runFuzz(opts: FuzzOptions): Promise<FuzzReport & { perProperty: Record<string, number> }> {
  const all = opts.targets ?? FUZZ_TARGETS;
  const targets = all.filter((t) => !opts.only || opts.only.includes(t.name));
  for (const name of opts.only ?? []) if (!all.some((t) => t.name === name)) throw new Error(`unknown fuzz property '${name}'`);
  const open: { target: FuzzTarget; p: OpenProperty }[] = [];
  const report: FuzzReport & { perProperty: Record<string, number> } = { iterations: 0, failures: 0, counterexamples: [], perProperty: {} };
  const seen = new Set<string>();
  const start = performance.now();
  try {
    for (const target of targets) open.push({ target, p: await target.open() });
    for (let round = 0; ; round++) {
      for (const [index, { target, p }] of open.entries()) {
        if (round > 0 && performance.now() - start >= opts.seconds * 1000) return report;
        const seed = batchSeed(opts.seed, round, index);
        const details = fc.check(p.property, { seed, numRuns: target.batch });
        report.iterations += details.numRuns;
        report.perProperty[target.name] = (report.perProperty[target.name] ?? 0) + details.numRuns;
        if (details.failed) {
          const error = firstLine(details.errorInstance);
          const key = `${target.name}\n${error.replace(/0x[0-9a-f]+|\d+/gi, 'N')}`;
          if (!seen.has(key)) {
            seen.add(key);
            report.counterexamples.push({ property: target.name, seed: details.seed, path: details.counterexamplePath, error, counterexample: details.counterexample });
            report.failures = report.counterexamples.length;
          }
        }
        opts.onProgress?.({ elapsedMs: performance.now() - start, iterations: report.iterations, failures: report.failures, perProperty: { ...report.perProperty } });
      }
    }
  } finally {
    await Promise.all(open.map(({ p }) => p.close?.()));
  }
}
