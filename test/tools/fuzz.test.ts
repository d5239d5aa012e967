// The fuzz properties of tools/fuzz/ with fixed seeds and bounded run
// counts (a few seconds in all), a check that the generators still reach
// the deep states the properties are about, and `virtio-emu fuzz` itself.
// Longer campaigns: `virtio-emu fuzz --seconds N`.
import * as fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { deviceTypes } from '../../emulator/devices/catalog.js';
import { ccwDevices, ccwOp, ccwProperty, runCcwOps } from '../../tools/fuzz/ccw-programs.js';
import { RAM_BASE } from '../../tools/fuzz/fuzz-board.js';
import { writesOutside } from '../../tools/testkit/ranges.js';
import { mmioRegisterProperty, regOp, registerBoardDevices, runRegOps } from '../../tools/fuzz/mmio-registers.js';
import { packedCase, packedRingProperty, runPackedCase } from '../../tools/fuzz/packed-rings.js';
import { ringCase, ringProperty, runRingCase } from '../../tools/fuzz/rings.js';
import { runFuzz, type FuzzTarget } from '../../tools/fuzz/campaign.js';
import { runStatusOps, statusDevices, statusFeatureProperty, statusOp } from '../../tools/fuzz/status-features.js';
import { WorkerRegisterFuzz } from '../../tools/fuzz/worker-registers.js';
import { main } from '../../tools/cli/dispatch.js';
import { QtestLineFuzz, qtestCase } from '../../tools/fuzz/qtest-lines.js';
import { readAll, sampleTrace, traceInput, traceReaderProperty } from '../../tools/fuzz/trace-reader.js';

const SEED = 0x5eed;

describe('fuzz properties, fixed seed', () => {
  it('register-access sequences over every model type (virtio-mmio v2) and legacy rng', () => {
    fc.assert(mmioRegisterProperty(registerBoardDevices(deviceTypes())), { seed: SEED, numRuns: 60 });
  });
  it('descriptor tables, indirect tables, avail rings and indices: writes only where handed over', () => {
    fc.assert(ringProperty(), { seed: SEED, numRuns: 120 });
  });
  it('packed rings: chains, raw descriptors, wrap bits, ids and event areas: writes only where handed over, no id used more often than written', () => {
    fc.assert(packedRingProperty(), { seed: SEED, numRuns: 120 });
  });
  it('orders of Status writes and feature-register accesses', () => {
    fc.assert(statusFeatureProperty(statusDevices(deviceTypes())), { seed: SEED, numRuns: 200 });
  });
  it('channel programs over virtio-ccw devices', () => {
    fc.assert(ccwProperty(ccwDevices(deviceTypes())), { seed: SEED, numRuns: 50 });
  });

  describe('through the device worker', () => {
    let w: WorkerRegisterFuzz;
    beforeAll(async () => {
      w = await WorkerRegisterFuzz.create();
    });
    afterAll(async () => {
      await w.close();
    });
    it('register-access sequences: no access fails or outlasts the trap deadline', () => {
      fc.assert(w.property(), { seed: SEED, numRuns: 15 });
    });
  });
});

describe('HI-50: host-side properties, fixed seed', () => {
  let q: QtestLineFuzz;
  beforeAll(async () => {
    q = await QtestLineFuzz.create();
  });
  afterAll(async () => {
    await q.close();
  });
  it('qtest lines: one bounded OK or FAIL reply per line; the splitter holds at most its limit', () => {
    fc.assert(q.property(), { seed: SEED, numRuns: 60 });
  });
  it('qtest lines reach both OK and FAIL replies', () => {
    const outcomes = fc.sample(qtestCase, { seed: SEED, numRuns: 40 }).map((c) => q.run(c));
    expect(outcomes.reduce((n, o) => n + o.ok, 0)).toBeGreaterThan(50);
    expect(outcomes.reduce((n, o) => n + o.fail, 0)).toBeGreaterThan(50);
  });
  it('trace reader: a read or a TraceFormatError, buffers bounded by the input', () => {
    fc.assert(traceReaderProperty(), { seed: SEED, numRuns: 400 });
  });
  it('damaged traces are read in part before the damage, and some still read whole', () => {
    const outcomes = fc.sample(traceInput(sampleTrace()), { seed: SEED, numRuns: 300 }).map(readAll);
    expect(outcomes.filter((o) => o.read).length).toBeGreaterThan(10);
    expect(outcomes.filter((o) => !o.read && o.events > 0).length).toBeGreaterThan(10);
    expect(readAll({ bytes: sampleTrace(), partial: false })).toEqual({ read: true, events: 10 });
  });
});

describe('the generators reach the states the properties are about', () => {
  it('register sequences bring devices to DRIVER_OK and complete requests', () => {
    const devices = registerBoardDevices(deviceTypes());
    const outcomes = fc.sample(fc.array(regOp(devices.length), { minLength: 1, maxLength: 60, size: 'max' }), { seed: SEED, numRuns: 100 }).map((ops) => runRegOps(devices, ops));
    expect(outcomes.filter((o) => o.driverOk > 0).length).toBeGreaterThan(40);
    expect(outcomes.filter((o) => o.usedBuffers > 0).length).toBeGreaterThan(5);
  });
  it('ring cases both complete chains and hit malformed rings', () => {
    const outcomes = fc.sample(ringCase, { seed: SEED, numRuns: 100 }).map(runRingCase);
    expect(outcomes.filter((o) => o.usedBuffers > 0).length).toBeGreaterThan(15);
    expect(outcomes.filter((o) => o.ringErrors > 0).length).toBeGreaterThan(15);
  });
  it('packed cases complete chains across laps and hit malformed rings', () => {
    const outcomes = fc.sample(packedCase, { seed: SEED, numRuns: 100 }).map(runPackedCase);
    expect(outcomes.filter((o) => o.usedBuffers > 0).length).toBeGreaterThan(15);
    // At least a whole ring used: the device's used wrap counter flipped.
    expect(outcomes.filter((o) => o.usedBuffers >= o.num).length).toBeGreaterThan(10);
    expect(outcomes.filter((o) => o.ringErrors > 0).length).toBeGreaterThan(15);
  });
  it('status orders get FEATURES_OK to stick', () => {
    const devices = statusDevices(deviceTypes());
    const ok = fc.sample(fc.tuple(fc.nat({ max: devices.length - 1 }), fc.array(statusOp, { minLength: 1, maxLength: 40, size: 'max' })), { seed: SEED, numRuns: 100 }).filter(([d, ops]) => runStatusOps(devices[d]!, ops).featuresOk);
    expect(ok.length).toBeGreaterThan(10);
  });
  it('channel programs bring devices to DRIVER_OK', () => {
    const devices = ccwDevices(deviceTypes());
    const seen = fc.sample(fc.array(ccwOp(devices.length), { minLength: 1, maxLength: 40, size: 'max' }), { seed: SEED, numRuns: 40 }).map((ops) => runCcwOps(devices, ops).statusSeen);
    expect(seen.filter((s) => s & 4).length).toBeGreaterThan(5);
  });
  it('the write check sees a single stray byte', () => {
    const before = new Uint8Array(64);
    const now = before.slice();
    now[10] = 1;
    now[40] = 1;
    const mem = { base: RAM_BASE, size: now.length, u8: now, view: new DataView(now.buffer) };
    expect(writesOutside(mem, before, [{ addr: RAM_BASE + 8, len: 4 }])).toEqual([{ addr: RAM_BASE + 40, len: 1 }]);
    now[41] = 1;
    expect(writesOutside(mem, before, [{ addr: RAM_BASE + 8, len: 4 }])).toEqual([{ addr: RAM_BASE + 40, len: 2 }]);
  });
});

describe('runFuzz', () => {
  it('reports each distinct failure once, shrunk, with the seed and path that replay it', async () => {
    const failing: FuzzTarget = {
      name: 'demo',
      description: 'fails for n ≥ 1000',
      batch: 200,
      open: async () => ({
        property: fc.property(fc.nat(), (n) => {
          if (n >= 1000) throw new Error(`n = ${n} is too big`);
        }) as unknown as fc.IProperty<unknown[]>,
      }),
    };
    const r = await runFuzz({ seconds: 0, seed: 1, targets: [failing] });
    expect(r.iterations).toBeGreaterThan(0);
    expect(r.failures).toBe(1);
    const c = r.counterexamples[0]!;
    expect(c.counterexample).toEqual([1000]);
    expect(c.error).toBe('Error: n = 1000 is too big');
    const again = fc.check(fc.property(fc.nat(), (n) => n < 1000), { seed: c.seed, path: c.path ?? '' });
    expect(again.failed).toBe(true);
  });
});

describe('virtio-emu fuzz', () => {
  function capture(): { out: () => string; err: () => string; restore: () => void } {
    let text = '';
    let errText = '';
    const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      text += String(chunk);
      return true;
    });
    const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      errText += String(chunk);
      return true;
    });
    return {
      out: () => text,
      err: () => errText,
      restore: () => {
        out.mockRestore();
        err.mockRestore();
      },
    };
  }

  it('--json prints iterations, failures and counterexamples; exit 0 when nothing failed', async () => {
    const io = capture();
    let code: number;
    try {
      code = await main(['fuzz', '--seconds', '1', '--seed', '7', '--property', 'rings', '--property', 'status-features', '--json']);
    } finally {
      io.restore();
    }
    expect(io.err()).toBe('');
    expect(code).toBe(0);
    const report = JSON.parse(io.out()) as Record<string, unknown>;
    expect(Object.keys(report)).toEqual(['iterations', 'failures', 'counterexamples']);
    expect(report.iterations).toBeGreaterThan(0);
    expect(report.failures).toBe(0);
    expect(report.counterexamples).toEqual([]);
  });

  it('an unknown property is a usage error', async () => {
    const errs: string[] = [];
    const code = await main(['fuzz', '--property', 'nope'], { out: () => {}, err: (t) => errs.push(t) });
    expect(code).toBe(2);
    expect(errs.join('')).toMatch(/unknown property 'nope'/);
  });
});
