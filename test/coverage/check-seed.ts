// The coverage gate for the functions the noirq patch adds or changes:
// every branch inside each of them must have been taken at least once.
// vitest's thresholds work per file or glob, not per function, so this reads
// the istanbul-format coverage-final.json the v8 provider writes (mapped back
// to the TypeScript sources) and, for each listed function, checks every
// branch whose location lies inside the function's body. It fails when a
// function is missing from the report (renamed, or never loaded), was never
// called, or has a branch arm with a zero count.
//
//   node dist/test/coverage/check-seed.js [coverage/coverage-final.json]
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/** C name → the model's function in core/virtio.ts (the err: labels are helpers of their function). */
const SEED: Record<string, string[]> = {
  virtio_add_status_noirq: ['virtioAddStatusNoirq'],
  virtio_features_ok_noirq: ['virtioFeaturesOkNoirq'],
  virtio_reset_device_noirq: ['virtioResetDeviceNoirq'],
  virtio_device_reinit_noirq: ['virtioDeviceReinitNoirq'],
  virtio_config_core_enable_noirq: ['virtioConfigCoreEnableNoirq'],
  virtio_device_ready_noirq: ['virtioDeviceReadyNoirq'],
  virtio_has_valid_pm_cbs: ['virtioHasValidPmCbs'],
  virtio_device_freeze: ['virtioDeviceFreeze'],
  virtio_device_restore: ['virtioDeviceRestore', 'restoreErr'],
  virtio_device_freeze_noirq: ['virtioDeviceFreezeNoirq'],
  virtio_device_restore_noirq: ['virtioDeviceRestoreNoirq', 'restoreNoirqErr'],
};
const FILE = 'core/virtio.ts';

interface Pos {
  line: number;
  column: number | null;
}
interface Range {
  start: Pos;
  end: Pos;
}
interface FileCoverage {
  fnMap: Record<string, { name: string; loc: Range }>;
  f: Record<string, number>;
  branchMap: Record<string, { type: string; loc: Range; locations: Partial<Range>[] }>;
  b: Record<string, number[]>;
}

const reportPath = resolve(process.argv[2] ?? 'coverage/coverage-final.json');
const report = JSON.parse(readFileSync(reportPath, 'utf8')) as Record<string, FileCoverage>;
const key = Object.keys(report).find((k) => k.replaceAll('\\', '/').endsWith(`/${FILE}`));
if (!key) {
  console.error(`seed coverage: ${FILE} is not in ${reportPath}`);
  process.exit(1);
}
const file = report[key]!;

/** A column of null means the end of the line. */
const col = (p: Pos): number => p.column ?? Number.POSITIVE_INFINITY;
/** a before or at b (line, then column). */
const le = (a: Pos, b: Pos): boolean => a.line < b.line || (a.line === b.line && col(a) <= col(b));
const inside = (loc: Range, range: Range): boolean => le(range.start, loc.start) && le(loc.end, range.end);

const problems: string[] = [];
const rows: string[] = [];
for (const [cName, names] of Object.entries(SEED)) {
  let total = 0;
  let covered = 0;
  for (const name of names) {
    const fnIds = Object.keys(file.fnMap).filter((id) => file.fnMap[id]!.name === name);
    if (fnIds.length !== 1) {
      problems.push(`${cName}: expected one function ${name} in ${FILE}, found ${fnIds.length}`);
      continue;
    }
    const fn = file.fnMap[fnIds[0]!]!;
    if (!file.f[fnIds[0]!]) problems.push(`${cName}: ${name} never ran`);
    for (const [id, br] of Object.entries(file.branchMap)) {
      if (!inside(br.loc, fn.loc)) continue;
      file.b[id]!.forEach((count, arm) => {
        total++;
        if (count > 0) covered++;
        else {
          const start = br.locations[arm]?.start;
          const at = start?.line ? start : br.loc.start;
          const what = br.type === 'if' ? (arm === 0 ? 'then' : 'else') : `arm ${arm}`;
          problems.push(`${cName}: ${br.type} at ${FILE}:${at.line}:${col(at) + 1}, ${what} never taken`);
        }
      });
    }
  }
  rows.push(`  ${cName.padEnd(34)} ${covered}/${total} branch arms`);
}

console.log(`seed functions (${FILE}):\n${rows.join('\n')}`);
if (problems.length) {
  console.error(`seed coverage: ${problems.length} problem(s)\n${problems.map((p) => `  ${p}`).join('\n')}`);
  process.exit(1);
}
console.log('seed coverage: every branch of every seed function taken');
