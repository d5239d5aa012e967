// Shared by the Linux suites: whether the wasm kernel is built, the one
// skip line, and systems that are closed after each test.
import { afterEach } from 'vitest';
import { BUILD_COMMAND, bootLinuxSystem, linuxBuilt, type LinuxSystem, type LinuxSystemOptions } from '../../linux/host/index.js';
import { INSTALL_HINT } from '../../linux/build/config.js';

export const built = linuxBuilt();

/** Print the single skip line (called by one suite only, so it appears once). */
export function noteSkipped(): void {
  if (!built) console.log(`linux suites skipped: run \`${BUILD_COMMAND}\` (needs ${INSTALL_HINT})`);
}

const open: LinuxSystem[] = [];

export async function boot(opts: LinuxSystemOptions): Promise<LinuxSystem> {
  const sys = await bootLinuxSystem({ slots: 4, ...opts });
  open.push(sys);
  return sys;
}

export function closeAllAfterEach(): void {
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
  });
}

/** Guest-physical → an index into the machine's RAM view. */
export function ramU16(sys: LinuxSystem, phys: number): number {
  return sys.machine.mem.view.getUint16(phys - sys.machine.mem.base, true);
}

export function ramU32(sys: LinuxSystem, phys: number): number {
  return sys.machine.mem.view.getUint32(phys - sys.machine.mem.base, true);
}

export function ramU64(sys: LinuxSystem, phys: number): number {
  return Number(sys.machine.mem.view.getBigUint64(phys - sys.machine.mem.base, true));
}

/** The line of the first statement matching `stmt` after the line starting the function `fn` in `text`. */
export function lineOf(text: string, fn: RegExp, stmt: RegExp): number {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => fn.test(l));
  if (start < 0) throw new Error(`function ${fn} not found`);
  for (let i = start + 1; i < lines.length; i++) if (stmt.test(lines[i]!)) return i + 1;
  throw new Error(`${stmt} not found after ${fn}`);
}
