// What a scenario run reports: one entry per step (in the JSON document's
// "scenario" field) and the short text summary `npm start` prints.
import type { RunReport } from '../run/execute.js';
import { formatCheckpoint, formatDevice } from '../run/format.js';
import type { StepKind } from './schema.js';

export interface ScenarioStepReport {
  /** Position in the file's steps array. */
  index: number;
  do: StepKind;
  /** The device the step names, if any. */
  device: string | null;
  /** 'skipped': an earlier step failed, so this one did not run. */
  result: 'ok' | 'failed' | 'skipped';
  /** What the step did or found, one line. */
  detail: string;
}

export interface ScenarioReport {
  name: string;
  file: string | null;
  steps: ScenarioStepReport[];
}

/** A run report with the scenario's steps. */
export interface ScenarioRunReport extends RunReport {
  /** Step by step. */
  scenario: ScenarioReport;
}

/** The run's report with the scenario's steps (placed before the warnings, as the JSON document shows them). */
export function withScenario(r: RunReport, scenario: ScenarioReport): ScenarioRunReport {
  const failed = scenario.steps.some((s) => s.result !== 'ok');
  const { warnings, ...rest } = r;
  return { ...rest, ok: r.ok && !failed, scenario, warnings };
}

/** The summary: the steps, the devices at the end, any warnings, the verdict. */
export function formatScenarioText(r: ScenarioRunReport): string {
  const s = r.scenario;
  const lines: string[] = [];
  if (s) {
    lines.push(`scenario ${s.name}${s.file ? ` (${s.file})` : ''}`);
    const width = Math.max(...s.steps.map((st) => `${st.do}${st.device ? ` ${st.device}` : ''}`.length), 0);
    const num = String(s.steps.length).length;
    for (const st of s.steps) {
      const what = `${st.do}${st.device ? ` ${st.device}` : ''}`.padEnd(width);
      const mark = st.result === 'ok' ? 'ok  ' : st.result === 'failed' ? 'FAIL' : 'skip';
      lines.push(`  ${String(st.index + 1).padStart(num)} ${mark} ${what}  ${st.detail}`);
    }
  }
  for (const d of r.devices) lines.push(formatDevice(d));
  if (r.checkpoint) lines.push(formatCheckpoint(r.checkpoint, true));
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  lines.push(r.ok ? 'ok' : 'FAILED');
  return `${lines.join('\n')}\n`;
}
