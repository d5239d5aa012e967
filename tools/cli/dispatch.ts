// `virtio-emu <command> [options]`: finds the command in the table, parses
// its options strictly, and turns bad command lines into a one-line error
// with exit status 2 (stack traces only with --debug).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { commands } from './commands.js';
import { UsageError, type CliCommand, type CliOptions, type CliValues } from './args.js';

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

/**
 * `--cycles -1` as `--cycles=-1`: parseArgs takes a value that starts with
 * a dash for an option ("argument is ambiguous"); a negative number is a
 * value, which the option's own check then refuses with its range.
 */
export function joinNegativeValues(args: readonly string[], options: CliOptions): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const next = args[i + 1];
    const name = a.startsWith('--') ? a.slice(2) : null;
    if (name !== null && options[name]?.type === 'string' && next !== undefined && /^-[\d.]/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** parseArgs' message for an option given without its value, as one line that says what to do. */
function parseArgsMessage(err: Error): string {
  const ambiguous = /^Option '(-[-\w]+)' argument is ambiguous/.exec(err.message);
  if (ambiguous) return `${ambiguous[1]} needs a value (write ${ambiguous[1]}=VALUE for one that starts with '-')`;
  const missing = /^Option '(-[-\w]+)(?: <value>)?' argument missing/.exec(err.message);
  if (missing) return `${missing[1]} needs a value`;
  return err.message;
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
    const options: CliOptions = { ...command.options, help: { type: 'boolean', short: 'h' } };
    const parsed = parseArgs({
      args: joinNegativeValues(args.slice(1), options),
      options,
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
    const msg = err instanceof Error ? (isParseArgsError(err) ? parseArgsMessage(err) : err.message) : String(err);
    if (debug && err instanceof Error && err.stack) io.err(`${err.stack}\n`);
    else {
      // One line, and a short one, whatever the input quoted in it.
      const line = msg.split('\n')[0]!;
      io.err(`virtio-emu ${name}: ${line.length > MAX_MESSAGE ? `${line.slice(0, MAX_MESSAGE - 3)}...` : line}\n`);
    }
    return err instanceof UsageError || isParseArgsError(err) ? 2 : 1;
  }
}
