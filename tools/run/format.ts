// A run report as text (the summary) or as one JSON document.
import { statusString } from '../../core/uapi/status.js';
import type { DeviceReport, RunReport } from './execute.js';

export function formatJson(r: RunReport): string {
  return `${JSON.stringify(r, null, 2)}\n`;
}

/** One summary line per device. */
export function formatDevice(d: DeviceReport): string {
  return (
    `slot ${d.slot}: ${d.dev} ${d.name} (${d.transport}) driver ${d.driver ?? '-'}` +
    `  status 0x${d.status.toString(16).padStart(2, '0')} ${d.status >= 0 ? statusString(d.status) : '?'}` +
    `  features ${d.features}` +
    `  io ${d.io.requests} requests, ${d.io.bytes} bytes, ${d.io.errors} errors`
  );
}

/** The snapshot file a run wrote, or continued from. */
export function formatCheckpoint(c: NonNullable<RunReport['checkpoint']>, scenario: boolean): string {
  const point = scenario ? `steps[${c.at}]` : c.at === 0 ? 'the first I/O check' : `cycle ${c.at}`;
  return c.kind === 'snapshot' ? `snapshot written to ${c.file} after ${point}` : `restored from ${c.file} after ${point} (the steps up to it ran again)`;
}

export function formatText(r: RunReport): string {
  const lines: string[] = [];
  if (r.devices.length === 0) lines.push('no virtio devices found');
  for (const d of r.devices) lines.push(formatDevice(d));
  for (const c of r.pm ?? []) {
    const failed = c.phases.filter((p) => p.result !== '0');
    lines.push(
      `${c.kind} cycle ${c.cycle} (power ${c.power}): ${c.result === '0' ? 'ok' : `aborted ${c.result}${c.failedStep ? ` in ${c.failedStep}` : ''}`}, ` +
        `${c.phases.length} callbacks${failed.length ? `, failed: ${failed.map((p) => `${p.phase}@${p.slot} ${p.result}`).join(' ')}` : ''}` +
        `, devices ${c.devicesOk ? 'ok' : 'NOT ok'}` +
        (c.mode ? `, hibernation mode ${c.mode}` : '') +
        (c.platformEnterError ? `, powered off despite ${c.platformEnterError}` : ''),
    );
  }
  const s = r.pmSummary;
  if (s) {
    const results = Object.entries(s.results).map(([res, n]) => `${n} ${res === '0' ? 'ok' : res}`).join(', ');
    lines.push(`${s.cycles} cycles in all (${s.cycles - s.listed} not listed): ${results}; devices not ok after ${s.devicesNotOk}`);
  }
  if (r.checkpoint) lines.push(formatCheckpoint(r.checkpoint, false));
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  const i = r.interrupted;
  if (i) lines.push(`interrupted by ${i.signal} after ${i.cyclesDone} of ${i.cycles} cycles; the report covers what ran`);
  lines.push(r.ok ? (i ? 'ok so far' : 'ok') : 'FAILED');
  return `${lines.join('\n')}\n`;
}
