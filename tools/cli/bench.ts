// virtio-emu bench: run the benchmark cases and print a table or JSON.
// Progress goes to stderr while the cases run; the table (or the JSON
// report) goes to stdout at the end, with every ratio filled in.
import { allCases } from '../bench/cases/index.js';
import { SCALE_DEVICES_QUICK } from '../bench/cases/scale.js';
import { formatMarkdown, formatRow, formatTable, plan, runBench, type BenchResult } from '../bench/suite.js';
import { MAX_CONTEND } from '../bench/contend.js';
import { boolOpt, shown, stringOpt, UsageError, type CliCommand } from './args.js';

/** --contend 2,4 / --contend 4 / --contend 0 (no contention variants). */
function contendLevels(text: string): number[] {
  const levels = text.split(',').map((w) => Number(w.trim()));
  for (const n of levels) {
    if (!Number.isInteger(n) || n < 0 || n > MAX_CONTEND) throw new UsageError(`--contend takes busy-process counts 0..${MAX_CONTEND}, comma-separated (got ${JSON.stringify(text)})`);
  }
  return levels.filter((n) => n > 0);
}

/**
 * Progress on stderr: each row as it is measured on a terminal (unless the
 * output is JSON, whose reader wants the table once); elsewhere (a log) one
 * short line per case.
 */
function progress(json: boolean): (r: BenchResult, done: number, total: number) => void {
  if (process.stderr.isTTY && !json) return (r) => process.stderr.write(`${formatRow(r)}\n`);
  return (r, done, total) => process.stderr.write(`bench: ${done}/${total} ${r.name}${r.error ? ' FAILED' : r.skipped ? ' skipped' : ''}\n`);
}

export const command: CliCommand = {
  name: 'bench',
  summary: 'measure the register path, the data path, probe/PM, scale and idle cost',
  usage: '[--json|--markdown] [--quick] [--filter NAME] [--contend N[,N...]] [--list]',
  help: [
    '--json         print {machine, results} as JSON instead of a table',
    '--markdown     print the table as Markdown',
    '--quick        short warm-up and measurement, to check that everything runs (numbers are',
    `               rough): the big cases are capped (scale.probe.1024dev probes ${SCALE_DEVICES_QUICK} devices,`,
    '               the idle window is 1 s) and no contention variants run unless --contend asks',
    '--filter NAME  only cases whose name contains NAME (comma-separated: any of them)',
    '--contend N    run the contention cases again with N busy processes beside the',
    '               measured pair, as NAME.contendN (comma-separated levels; default 2,4',
    '               without --quick; 0: none). With --filter, applies to the cases it picks',
    '--list         list the cases and exit',
    '--board URL    module exporting createBoard (default: the real board)',
    'Progress goes to stderr (none with --json): the rows as they are measured on a terminal,',
    'one short line per case otherwise; the table (or JSON) goes to stdout at the end.',
  ].join('\n'),
  options: {
    json: { type: 'boolean' },
    markdown: { type: 'boolean' },
    quick: { type: 'boolean' },
    filter: { type: 'string' },
    contend: { type: 'string' },
    list: { type: 'boolean' },
    board: { type: 'string' },
  },
  async run(values) {
    if (boolOpt(values, 'list')) {
      for (const c of allCases) process.stdout.write(`${c.name.padEnd(36)} ${c.description}${c.contend ? ' [also .contendN]' : ''}\n`);
      return 0;
    }
    const json = boolOpt(values, 'json');
    const markdown = boolOpt(values, 'markdown');
    if (json && markdown) throw new UsageError('--json and --markdown are two output formats: give one');
    const quick = boolOpt(values, 'quick');
    const filter = stringOpt(values, 'filter');
    const board = stringOpt(values, 'board');
    const contend = stringOpt(values, 'contend');
    const contendLevelList = contend !== undefined ? contendLevels(contend) : undefined;
    if (filter !== undefined && plan(allCases, filter, contendLevelList, quick).length === 0) {
      throw new UsageError(`--filter: no case matches '${shown(filter)}' (bench --list names them)`);
    }
    const onResult = progress(json);
    const report = await runBench({
      quick,
      ...(filter !== undefined ? { filter } : {}),
      ...(contendLevelList !== undefined ? { contendLevels: contendLevelList } : {}),
      ...(board !== undefined ? { boardModule: new URL(board, `file://${process.cwd()}/`).href } : {}),
      onResult,
    });
    const out = json ? JSON.stringify(report, null, 2) : markdown ? formatMarkdown(report) : formatTable(report);
    process.stdout.write(`${out}\n`);
    return report.results.some((r) => r.error) ? 1 : 0;
  },
};
