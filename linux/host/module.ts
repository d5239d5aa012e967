// Finding, compiling and inspecting dist/linux/virtio-linux.wasm, and
// creating the shared memory it imports (guest RAM).
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { OUT, type BuildInfo } from '../build/config.js';

/** dist/linux/virtio-linux.wasm (this file runs as dist/linux/host/module.js). */
export const LINUX_WASM_PATH = fileURLToPath(new URL(`../${OUT.wasm}`, import.meta.url));
export const LINUX_INFO_PATH = fileURLToPath(new URL(`../${OUT.info}`, import.meta.url));
/** The extracted (and patched) Linux tree the module was built from. */
export const LINUX_SRC_DIR = fileURLToPath(new URL(`../${OUT.src}/`, import.meta.url));

/** The command that builds the module, for messages. */
export const BUILD_COMMAND = 'npm run build:linux';

/**
 * The module a kernel is instantiated from: dist/linux/virtio-linux.wasm,
 * or the file VIRTIO_EMU_LINUX_WASM names (a build with `--out DIR`, for
 * example one with drivers of your own).
 */
export function linuxWasmPath(): string {
  return process.env['VIRTIO_EMU_LINUX_WASM'] || LINUX_WASM_PATH;
}

export function linuxBuilt(): boolean {
  return fs.existsSync(linuxWasmPath());
}

/** What the build recorded (Linux version, flags, RAM size), or null if absent. */
export function linuxBuildInfo(): BuildInfo | null {
  try {
    return JSON.parse(fs.readFileSync(LINUX_INFO_PATH, 'utf8')) as BuildInfo;
  } catch {
    return null;
  }
}

export interface MemoryImport {
  module: string;
  name: string;
  /** 64 KiB pages. */
  initial: number;
  maximum: number | null;
  shared: boolean;
}

function leb(bytes: Uint8Array, at: { p: number }): number {
  let result = 0;
  let shift = 0;
  for (;;) {
    const b = bytes[at.p++];
    if (b === undefined) throw new Error('truncated LEB128 in wasm module');
    result += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return result;
    shift += 7;
  }
}

function name(bytes: Uint8Array, at: { p: number }): string {
  const n = leb(bytes, at);
  const s = Buffer.from(bytes.subarray(at.p, at.p + n)).toString('utf8');
  at.p += n;
  return s;
}

function limits(bytes: Uint8Array, at: { p: number }): { flags: number; min: number; max: number | null } {
  const flags = bytes[at.p++]!;
  const min = leb(bytes, at);
  const max = flags & 1 ? leb(bytes, at) : null;
  return { flags, min, max };
}

/**
 * The memory import of a module, read from its import section: the RAM
 * size is a link constant (initial = maximum), and a shared memory must be
 * created with exactly these limits before the module can be instantiated.
 */
export function memoryImport(wasm: Uint8Array): MemoryImport {
  if (wasm.length < 8 || wasm[0] !== 0 || wasm[1] !== 0x61 || wasm[2] !== 0x73 || wasm[3] !== 0x6d) {
    throw new Error('not a wasm module');
  }
  const at = { p: 8 };
  while (at.p < wasm.length) {
    const id = wasm[at.p++]!;
    const size = leb(wasm, at);
    const end = at.p + size;
    if (id === 2) {
      const count = leb(wasm, at);
      for (let i = 0; i < count; i++) {
        const module = name(wasm, at);
        const field = name(wasm, at);
        const kind = wasm[at.p++]!;
        if (kind === 0) leb(wasm, at);
        else if (kind === 1) {
          at.p++;
          limits(wasm, at);
        } else if (kind === 2) {
          const l = limits(wasm, at);
          return { module, name: field, initial: l.min, maximum: l.max, shared: (l.flags & 2) !== 0 };
        } else if (kind === 3) at.p += 2;
        else throw new Error(`unknown import kind ${kind}`);
      }
    }
    at.p = end;
  }
  throw new Error('the module imports no memory');
}

type LoadedModule = { module: WebAssembly.Module; memory: MemoryImport };

let cached: (LoadedModule & { file: string; mtimeMs: number }) | null = null;

/** The module file: the cached compilation if the file is unchanged, else its bytes checked. */
function readModule(): { cached: LoadedModule } | { bytes: Uint8Array<ArrayBuffer>; memory: MemoryImport; file: string; mtimeMs: number } {
  const file = linuxWasmPath();
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw new Error(`${file} not found: run \`${BUILD_COMMAND}\``);
  }
  if (cached && cached.file === file && cached.mtimeMs === st.mtimeMs) return { cached };
  const bytes = new Uint8Array(fs.readFileSync(file));
  const memory = memoryImport(bytes);
  if (!memory.shared || memory.maximum !== memory.initial) {
    throw new Error(`${file}: expected a shared memory import with initial = maximum, got ${JSON.stringify(memory)}`);
  }
  return { bytes, memory, file, mtimeMs: st.mtimeMs };
}

/** Compile the built module (once per process unless the file changes). */
export async function loadLinuxModule(): Promise<LoadedModule> {
  const r = readModule();
  if ('cached' in r) return r.cached;
  cached = { module: await WebAssembly.compile(r.bytes), memory: r.memory, file: r.file, mtimeMs: r.mtimeMs };
  return cached;
}

/**
 * The same, synchronously (new WebAssembly.Module): for a kernel booted in
 * the middle of a synchronous transition (the hibernation boot kernel).
 */
export function loadLinuxModuleSync(): LoadedModule {
  const r = readModule();
  if ('cached' in r) return r.cached;
  cached = { module: new WebAssembly.Module(r.bytes), memory: r.memory, file: r.file, mtimeMs: r.mtimeMs };
  return cached;
}

/** Guest RAM for a kernel: the shared memory the module imports, zeroed. */
export function createLinuxMemory(imp: MemoryImport): WebAssembly.Memory {
  return new WebAssembly.Memory({ initial: imp.initial, maximum: imp.initial, shared: true });
}
