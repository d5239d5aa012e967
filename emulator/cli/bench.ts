// virtio-emu bench: run the benchmark cases and print a table or JSON.
import * as os from 'node:os';
import { allCases } from '../bench/cases/index.js';
import { formatHeader, formatRow, runBench } from '../bench/runner.js';
import { boolOpt, stringOpt, type CliCommand } from './command.js';

export const command: CliCommand = {
  name: 'bench',
  summary: 'measure the register trap path and other cases',
  usage: '[--json] [--quick] [--filter NAME] [--list]',
  help: [
    '--json         print {machine, results} as JSON instead of a table',
    '--quick        short warm-up and measurement',
    '--filter NAME  only cases whose name contains NAME',
    '--list         list the cases and exit',
    '--board URL    module exporting createBoard (default: the real board)',
  ].join('\n'),
  options: {
    json: { type: 'boolean' },
    quick: { type: 'boolean' },
    filter: { type: 'string' },
    list: { type: 'boolean' },
    board: { type: 'string' },
  },
  async run(values) {
    if (boolOpt(values, 'list')) {
      for (const c of allCases) process.stdout.write(`${c.name.padEnd(30)} ${c.description}\n`);
      return 0;
    }
    const json = boolOpt(values, 'json');
    const filter = stringOpt(values, 'filter');
    const board = stringOpt(values, 'board');
    if (!json) {
      const cpus = os.cpus();
      process.stdout.write(
        `${formatHeader({ machine: { cpus: cpus.length, cpu_model: cpus[0]?.model ?? 'unknown', node: process.versions.node, v8: '', platform: process.platform, arch: process.arch } })}\n`,
      );
    }
    const report = await runBench({
      quick: boolOpt(values, 'quick'),
      ...(filter !== undefined ? { filter } : {}),
      ...(board !== undefined ? { boardModule: new URL(board, `file://${process.cwd()}/`).href } : {}),
      ...(json ? {} : { onResult: (r) => process.stdout.write(`${formatRow(r)}\n`) }),
    });
    if (json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return report.results.some((r) => r.error) ? 1 : 0;
  },
};
