// virtio-emu kernel-diff: run the same scenarios under the modelled kernel
// and under Linux 6.12 (the WebAssembly build) on fresh machines and compare
// the register traces access by access, and the device-visible results.
import { INSTALL_HINT } from '../../linux/build/config.js';
import { BUILD_COMMAND, linuxBuilt } from '../../linux/host/index.js';
import { diffScenario, type ScenarioOutcome } from '../kernel-diff/diff.js';
import { DIFF_TRANSPORTS, pmScenarios, probeScenarios, type DiffTransport } from '../kernel-diff/scenarios.js';
import { UsageError, boolOpt, stringOpt, stringsOpt, type CliCommand } from './args.js';
import { checkDevices, parseDeviceArg } from './device-arg.js';

function formatText(outcomes: readonly ScenarioOutcome[]): string {
  const lines: string[] = [];
  const width = Math.max(...outcomes.map((o) => o.name.length));
  for (const o of outcomes) {
    const verdict = o.same ? 'same     ' : o.explained ? 'explained' : 'DIFFERENT';
    lines.push(`${verdict}  ${o.name.padEnd(width)}  ${o.accesses} accesses`);
    if (o.same) continue;
    if (o.explained) lines.push(`    ${o.explained}`);
    const d = o.firstDifference;
    if (d) {
      lines.push(`    first difference at access ${d.index}:`);
      lines.push(`      model: ${d.model ?? '(trace ends)'}`);
      lines.push(`      linux: ${d.linux ?? '(trace ends)'}`);
    }
    if (o.pmDifference) {
      const p = o.pmDifference;
      lines.push(`    PM step ${p.step} ${p.field}: model ${p.model}, linux ${p.linux}`);
    }
    for (const r of o.resultDifferences ?? []) lines.push(`    slot ${r.slot} ${r.field}: model ${r.model}, linux ${r.linux}`);
    if (o.logDifference) lines.push(`    log: model [${o.logDifference.model.join('; ')}], linux [${o.logDifference.linux.join('; ')}]`);
    for (const e of o.errors ?? []) lines.push(`    ${e}`);
  }
  const same = outcomes.filter((o) => o.same).length;
  const explained = outcomes.filter((o) => !o.same && o.explained).length;
  lines.push(`${outcomes.length} scenarios: ${same} same, ${explained} explained, ${outcomes.length - same - explained} different`);
  return `${lines.join('\n')}\n`;
}

export const command: CliCommand = {
  name: 'kernel-diff',
  summary: 'run the same scenarios under the model and under Linux 6.12 (WebAssembly) and compare them access by access',
  usage: '[--device SPEC]... [--transport mmio|mmio-legacy] [--only probe|pm] [--json]',
  help: [
    '--device SPEC     compare the probe of these devices (TYPE[,slot=N][,k=v]; repeatable) instead of the built-in rng scenarios',
    '--transport T     mmio or mmio-legacy only (default: both)',
    '--only KIND       probe (probe, I/O, remove, refused features) or pm (system sleep) scenarios only',
    '--json            print {"scenarios": [{"name", "same", "accesses", "firstDifference"?, "explained"?}]}',
    `Needs the Linux build: ${BUILD_COMMAND} (${INSTALL_HINT}).`,
    'Exit 0 when every scenario is the same or differs for a reason the README lists, 1 otherwise.',
  ].join('\n'),
  options: {
    device: { type: 'string', multiple: true },
    transport: { type: 'string' },
    only: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(values) {
    const t = stringOpt(values, 'transport');
    if (t !== undefined && !(DIFF_TRANSPORTS as readonly string[]).includes(t)) {
      throw new UsageError(`--transport: expected ${DIFF_TRANSPORTS.join(' or ')}, got '${t}'`);
    }
    const devices = stringsOpt(values, 'device').map(parseDeviceArg);
    for (const d of devices) {
      if (d.transport !== undefined && !(DIFF_TRANSPORTS as readonly string[]).includes(d.transport)) {
        throw new UsageError(`--device ${d.type}: transport '${d.transport}' is not one both kernels drive (${DIFF_TRANSPORTS.join(', ')})`);
      }
    }
    checkDevices(devices, 'mmio');
    if (!linuxBuilt()) throw new UsageError(`the Linux kernel is not built: run \`${BUILD_COMMAND}\` (needs ${INSTALL_HINT})`);
    const transports: readonly DiffTransport[] = t ? [t as DiffTransport] : DIFF_TRANSPORTS;
    const only = stringOpt(values, 'only');
    if (only !== undefined && only !== 'probe' && only !== 'pm') throw new UsageError(`--only: expected probe or pm, got '${only}'`);
    const scenarios = [
      ...(only === 'pm' ? [] : probeScenarios(devices.length ? devices : null, transports)),
      ...(only === 'probe' || devices.length ? [] : pmScenarios(transports)),
    ];
    const json = boolOpt(values, 'json');
    const outcomes: ScenarioOutcome[] = [];
    for (const s of scenarios) {
      outcomes.push(await diffScenario(s));
      if (!json && process.stderr.isTTY) process.stderr.write(`\rkernel-diff: ${outcomes.length}/${scenarios.length}`);
    }
    if (!json && process.stderr.isTTY) process.stderr.write('\r\x1b[K');
    process.stdout.write(json ? `${JSON.stringify({ scenarios: outcomes }, null, 2)}\n` : formatText(outcomes));
    return outcomes.every((o) => o.same || o.explained) ? 0 : 1;
  },
};
