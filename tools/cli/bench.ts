// virtio-emu bench: run the benchmark cases and print a table or JSON.
// Progress goes to stderr while the cases run; the table (or the JSON
// report) goes to stdout at the end, with every ratio filled in.
import { allCases } from '../bench/cases/index.js';
import { formatMarkdown, formatRow, formatTable, runBench } from '../bench/suite.js';
import { MAX_CONTEND } from '../bench/contend.js';
import { boolOpt, stringOpt, UsageError, type CliCommand } from './args.js';

/** --contend 2,4 / --contend 4 / --contend 0 (no contention variants). */
function contendLevels(text: string): number[] {
  const levels = text.split(',').map((w) => Number(w.trim()));
  for (const n of levels) {
    if (!Number.isInteger(n) || n < 0 || n > MAX_CONTEND) throw new UsageError(`--contend takes busy-process counts 0..${MAX_CONTEND}, comma-separated (got ${JSON.stringify(text)})`);
  }
  return levels.filter((n) => n > 0);
}

export const command: CliCommand = {
  name: 'bench',
  summary: 'measure the register path, the data path, probe/PM, scale and idle cost',
  usage: '[--json|--markdown] [--quick] [--filter NAME] [--contend N[,N...]] [--list]',
  help: [
    '--json         print {machine, results} as JSON instead of a table',
    '--markdown     print the table as Markdown',
    '--quick        short warm-up and measurement (the whole suite in under 20 s)',
    '--filter NAME  only cases whose name contains NAME (comma-separated: any of them)',
    '--contend N    run the contention cases again with N busy processes beside the',
    '               measured pair, as NAME.contendN (comma-separated levels; default 2,4;',
    '               0: none). With --filter, applies to the cases it picks',
    '--list         list the cases and exit',
    '--board URL    module exporting createBoard (default: the real board)',
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
    const filter = stringOpt(values, 'filter');
    const board = stringOpt(values, 'board');
    const contend = stringOpt(values, 'contend');
    const report = await runBench({
      quick: boolOpt(values, 'quick'),
      ...(filter !== undefined ? { filter } : {}),
      ...(contend !== undefined ? { contendLevels: contendLevels(contend) } : {}),
      ...(board !== undefined ? { boardModule: new URL(board, `file://${process.cwd()}/`).href } : {}),
      ...(json ? {} : { onResult: (r) => process.stderr.write(`${formatRow(r)}\n`) }),
    });
    const out = json ? JSON.stringify(report, null, 2) : boolOpt(values, 'markdown') ? formatMarkdown(report) : formatTable(report);
    process.stdout.write(`${out}\n`);
    return report.results.some((r) => r.error) ? 1 : 0;
  },
};
