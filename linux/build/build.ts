// npm run build:linux: extracts the Linux files from the source tarball,
// applies linux/patches/, compiles Linux's C and our glue with clang for
// wasm32 and links dist/linux/virtio-linux.wasm against an imported shared
// memory (guest RAM).
//
//   node dist/linux/build/build.js [--ram-mib N] [--driver FILE.c]... [--out DIR] [--checkpatch] [--force]
//
// Exit 0 built, 1 a compile/link/patch failure, 2 a missing tool or bad usage.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  GLUE_FILES,
  GLUE_HEADERS,
  INSTALL_HINT,
  KCONFIG,
  LINUX_FILES,
  LINUX_HEADERS,
  LINUX_TOOLS,
  OUT,
  RAM_BASE,
  RAM_SIZE_DEFAULT,
  STACK_SIZE,
  TARBALL_DEFAULT,
  type BuildInfo,
  type CFile,
} from './config.js';

/** The repository root (this file runs as dist/linux/build/build.js). */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DIST = path.join(ROOT, 'dist', 'linux');
const SRC = path.join(DIST, OUT.src);
const SHIM = path.join(ROOT, 'linux', 'shim', 'include');
const PATCHES = path.join(ROOT, 'linux', 'patches');
const STAMP = path.join(SRC, '.extracted.json');

class BuildError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2,
  ) {
    super(message);
  }
}

interface Options {
  ramSize: number;
  checkpatch: boolean;
  force: boolean;
  /** Drivers of the user's, built in and registered by name (--driver). */
  drivers: CFile[];
  /** Where the module, its build info and the objects go (--out; default dist/linux). */
  out: string;
}

/** The most --driver files one build takes (linux/glue/lx.h LX_MAX_USER_DRIVERS). */
const MAX_USER_DRIVERS = 16;

/** A driver file of the user's: registered under its file name, "my-driver.c" as my_driver. */
function userDriver(file: string, taken: Set<string>): CFile {
  const abs = path.resolve(file);
  if (!abs.endsWith('.c') || !fs.existsSync(abs) || !fs.statSync(abs).isFile()) throw new BuildError(`--driver: ${file} is not a C file`, 2);
  const name = path.basename(abs, '.c').replace(/[^A-Za-z0-9_]/g, '_');
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,30}$/.test(name)) throw new BuildError(`--driver: ${file}: its name must make a C identifier of at most 31 characters`, 2);
  if (taken.has(name)) throw new BuildError(`--driver: two drivers named ${name}`, 2);
  taken.add(name);
  return { src: abs, obj: `user_${name}`, modname: name };
}

function parseArgs(argv: string[]): Options {
  const o: Options = { ramSize: RAM_SIZE_DEFAULT, checkpatch: false, force: false, drivers: [], out: DIST };
  const taken = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--checkpatch') o.checkpatch = true;
    else if (a === '--driver') {
      const f = argv[++i];
      if (f === undefined) throw new BuildError('--driver: give a C file', 2);
      if (o.drivers.length >= MAX_USER_DRIVERS) throw new BuildError(`--driver: at most ${MAX_USER_DRIVERS} drivers`, 2);
      o.drivers.push(userDriver(f, taken));
    } else if (a === '--out') {
      const d = argv[++i];
      if (d === undefined) throw new BuildError('--out: give a directory', 2);
      o.out = path.resolve(d);
    }
    else if (a === '--force') o.force = true;
    else if (a === '--ram-mib') {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < 4 || n > 1024 || RAM_BASE + n * 2 ** 20 > 2 ** 32) {
        throw new BuildError(`--ram-mib: expected an integer from 4 to 1024 ending below 4 GiB, got ${argv[i]}`, 2);
      }
      o.ramSize = n * 2 ** 20;
    } else if (a === '--help' || a === '-h') {
      console.log(
        'usage: npm run build:linux -- [--ram-mib N] [--driver FILE.c]... [--out DIR] [--checkpatch] [--force]\n' +
          '  --driver FILE.c  build a virtio driver of your own in (module_virtio_driver); register it by its file name\n' +
          '  --out DIR        write the module there (default dist/linux); VIRTIO_EMU_LINUX_WASM=DIR/virtio-linux.wasm uses it',
      );
      process.exit(0);
    } else throw new BuildError(`unknown option ${a} (try --help)`, 2);
  }
  return o;
}

function which(tool: string): boolean {
  const r = spawnSync(tool, ['--version'], { stdio: 'ignore' });
  return r.status === 0;
}

function checkTools(tarball: string): void {
  const missing: string[] = [];
  if (!which('clang')) missing.push('clang');
  if (!which('wasm-ld')) missing.push('wasm-ld');
  if (!fs.existsSync(tarball)) missing.push(tarball);
  if (missing.length) {
    throw new BuildError(`build:linux: ${missing.join(', ')} not found; install with: ${INSTALL_HINT}`, 2);
  }
}

function patchFiles(): string[] {
  if (!fs.existsSync(PATCHES)) return [];
  return fs
    .readdirSync(PATCHES)
    .filter((f) => f.endsWith('.patch'))
    .sort();
}

function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Extract the files into dist/linux/src unless the same tarball (and patches) produced what is there. */
function extract(tarball: string): { extracted: boolean; patches: string[] } {
  const st = fs.statSync(tarball);
  const paths = [...LINUX_FILES.map((f) => f.src), ...LINUX_HEADERS, ...LINUX_TOOLS];
  const patches = patchFiles();
  const stamp = JSON.stringify({
    tarball,
    size: st.size,
    mtimeMs: st.mtimeMs,
    paths,
    patches: patches.map((p) => [p, sha256(fs.readFileSync(path.join(PATCHES, p)))]),
  });
  if (fs.existsSync(STAMP) && fs.readFileSync(STAMP, 'utf8') === stamp && paths.every((p) => fs.existsSync(path.join(SRC, p)))) {
    return { extracted: false, patches };
  }
  fs.rmSync(SRC, { recursive: true, force: true });
  fs.mkdirSync(SRC, { recursive: true });
  // Debian's tarball holds one directory named like the file.
  const top = path.basename(tarball).replace(/\.tar\.(xz|gz|bz2)$/, '');
  const r = spawnSync('tar', ['-xJf', tarball, '-C', SRC, '--strip-components=1', ...paths.map((p) => `${top}/${p}`)], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new BuildError(`build:linux: extracting from ${tarball} failed: ${(r.stderr || r.error?.message || '').trim()}`, 1);
  applyPatches(patches);
  fs.writeFileSync(STAMP, stamp);
  return { extracted: true, patches };
}

/** linux/patches/*.patch in name order, -p1 against the extracted tree. */
function applyPatches(patches: string[]): void {
  for (const p of patches) {
    const file = path.join(PATCHES, p);
    const args = ['-p1', '--forward', '--batch', '-d', SRC, '-i', file];
    const dry = spawnSync('patch', ['--dry-run', ...args], { encoding: 'utf8' });
    if (dry.error) throw new BuildError(`build:linux: patch(1) not found, needed for linux/patches/${p}`, 2);
    if (dry.status !== 0) {
      const why = `${dry.stdout}${dry.stderr}`.trim().split('\n').slice(0, 8).join('\n  ');
      fs.rmSync(STAMP, { force: true });
      throw new BuildError(`build:linux: linux/patches/${p} does not apply to ${linuxVersion()}:\n  ${why}`, 1);
    }
    const r = spawnSync('patch', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new BuildError(`build:linux: applying linux/patches/${p} failed: ${r.stdout}${r.stderr}`, 1);
  }
}

function linuxVersion(): string {
  try {
    const mk = fs.readFileSync(path.join(SRC, 'Makefile'), 'utf8');
    const get = (k: string): string => new RegExp(`^${k}\\s*=\\s*(\\S*)`, 'm').exec(mk)?.[1] ?? '?';
    return `Linux ${get('VERSION')}.${get('PATCHLEVEL')}.${get('SUBLEVEL')}`;
  } catch {
    return 'Linux (unknown version)';
  }
}

function cflags(ramSize: number): string[] {
  return [
    '--target=wasm32-unknown-unknown',
    '-O2',
    '-std=gnu11',
    '-ffreestanding',
    '-nostdinc',
    '-fno-builtin',
    '-fno-strict-aliasing',
    '-fno-strict-overflow',
    '-fno-common',
    '-fno-delete-null-pointer-checks',
    '-matomics',
    '-mbulk-memory',
    '-Wall',
    '-Wno-unused-function',
    '-Wno-pointer-sign',
    '-Wno-address-of-packed-member',
    '-Wno-gnu-variable-sized-type-not-at-end',
    '-Werror=implicit-function-declaration',
    '-Werror=implicit-int',
    '-Werror=return-type',
    '-Werror=incompatible-pointer-types',
    '-D__KERNEL__',
    ...KCONFIG.map((c) => `-D${c}`),
    `-DLX_RAM_BASE=${`0x${RAM_BASE.toString(16)}`}UL`,
    `-DLX_RAM_SIZE=${`0x${ramSize.toString(16)}`}UL`,
    // Our files' __FILE__ reads "linux/glue/mm.c"; Linux's are compiled from SRC as "drivers/...".
    `-fmacro-prefix-map=${ROOT}=`,
    `-I${SHIM}`,
    '-Iinclude',
    '-Iinclude/uapi',
    '-include',
    'linux/kconfig.h',
    '-include',
    'linux/compiler_types.h',
  ];
}

function ldflags(ramSize: number): string[] {
  return [
    '--no-entry',
    '--import-memory',
    '--shared-memory',
    `--initial-memory=${ramSize}`,
    `--max-memory=${ramSize}`,
    '--stack-first',
    '-z',
    `stack-size=${STACK_SIZE}`,
    '--export=__heap_base',
    '--export=__data_end',
  ];
}

function compileOne(f: CFile, linux: boolean, flags: string[], obj: string): Promise<{ file: CFile; out: string; ok: boolean }> {
  const src = linux ? f.src : path.resolve(ROOT, f.src);
  const args = [...flags, `-DKBUILD_MODNAME="${f.modname}"`, `-DKBUILD_BASENAME="${f.obj}"`, `-DLX_OBJ=${f.obj}`, '-c', src, '-o', path.join(obj, `${f.obj}.o`)];
  return new Promise((resolve) => {
    const p = spawn('clang', args, { cwd: SRC });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', (e) => resolve({ file: f, out: e.message, ok: false }));
    p.on('close', (code) => resolve({ file: f, out, ok: code === 0 }));
  });
}

/** The table of --driver drivers entry.c registers by name (always there, possibly empty). */
function userDriverTable(obj: string, drivers: readonly CFile[]): CFile {
  const file = path.join(obj, 'lx-user-drivers.c');
  const lines = [
    '// SPDX-License-Identifier: GPL-2.0-only',
    '/* Generated by build:linux: the drivers given with --driver. */',
    `#include "${path.join(ROOT, 'linux', 'glue', 'lx.h')}"`,
    '',
    ...drivers.map((d) => `int lx_device_initcall_${d.obj}(void);`),
    '',
    'const struct lx_user_driver lx_user_drivers[] = {',
    ...drivers.map((d) => `\t{ "${d.modname}", lx_device_initcall_${d.obj} },`),
    '\t{ }',
    '};',
    '',
  ];
  fs.writeFileSync(file, lines.join('\n'));
  return { src: file, obj: 'lx_user_drivers', modname: 'lx_user_drivers' };
}

async function compileAll(ramSize: number, obj: string, drivers: readonly CFile[]): Promise<{ warnings: number; files: CFile[] }> {
  fs.rmSync(obj, { recursive: true, force: true });
  fs.mkdirSync(obj, { recursive: true });
  const flags = cflags(ramSize);
  const ours = [...GLUE_FILES, ...drivers, userDriverTable(obj, drivers)];
  const jobs = [...LINUX_FILES.map((f) => [f, true] as const), ...ours.map((f) => [f, false] as const)];
  const limit = Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
  const results: Awaited<ReturnType<typeof compileOne>>[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, jobs.length) }, async () => {
      while (next < jobs.length) {
        const [f, linux] = jobs[next++]!;
        results.push(await compileOne(f, linux, flags, obj));
      }
    }),
  );
  let warnings = 0;
  const failed = results.filter((r) => !r.ok);
  for (const r of results) {
    if (r.out.trim()) process.stderr.write(r.out);
    warnings += (r.out.match(/ warning: /g) ?? []).length;
  }
  if (failed.length) throw new BuildError(`build:linux: ${failed.map((r) => r.file.src).join(', ')} did not compile`, 1);
  return { warnings, files: ours };
}

function link(ramSize: number, out: string, obj: string, ours: readonly CFile[]): string {
  const wasm = path.join(out, OUT.wasm);
  const objs = [...LINUX_FILES, ...ours].map((f) => path.join(obj, `${f.obj}.o`));
  const r = spawnSync('wasm-ld', [...ldflags(ramSize), ...objs, '-o', wasm], { encoding: 'utf8' });
  if (r.status !== 0) throw new BuildError(`build:linux: link failed:\n${r.stdout}${r.stderr}`, 1);
  return wasm;
}

/**
 * What checkpatch says about defining kernel interfaces rather than using
 * them (typedefs in types.h, volatile in READ_ONCE, barriers in barrier.h,
 * attribute macros in compiler_types.h, stubs that ignore arguments...).
 * Ignored for the shim headers only; our C files get every check.
 */
const SHIM_IGNORES = [
  'NEW_TYPEDEFS',
  'VOLATILE',
  'MEMORY_BARRIER',
  'MACRO_ARG_UNUSED',
  'PREFER_DEFINED_ATTRIBUTE_MACRO',
  'PREFER_PR_LEVEL',
  'PRINTK_WITHOUT_KERN_LEVEL',
  'LOGGING_CONTINUATION',
  'COMPLEX_MACRO',
  'SINGLE_STATEMENT_DO_WHILE_MACRO',
  'MACRO_WITH_FLOW_CONTROL',
  'EXPORT_SYMBOL',
  'IS_ENABLED_CONFIG',
  'FUNCTION_ARGUMENTS',
  'ENOSYS',
  'CONST_STRUCT',
  'IN_ATOMIC',
  'SPACING',
  'TABSTOP',
  'TRAILING_STATEMENTS',
];

/** checkpatch.pl over our C files and shim headers; prints what it finds. */
function checkpatch(drivers: readonly CFile[]): number {
  const script = path.join(SRC, 'scripts', 'checkpatch.pl');
  const shim = listFiles(SHIM).filter((f) => f.endsWith('.h'));
  const ours = [...[...GLUE_FILES, ...drivers].map((f) => path.resolve(ROOT, f.src)), ...GLUE_HEADERS.map((h) => path.join(ROOT, h))];
  let bad = 0;
  for (const f of [...ours, ...shim]) {
    const ignore = shim.includes(f) ? ['--ignore', SHIM_IGNORES.join(',')] : [];
    const r = spawnSync('perl', [script, '--no-tree', '--terse', '--show-types', '--no-summary', ...ignore, '-f', f], { encoding: 'utf8' });
    const found = `${r.stdout}`
      .split('\n')
      .filter((l) => /: (ERROR|WARNING|CHECK):/.test(l))
      .map((l) => l.replace(`${ROOT}`, ''));
    if (found.length) {
      bad++;
      console.log(found.join('\n'));
    }
  }
  const total = ours.length + shim.length;
  console.log(`checkpatch: ${total - bad} of ${total} files clean (${ours.length} C/glue files with every check; ${shim.length} shim headers without ${SHIM_IGNORES.length} interface-definition checks)`);
  return bad;
}

function listFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? listFiles(p) : [p];
  });
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const tarball = process.env['LINUX_TARBALL'] || TARBALL_DEFAULT;
  checkTools(tarball);
  const t0 = performance.now();
  if (opts.force) fs.rmSync(STAMP, { force: true });
  const { extracted, patches } = extract(tarball);
  const version = linuxVersion();
  fs.mkdirSync(opts.out, { recursive: true });
  const obj = path.join(opts.out, OUT.obj);
  const { warnings, files } = await compileAll(opts.ramSize, obj, opts.drivers);
  const wasm = link(opts.ramSize, opts.out, obj, files);
  const info: BuildInfo = {
    linux: version,
    tarball,
    ramSize: opts.ramSize,
    ramBase: RAM_BASE,
    stackSize: STACK_SIZE,
    files: LINUX_FILES.map((f) => f.src),
    glue: GLUE_FILES.map((f) => f.src),
    drivers: opts.drivers.map((d) => ({ name: d.modname, file: d.src })),
    patches,
    kconfig: [...KCONFIG],
    cflags: cflags(opts.ramSize),
    ldflags: ldflags(opts.ramSize),
  };
  fs.writeFileSync(path.join(opts.out, OUT.info), `${JSON.stringify(info, null, 2)}\n`);
  const kib = Math.round(fs.statSync(wasm).size / 1024);
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  console.log(`built ${path.relative(ROOT, wasm)} (${kib} KiB) in ${secs} s from ${version}${extracted ? ' (extracted)' : ''}`);
  console.log(`  Linux: ${LINUX_FILES.map((f) => f.src).join(' ')}`);
  console.log(`  patches: ${patches.length ? patches.join(' ') : 'none'}; glue: ${GLUE_FILES.length} files; ${warnings} compiler warnings`);
  console.log(
    `  guest RAM = linear memory: ${opts.ramSize / 2 ** 20} MiB shared (initial = maximum) at guest-physical 0x${RAM_BASE.toString(16)}; ` +
      `stack ${STACK_SIZE / 1024} KiB at the bottom, then data, then the heap from __heap_base`,
  );
  if (opts.checkpatch && checkpatch(opts.drivers) > 0) process.exitCode = 1;
}

main().catch((e: unknown) => {
  if (e instanceof BuildError) {
    console.error(e.message);
    process.exit(e.exitCode);
  }
  console.error(e);
  process.exit(1);
});
