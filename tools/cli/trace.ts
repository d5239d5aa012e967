// virtio-emu trace: read a trace recorded with `run --trace FILE`.
//   trace show FILE [--slot N] [--reg NAME] [--phase P] [--json]
//   trace export --chrome FILE OUT.json
import * as fs from 'node:fs';
import { isPmCallbackName, PM_CALLBACKS } from '../../core/pm/pm.js';
import { toChromeTrace } from '../trace/chrome.js';
import { readTrace } from '../trace/reader.js';
import { filterEvents, formatEvent, formatHeader, type ShowFilter } from '../trace/show.js';
import { UsageError, boolOpt, intOpt, stringOpt, type CliCommand, type CliValues } from './args.js';

function showFilter(values: CliValues): ShowFilter {
  const f: ShowFilter = {};
  const slot = intOpt(values, 'slot', 0);
  if (slot !== undefined) f.slot = slot;
  const reg = stringOpt(values, 'reg');
  if (reg !== undefined) f.reg = reg;
  const phase = stringOpt(values, 'phase');
  if (phase !== undefined) {
    // 'shutdown': device_shutdown()'s bus shutdown at a hibernation power-off
    if (phase !== 'shutdown' && !isPmCallbackName(phase))
      throw new UsageError(`--phase: unknown PM phase '${phase}' (known: ${PM_CALLBACKS.join(', ')}, shutdown)`);
    f.phase = phase;
  }
  return f;
}

function show(values: CliValues, args: string[]): number {
  if (args.length !== 1) throw new UsageError('trace show: expected one trace FILE');
  if (boolOpt(values, 'chrome')) throw new UsageError('--chrome belongs to trace export');
  const trace = readTrace(args[0]!, { partial: boolOpt(values, 'partial') });
  const events = filterEvents(trace.events, showFilter(values));
  const json = boolOpt(values, 'json');
  // `trace show FILE | head` closes the pipe early: that is not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  let lines: string[] = [json ? JSON.stringify(trace.header) : formatHeader(trace.header)];
  for (const e of events) {
    lines.push(json ? JSON.stringify(e) : formatEvent(e));
    // Write in chunks: a long trace never becomes one huge string.
    if (lines.length >= 4096) {
      process.stdout.write(`${lines.join('\n')}\n`);
      lines = [];
    }
  }
  if (!trace.end) lines.push(json ? JSON.stringify({ type: 'partial', events: trace.events.length }) : '# trace ends without an end record (recording interrupted)');
  if (lines.length) process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

function exportTrace(values: CliValues, args: string[]): number {
  if (!boolOpt(values, 'chrome')) throw new UsageError('trace export: give a format (--chrome)');
  if (args.length !== 2) throw new UsageError('trace export --chrome: expected FILE and OUT.json');
  for (const o of ['slot', 'reg', 'phase', 'json']) if (values[o] !== undefined) throw new UsageError(`--${o} belongs to trace show`);
  const [file, out] = args as [string, string];
  const trace = readTrace(file, { partial: boolOpt(values, 'partial') });
  const chrome = toChromeTrace(trace);
  try {
    fs.writeFileSync(out, `${JSON.stringify(chrome)}\n`);
  } catch (err) {
    throw new Error(`cannot write ${out}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return 0;
}

export const command: CliCommand = {
  name: 'trace',
  summary: 'print a recorded trace, or export it for Perfetto / chrome://tracing',
  usage: 'show FILE [--slot N] [--reg NAME] [--phase P] [--json] | export --chrome FILE OUT.json',
  help: [
    'show FILE         one line per event (register access, interrupt, PM callback)',
    '  --slot N        only events of slot N',
    '  --reg NAME      only accesses to register NAME (e.g. Status; Config = all config space)',
    '  --phase P       only PM callback P (e.g. resume_noirq) and what ran during it',
    '  --json          one JSON object per line (the header first)',
    'export --chrome FILE OUT.json',
    '                  Chrome trace-event JSON: a track per device, PM callbacks as slices',
    '--partial         read a trace whose recording was interrupted',
    'Filters combine: an event must pass all of them.',
  ].join('\n'),
  options: {
    slot: { type: 'string' },
    reg: { type: 'string' },
    phase: { type: 'string' },
    json: { type: 'boolean' },
    chrome: { type: 'boolean' },
    partial: { type: 'boolean' },
  },
  allowPositionals: true,
  async run(values, positionals) {
    const [sub, ...args] = positionals;
    if (sub === 'show') return show(values, args);
    if (sub === 'export') return exportTrace(values, args);
    throw new UsageError(sub === undefined ? 'expected show or export (try --help)' : `unknown subcommand '${sub}' (expected show or export)`);
  },
};
