// What a `virtio-emu` subcommand provides to the dispatcher (tools/cli.ts).
import type { ParseArgsConfig } from 'node:util';
import { UsageError } from '../usage-error.js';

export type CliOptions = NonNullable<ParseArgsConfig['options']>;
export type CliValue = string | boolean | (string | boolean)[] | undefined;
export type CliValues = Record<string, CliValue>;

export interface CliCommand {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Synopsis after "virtio-emu NAME", e.g. "[--json] [--filter NAME]". */
  usage: string;
  /** Option descriptions for --help, one per line. */
  help: string;
  /** node:util parseArgs options (--help and --debug are added by the dispatcher). */
  options: CliOptions;
  allowPositionals?: boolean;
  /** Resolves to the exit code. */
  run(values: CliValues, positionals: string[]): Promise<number>;
}

export { UsageError };

export function stringOpt(values: CliValues, name: string): string | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new UsageError(`--${name} takes a value`);
  return v;
}

export function stringsOpt(values: CliValues, name: string): string[] {
  const v = values[name];
  if (v === undefined) return [];
  const list = Array.isArray(v) ? v : [v];
  return list.map((x) => {
    if (typeof x !== 'string') throw new UsageError(`--${name} takes a value`);
    return x;
  });
}

export function boolOpt(values: CliValues, name: string): boolean {
  return values[name] === true;
}

export function intOpt(values: CliValues, name: string, min = 0): number | undefined {
  const s = stringOpt(values, name);
  if (s === undefined) return undefined;
  const n = /^(0x[0-9a-f]+|\d+)$/i.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`--${name}: expected an integer >= ${min}, got '${s}'`);
  return n;
}
