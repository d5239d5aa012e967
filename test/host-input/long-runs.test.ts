// HI-30..HI-32: flat memory over long runs. The report lists a bounded number
// of PM cycles and problems and counts the rest, the PM core forgets each
// cycle's records once the report has them, and the kernel log keeps a
// bounded number of messages. Checked by sizes that must not grow with the
// number of cycles, not by memory timings.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KERNEL_LOG_MAX, Kernel } from '../../core/kernel.js';
import type { PmInjection } from '../../core/pm/dpm.js';
import { EBUSY } from '../../core/uapi/errno.js';
import { RUN_LIMITS } from '../../tools/limits.js';
import { executePlan, type RunReport } from '../../tools/run/execute.js';
import { formatJson, formatText } from '../../tools/run/format.js';
import { buildPlan, defaultSettings, type RunPlan } from '../../tools/run/plan.js';
import { VirtioSystem } from '../../tools/system.js';
import { readTrace } from '../../tools/trace/reader.js';
import { TraceRecorder } from '../../tools/trace/recorder.js';

const dir = mkdtempSync(join(tmpdir(), 'vemu-long-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function plan(cycles: number, fails: PmInjection[] = [], trace?: string): { plan: RunPlan; kept: number[] } {
  const s = {
    ...defaultSettings(),
    devices: [{ type: 'rng' as const, transport: 'mmio' as const }, { type: 'rtc' as const, transport: 'mmio' as const }],
    bus: 'inthread' as const,
    pm: 'suspend' as const,
    cycles,
    fails,
    ...(trace ? { trace } : {}),
  };
  const p = buildPlan(s);
  const kept: number[] = [];
  // What the PM core still holds once the cycles are done.
  p.steps.push({ name: 'measure', run: (ctx) => void kept.push(ctx.sys.dpm.record.length) });
  return { plan: p, kept };
}

describe('HI-30: the report of a long run stays the same size', () => {
  it('300 and 1200 cycles give reports of the same size, every cycle counted in pmSummary; the PM core keeps no cycle records', async () => {
    const sizes: number[] = [];
    const reports: RunReport[] = [];
    for (const n of [300, 1200]) {
      const { plan: p, kept } = plan(n);
      const r = await executePlan(p);
      expect(r.ok).toBe(true);
      expect(kept[0]).toBe(0);
      sizes.push(formatJson(r).length);
      reports.push(r);
    }
    // The cycle numbers in the listed cycles are the only difference: a few bytes.
    expect(Math.abs(sizes[1]! - sizes[0]!)).toBeLessThan(64);
    const r = reports[1]!;
    expect(r.pm).toHaveLength(RUN_LIMITS.reportCycles);
    expect(r.pmSummary).toMatchObject({ cycles: 1200, listed: RUN_LIMITS.reportCycles, results: { '0': 1200 }, devicesNotOk: 0 });
    expect(r.pmSummary!.note).toMatch(/first 100 cycles/);
    expect(formatText(r)).toContain('1200 cycles in all (1100 not listed): 1200 ok; devices not ok after 0');
  });

  it('a failure in every cycle: failed cycles and problems are listed up to their limits and counted after', async () => {
    // rng's resume never runs: its queue stays torn down and every cycle's I/O check fails.
    const fail: PmInjection = { phase: 'resume', device: 0, errno: EBUSY };
    const { plan: p } = plan(1500, [fail]);
    const r = await executePlan(p);
    expect(r.ok).toBe(false);
    expect(r.pmSummary).toMatchObject({ cycles: 1500, listed: 2 * RUN_LIMITS.reportCycles, devicesNotOk: 1500 });
    expect(r.pm).toHaveLength(2 * RUN_LIMITS.reportCycles);
    expect(r.warnings).toHaveLength(RUN_LIMITS.reportWarnings + 1);
    expect(r.warnings.at(-1)).toMatch(/^\.\.\. and \d+ more problems and kernel messages not listed$/);
    expect(formatJson(r).length).toBeLessThan(200_000);
  });

  it('an injected failure still reaches the trace when the PM core forgets its records after each cycle', async () => {
    const file = join(dir, 'inj.trace');
    // The first callback of the suspend fails: the transition ends with no hook run after it.
    const { plan: p } = plan(5, [{ phase: 'suspend', device: 1, errno: EBUSY }], file);
    await executePlan(p);
    const injected = readTrace(file).events.filter((e) => e.type === 'pm' && e.injected);
    expect(injected).toHaveLength(5);

    // Trimmed right after the transition, with no access in between: the recorder catches up first.
    const file2 = join(dir, 'inj2.trace');
    const rec = new TraceRecorder(file2);
    const sys = await VirtioSystem.create(rec.systemOptions({ devices: ['rng', 'rtc'], bus: 'inthread' }));
    rec.attachPm(sys.dpm);
    sys.injectPmFailure({ phase: 'suspend', device: 1, errno: EBUSY });
    expect(sys.suspend().result).toBe(-EBUSY);
    sys.dpm.trimRecord();
    await sys.close();
    rec.close();
    expect(readTrace(file2).events.filter((e) => e.type === 'pm' && e.injected)).toHaveLength(1);
  });
});

describe('HI-31: the kernel log is bounded', () => {
  it('keeps the first KERNEL_LOG_MAX messages and warnings, counts the rest, and the count still fails a run', () => {
    const k = new Kernel();
    const dev = { name: 'virtio0', warnings: [], messages: [] };
    for (let i = 0; i < KERNEL_LOG_MAX + 500; i++) {
      k.log('err', dev, `message ${i}`);
      k.warnOn(true, dev, 'x', 'y');
    }
    expect(k.messages).toHaveLength(KERNEL_LOG_MAX);
    expect(k.messages[0]!.msg).toBe('message 0');
    expect(dev.messages).toHaveLength(KERNEL_LOG_MAX);
    expect(k.dropped).toBe(500);
    expect(k.warnings).toHaveLength(KERNEL_LOG_MAX);
    expect(k.warningsDropped).toBe(500);
    k.clear();
    expect([k.dropped, k.warningsDropped, k.messages.length]).toEqual([0, 0, 0]);
  });
});
