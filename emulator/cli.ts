// The `virtio-emu` entry point (bin/virtio-emu.js imports this module).
// Commands live in emulator/cli/, listed in emulator/cli/commands.ts.
import { main } from './cli/dispatch.js';

process.exitCode = await main(process.argv.slice(2));
