// virtio-emu fuzz: run the fuzz properties (tools/fuzz/) for a while and
// report iterations, failures and each failure's shrunk counterexample.
// Progress goes to stderr (not with --json); the exit status is 1 when
// anything failed.
import type { FuzzReport } from '../fuzz/campaign.js';
import { FUZZ_PROPERTY_NAMES } from '../fuzz/property-names.js';
import { FUZZ_LIMITS } from '../limits.js';
import { UsageError, boolOpt, intOpt, shown, stringsOpt, type CliCommand } from './args.js';

/** The campaign runner; fast-check is an optional dependency, needed only here. */
async function loadCampaign(): Promise<typeof import('../fuzz/campaign.js')> {
  try {
    return await import('../fuzz/campaign.js');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_MODULE_NOT_FOUND' && /fast-check/.test(e.message)) {
      throw new Error('virtio-emu fuzz needs the optional dependency fast-check: npm install fast-check');
    }
    throw err;
  }
}

export function formatText(r: FuzzReport & { perProperty: Record<string, number> }, seconds: number, seed: number): string {
  const lines = [`fuzz: ${r.iterations} iterations in ${seconds} s (seed ${seed}), ${r.failures} failure${r.failures === 1 ? '' : 's'}`];
  for (const [name, n] of Object.entries(r.perProperty)) lines.push(`  ${name.padEnd(18)} ${n}`);
  for (const c of r.counterexamples) {
    lines.push('', `FAILED ${c.property}: ${c.error}`, `  replay: fc.check(property, { seed: ${c.seed}, path: ${JSON.stringify(c.path)} })`, `  counterexample: ${JSON.stringify(c.counterexample)}`);
  }
  return `${lines.join('\n')}\n`;
}

export const command: CliCommand = {
  name: 'fuzz',
  summary: 'fuzz the device side (registers, rings, status orders, channel programs) and the host side (qtest lines, trace files)',
  usage: '[--seconds N] [--seed S] [--property NAME]... [--json]',
  help: [
    `--seconds N       how long to run, 1 to ${FUZZ_LIMITS.maxSeconds} (default 10); the batch under way finishes`,
    '--seed S          base seed (default: random); the same seed replays the same batches',
    `--property NAME   only this property (repeatable): ${FUZZ_PROPERTY_NAMES.join(', ')}`,
    '--json            print {"iterations", "failures", "counterexamples"} and no progress',
  ].join('\n'),
  options: {
    seconds: { type: 'string' },
    seed: { type: 'string' },
    property: { type: 'string', multiple: true },
    json: { type: 'boolean' },
  },
  async run(values) {
    const seconds = intOpt(values, 'seconds', 1, FUZZ_LIMITS.maxSeconds) ?? 10;
    const seed = intOpt(values, 'seed', 0, 0xffff_ffff) ?? Math.floor(Math.random() * 0x7fff_ffff);
    const only = stringsOpt(values, 'property');
    if (only.length > FUZZ_LIMITS.maxProperties) throw new UsageError(`--property: given more than ${FUZZ_LIMITS.maxProperties} times`);
    for (const name of only) {
      if (!(FUZZ_PROPERTY_NAMES as readonly string[]).includes(name)) {
        throw new UsageError(`--property: unknown property '${shown(name)}' (known: ${FUZZ_PROPERTY_NAMES.join(', ')})`);
      }
    }
    const json = boolOpt(values, 'json');
    let lastProgress = 0;
    const { runFuzz } = await loadCampaign();
    const report = await runFuzz({
      seconds,
      seed,
      ...(only.length > 0 ? { only } : {}),
      ...(json
        ? {}
        : {
            onProgress: (p) => {
              if (p.elapsedMs - lastProgress < 1000) return;
              lastProgress = p.elapsedMs;
              process.stderr.write(`fuzz: ${(p.elapsedMs / 1000).toFixed(0)} s, ${p.iterations} iterations, ${p.failures} failures\n`);
            },
          }),
    });
    if (json) {
      const { iterations, failures, counterexamples } = report;
      process.stdout.write(`${JSON.stringify({ iterations, failures, counterexamples }, null, 2)}\n`);
    } else {
      process.stdout.write(formatText(report, seconds, seed));
    }
    return report.failures > 0 ? 1 : 0;
  },
};
