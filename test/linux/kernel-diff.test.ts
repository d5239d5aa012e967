// kernel-diff: the model held against Linux 6.12 access by access. The
// scenarios of probe and I/O must come out the same on both transports; the
// comparison itself must see a difference when there is one; the command's
// JSON and exit status are what the README says.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { REG } from '../../core/uapi/mmio.js';
import type { Access } from '../../tools/kernel-diff/access-log.js';
import { firstDifference, resultDifferences } from '../../tools/kernel-diff/compare.js';
import { diffScenario } from '../../tools/kernel-diff/diff.js';
import { pmScenarios, probeScenarios } from '../../tools/kernel-diff/scenarios.js';
import { built } from './helpers.js';

const CLI = fileURLToPath(new URL('../../tools/cli.js', import.meta.url));

const acc = (reg: number, dir: 'r' | 'w', value: number, slot = 0): Access => ({ slot, reg, width: 4, dir, value });

describe('the comparison', () => {
  it('finds the first access that differs, and a trace that ends early', () => {
    const a = [acc(REG.MagicValue, 'r', 0x74726976), acc(REG.Status, 'w', 1), acc(REG.Status, 'r', 1)];
    expect(firstDifference(a, a)).toBeNull();
    const b = [a[0]!, acc(REG.Status, 'w', 3), a[2]!];
    expect(firstDifference(a, b)).toMatchObject({ index: 1, model: 'slot 0 write32 Status <- 0x1', linux: 'slot 0 write32 Status <- 0x3' });
    expect(firstDifference(a, a.slice(0, 2))).toMatchObject({ index: 2, linux: null });
    expect(firstDifference(a, [a[0]!, acc(REG.Status, 'w', 1, 1), a[2]!])).toMatchObject({ index: 1 });
  });

  it('compares ring addresses as addresses, every other value bit for bit', () => {
    expect(firstDifference([acc(REG.QueueDescLow, 'w', 0x4010_0000)], [acc(REG.QueueDescLow, 'w', 0x4020_0000)])).toBeNull();
    expect(firstDifference([acc(REG.QueuePFN, 'w', 0x40100)], [acc(REG.QueuePFN, 'w', 0)])).not.toBeNull();
    expect(firstDifference([acc(REG.QueueNum, 'w', 256)], [acc(REG.QueueNum, 'w', 128)])).not.toBeNull();
  });

  it('lists each device-visible result that differs', () => {
    const r = { slot: 0, status: 15, driver: 'virtio_rng', features: '0x1', usedBuffers: 2, notifications: 2, usedInterrupts: 2, configInterrupts: 0, guestErrors: 0 };
    expect(resultDifferences([r], [r])).toEqual([]);
    expect(resultDifferences([r], [{ ...r, status: 0x8b, driver: null }])).toEqual([
      { slot: 0, field: 'status', model: '15', linux: '139' },
      { slot: 0, field: 'driver', model: 'virtio_rng', linux: 'null' },
    ]);
  });
});

describe('the scenarios', () => {
  it('cover virtio-mmio v2 on both ring layouts (the device offering RING_PACKED, and packed=false) and legacy on split rings', () => {
    const names = probeScenarios(null, ['mmio', 'mmio-legacy']).map((s) => s.name);
    expect(names.filter((n) => n.endsWith('.mmio.packed'))).toHaveLength(11);
    expect(names.filter((n) => n.endsWith('.mmio.split'))).toHaveLength(11);
    expect(names.filter((n) => n.endsWith('.mmio-legacy'))).toHaveLength(11);
    const [packed] = probeScenarios(null, ['mmio']);
    expect(packed!.devices).toEqual([{ type: 'rng', transport: 'mmio', options: { packed: true } }]);
    const custom = probeScenarios([{ type: 'rng', options: { packed: false } }], ['mmio']);
    expect(custom.map((s) => s.devices[0]!.options)).toEqual([{ packed: false }, { packed: false }]);
  });
});

describe.skipIf(!built)('the model against Linux 6.12', () => {
  it.each(probeScenarios(null, ['mmio', 'mmio-legacy']).map((s) => [s.name, s] as const))('%s: the same register trace and results', async (_name, s) => {
    const r = await diffScenario(s);
    const { log, ...rest } = r;
    expect(rest).toEqual({ name: s.name, same: true, accesses: r.accesses });
    expect(r.accesses).toBeGreaterThan(20);
    // Only a refused FEATURES_OK is logged, by both kernels alike.
    // (legacy devices have no FEATURES_OK to refuse)
    if (s.name.startsWith('refused-features.rng.mmio.')) expect(log).toEqual(['virtio0: virtio: device refuses features: 3']);
    else expect(log).toBeUndefined();
  });

  it('has at least 40 system-sleep scenarios over both transports', () => {
    const pm = pmScenarios(['mmio', 'mmio-legacy']);
    expect(pm.length).toBeGreaterThanOrEqual(40);
    expect(new Set(pm.map((s) => s.name)).size).toBe(pm.length);
  });

  it.each(pmScenarios(['mmio', 'mmio-legacy']).map((s) => [s.name, s] as const))('%s: the same PM records, noirq states and register trace', async (_name, s) => {
    const r = await diffScenario(s);
    const { log: _log, ...rest } = r;
    expect(rest).toEqual({ name: s.name, same: true, accesses: r.accesses });
  });

  it('the refusals are logged the same by both kernels, with Linux dpm wording', async () => {
    const s = pmScenarios(['mmio']).find((x) => x.name === 'refusal.mis-paired.mmio')!;
    const r = await diffScenario(s);
    expect(r.same).toBe(true);
    expect(r.log).toContain('virtio0: PM: failed to suspend: error -22');
  });

  it('a scenario whose kernels really differ is reported with the first difference', async () => {
    // One kernel boots with the device refusing FEATURES_OK, the other not:
    // the same scenario name, different machines, must not come out the same.
    const [base] = probeScenarios(null, ['mmio']);
    let boots = 0;
    const r = await diffScenario({
      ...base!,
      beforeBoot: (m) => {
        if (boots++ === 1) m.control({ op: 'inject', slot: 0, event: 'refuse-features' });
      },
    });
    expect(r.same).toBe(false);
    expect(r.firstDifference?.linux).toMatch(/Status/);
    expect(r.resultDifferences?.map((d) => d.field)).toContain('status');
  });

  it('the command prints one JSON document with every scenario, exit 0', () => {
    const p = spawnSync(process.execPath, [CLI, 'kernel-diff', '--json', '--transport', 'mmio-legacy', '--only', 'probe'], { encoding: 'utf8', timeout: 120_000 });
    expect(p.status).toBe(0);
    const doc = JSON.parse(p.stdout) as { scenarios: { name: string; same: boolean; accesses: number }[] };
    expect(doc.scenarios.length).toBeGreaterThanOrEqual(10);
    expect(doc.scenarios.every((s) => s.name.endsWith('.mmio-legacy') && s.same && s.accesses > 0)).toBe(true);
  });
});

describe('kernel-diff usage errors', () => {
  it.each([
    [['--transport', 'ccw'], /--transport: expected mmio or mmio-legacy, got 'ccw'/],
    [['--device', 'rng,transport=ccw'], /transport 'ccw' is not one both kernels drive/],
  ])('%j: exit 2, one line', (args, message) => {
    const p = spawnSync(process.execPath, [CLI, 'kernel-diff', ...args], { encoding: 'utf8' });
    expect(p.status).toBe(2);
    expect(p.stdout).toBe('');
    expect(p.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(p.stderr).toMatch(message);
  });
});
