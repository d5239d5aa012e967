// `virtio-emu <command> [options]`: finds the command in the table, parses
// its options strictly, and turns bad command lines into a one-line error
// with exit status 2 (stack traces only with --debug).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { commands } from './commands.js';
import { UsageError, type CliCommand, type CliValues } from './args.js';

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

/** Characters of an error message printed at most. */
const MAX_MESSAGE = 1000;

const stdio: CliIo = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

function globalUsage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const list = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n');
  return `usage: virtio-emu <command> [options]\n\ncommands:\n${list}\n\n'virtio-emu <command> --help' describes a command; --debug prints stack traces; --version prints the version.\n`;
}

/** The package's version, from its package.json (dist/tools/cli/ is three levels below it). */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

function commandUsage(c: CliCommand): string {
  return `usage: virtio-emu ${c.name} ${c.usage}\n\n${c.summary}\n\n${c.help}\n--debug           print stack traces on errors\n`;
}

function isParseArgsError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}

/** Run the CLI; resolves to the exit status. */
export async function main(argv: string[], io: CliIo = stdio): Promise<number> {
  const debug = argv.includes('--debug');
  const args = argv.filter((a) => a !== '--debug');
  const name = args[0];
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    (name === undefined ? io.err : io.out)(globalUsage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V') {
    io.out(`virtio-emu ${packageVersion()}\n`);
    return 0;
  }
  const entry = commands.find((c) => c.name === name);
  if (!entry) {
    io.err(`virtio-emu: unknown command '${name}' (try --help)\n`);
    return 2;
  }
  try {
    const { command } = await entry.load();
    const parsed = parseArgs({
      args: args.slice(1),
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: command.allowPositionals ?? false,
    });
    const values = parsed.values as CliValues;
    if (values.help === true) {
      io.out(commandUsage(command));
      return 0;
    }
    return await command.run(values, parsed.positionals);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    if (debug && err instanceof Error && err.stack) io.err(`${err.stack}\n`);
    else {
      // One line, and a short one, whatever the input quoted in it.
      const line = msg.split('\n')[0]!;
      io.err(`virtio-emu ${name}: ${line.length > MAX_MESSAGE ? `${line.slice(0, MAX_MESSAGE - 3)}...` : line}\n`);
    }
    return err instanceof UsageError || isParseArgsError(err) ? 2 : 1;
  }
}
