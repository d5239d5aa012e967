// The `virtio-emu` entry point (bin/virtio-emu.js imports this module).
// Commands live in tools/cli/, listed in tools/cli/commands.ts.
import { main } from './cli/dispatch.js';

process.exitCode = await main(process.argv.slice(2));
