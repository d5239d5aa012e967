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

/** A value for a message: at most 40 characters of it. */
export function shown(s: string): string {
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

/** An integer option in [min, max] (decimal or 0x hex). */
export function intOpt(values: CliValues, name: string, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const s = stringOpt(values, name);
  if (s === undefined) return undefined;
  const n = s.length <= 20 && /^(0x[0-9a-f]+|\d+)$/i.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw new UsageError(`--${name}: expected an integer ${range}, got '${shown(s)}'`);
  }
  return n;
}

const SIZE_SUFFIX: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30 };

/** A byte count in [min, max]: an integer, or a number with K, M or G (binary multiples, "64M", "1GiB"). */
export function sizeOpt(values: CliValues, name: string, min: number, max: number): number | undefined {
  const s = stringOpt(values, name);
  if (s === undefined) return undefined;
  const m = s.length <= 24 ? /^(0x[0-9a-f]+|\d+)\s*([KMG]?)(?:i?B)?$/i.exec(s) : null;
  const n = m ? Number(m[1]) * SIZE_SUFFIX[m[2]!.toUpperCase()]! : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name}: expected a size from ${min} to ${max} bytes (an integer, or a number with K, M or G), got '${shown(s)}'`);
  }
  return n;
}
