// The `virtio-emu` command table. Add a command by writing
// tools/cli/NAME.ts exporting `command: CliCommand` and appending an
// entry here; modules load only when their command runs.
import type { CliCommand } from './args.js';

export interface CommandEntry {
  name: string;
  summary: string;
  load(): Promise<{ command: CliCommand }>;
}

export const commands: CommandEntry[] = [
  {
    name: 'run',
    summary: 'start a machine, probe its devices with the model drivers and do I/O',
    load: () => import('./run.js'),
  },
  {
    name: 'qtest',
    summary: "serve QEMU's qtest protocol over a machine (stdio or a unix socket)",
    load: () => import('./qtest.js'),
  },
  {
    name: 'bench',
    summary: 'measure the register trap path and other cases',
    load: () => import('./bench.js'),
  },
  {
    name: 'fuzz',
    summary: 'fuzz the device side: register accesses, rings, status orders, channel programs',
    load: () => import('./fuzz.js'),
  },
  {
    name: 'kernel-diff',
    summary: 'run the same scenarios under the model and under Linux 6.12 (WebAssembly), compare access by access',
    load: () => import('./kernel-diff.js'),
  },
  {
    name: 'trace',
    summary: 'print a recorded trace, or export it for Perfetto / chrome://tracing',
    load: () => import('./trace.js'),
  },
];
