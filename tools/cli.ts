// The `virtio-emu` entry point (bin/virtio-emu.js imports this module).
// Commands live in tools/cli/, listed in tools/cli/commands.ts.
import { main } from './cli/dispatch.js';

// `virtio-emu ... | head` closes the pipe early: nobody reads any more, which
// is not an error to report (and there is no one to report it to).
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(process.exitCode ?? 0);
  });
}

process.exitCode = await main(process.argv.slice(2));
