// virtio-emu trace: read a trace recorded with `run --trace FILE`.
//   trace show FILE [--slot N] [--reg NAME] [--phase P] [--json]
//   trace export --chrome FILE OUT.json
import { isPmCallbackName, PM_CALLBACKS } from '../../core/pm/pm.js';
import { writeChromeTrace } from '../trace/chrome.js';
import { openTrace } from '../trace/reader.js';
import { EventFilter, formatEvent, formatHeader, regFilterError, type ShowFilter } from '../trace/show.js';
import { UsageError, boolOpt, intOpt, shown, stringOpt, type CliCommand, type CliValues } from './args.js';

function showFilter(values: CliValues): ShowFilter {
  const f: ShowFilter = {};
  const slot = intOpt(values, 'slot', 0, 0xffff_ffff);
  if (slot !== undefined) f.slot = slot;
  const reg = stringOpt(values, 'reg');
  if (reg !== undefined) {
    const error = regFilterError(reg);
    if (error) throw new UsageError(`--reg: ${error}`);
    f.reg = reg;
  }
  const phase = stringOpt(values, 'phase');
  if (phase !== undefined) {
    // 'shutdown': device_shutdown()'s bus shutdown at a hibernation power-off
    if (phase !== 'shutdown' && !isPmCallbackName(phase))
      throw new UsageError(`--phase: unknown PM phase '${shown(phase)}' (known: ${PM_CALLBACKS.join(', ')}, shutdown)`);
    f.phase = phase;
  }
  return f;
}

/** Lines gathered before each write: a long trace never becomes one huge string. */
const SHOW_BATCH = 4096;

function show(values: CliValues, args: string[]): number {
  if (args.length !== 1) throw new UsageError('trace show: expected one trace FILE');
  if (boolOpt(values, 'chrome')) throw new UsageError('--chrome belongs to trace export');
  const filter = new EventFilter(showFilter(values));
  const json = boolOpt(values, 'json');
  const trace = openTrace(args[0]!, { partial: boolOpt(values, 'partial') });
  // Streams: events are read, filtered and printed a batch at a time. A
  // problem found before the first batch is printed prints nothing.
  let lines: string[] = [json ? JSON.stringify(trace.header) : formatHeader(trace.header)];
  for (const e of trace.events()) {
    if (!filter.accept(e)) continue;
    lines.push(json ? JSON.stringify(e) : formatEvent(e));
    if (lines.length >= SHOW_BATCH) {
      process.stdout.write(`${lines.join('\n')}\n`);
      lines = [];
    }
  }
  if (!trace.end) {
    lines.push(json ? JSON.stringify({ type: 'partial', events: trace.count }) : `# trace ends without an end record after ${trace.count} events (recording interrupted)`);
  }
  if (lines.length) process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

function exportTrace(values: CliValues, args: string[]): number {
  if (!boolOpt(values, 'chrome')) {
    const other = values['json'] !== undefined ? ' (--json belongs to trace show)' : '';
    throw new UsageError(`trace export: the only format is --chrome: trace export --chrome FILE OUT.json${other}`);
  }
  if (args.length !== 2) throw new UsageError('trace export --chrome: expected FILE and OUT.json');
  for (const o of ['slot', 'reg', 'phase', 'json']) if (values[o] !== undefined) throw new UsageError(`--${o} belongs to trace show`);
  const [file, out] = args as [string, string];
  const trace = openTrace(file, { partial: boolOpt(values, 'partial') });
  writeChromeTrace(trace.header, trace.events(), () => trace.end, out);
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
    'Filters combine: an event must pass all of them. Both commands stream: memory does not',
    'grow with the trace; frames of at most 4 MiB are read. export writes OUT.json only when complete.',
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
