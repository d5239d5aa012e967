// CPU contention for the *.contendN cases: N busy-loop processes beside the
// measured pair (this process's main thread and its device worker), as on a
// shared CI runner or under a test runner that runs files in parallel. Each
// runs in a session of its own (detached), as other jobs on the machine do:
// where the kernel groups tasks by session for fair scheduling (Linux
// autogroup), the bench and each busy process are then separate groups, so
// 4 busy processes on 2 cores leave the pair 2/5 of the CPU, not 2/6 spread
// over six equal threads. Each busy process spins in plain JavaScript and
// checks now and then that its parent is still there, so a bench that dies
// never leaves one behind.
import { spawn, type ChildProcess } from 'node:child_process';

/** The busy loop: announce, then spin; exit when reparented (the bench is gone). */
const HOG_SCRIPT = [
  'const parent = process.ppid;',
  "process.stdout.write('r');",
  'let x = 0;',
  'for (;;) {',
  '  for (let i = 0; i < 1e7; i++) x = (x + i) | 0;',
  '  if (process.ppid !== parent) process.exit(x & 0);',
  '}',
].join('\n');

/** Most busy processes a run may ask for. */
export const MAX_CONTEND = 64;

export interface Hogs {
  readonly count: number;
  /** Kill every busy process and wait until they are gone. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHooked = false;

function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  // A bench that exits with hogs still running (an exception mid-case) kills them.
  process.on('exit', () => {
    for (const c of live) c.kill('SIGKILL');
  });
}

function startOne(): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', HOG_SCRIPT], { stdio: ['ignore', 'pipe', 'ignore'], detached: true });
    live.add(child);
    child.once('exit', () => live.delete(child));
    child.once('error', (err) => {
      live.delete(child);
      reject(err);
    });
    child.stdout!.once('data', () => resolve(child));
  });
}

/** Start n busy processes and resolve once every one is spinning. */
export async function startHogs(n: number): Promise<Hogs> {
  if (!Number.isInteger(n) || n < 0 || n > MAX_CONTEND) throw new RangeError(`contention ${n}: 0..${MAX_CONTEND} busy processes`);
  hookExit();
  const started = await Promise.allSettled(Array.from({ length: n }, () => startOne()));
  const children = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const stop = async (): Promise<void> => {
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once('exit', () => resolve());
            c.kill('SIGKILL');
          }),
      ),
    );
  };
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await stop();
    throw (failed as PromiseRejectedResult).reason;
  }
  return { count: n, stop };
}
