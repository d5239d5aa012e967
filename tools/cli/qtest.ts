// virtio-emu qtest: QEMU's qtest protocol over a machine, on stdio or a unix
// socket. SIGINT and SIGTERM stop serving (a bulk command under way stops at
// its next slice), close the machine and exit 0.
import { PLATFORM } from '../../core/bus.js';
import { MACHINE_LIMITS, Machine, type BusKind } from '../../emulator/machine.js';
import { CLOCK_MODES, type ClockMode } from '../../emulator/virtio/clock.js';
import { QTEST_LIMITS, openStreamSession, serveSocket } from '../qtest/server.js';
import { UsageError, intOpt, shown, sizeOpt, stringOpt, stringsOpt, type CliCommand } from './args.js';
import { checkDevices, parseDeviceArg } from './device-arg.js';
import { listenForStop } from './stop-signal.js';

export const command: CliCommand = {
  name: 'qtest',
  summary: "serve QEMU's qtest protocol over a machine",
  usage: '[--device TYPE[,transport=mmio|mmio-legacy][,slot=N][,k=v|flag]]... [--socket PATH] [--slots N] [--ram-size BYTES] [--bus worker|inthread] [--clock manual|host]',
  help: [
    '--device SPEC     plug a device; the first goes in slot 0 (repeatable, at most --slots)',
    '--socket PATH     listen on a unix socket instead of stdin/stdout',
    `                  (at most ${QTEST_LIMITS.maxClients} clients at once, sharing the machine's devices)`,
    `--slots N         virtio-mmio windows, 1 to ${MACHINE_LIMITS.maxSlots} (default 32)`,
    `--ram-size BYTES  guest RAM at 0x40000000, ${MACHINE_LIMITS.minRamSize} to ${MACHINE_LIMITS.maxRamSize} (3G); K/M/G allowed (default 64M)`,
    '--bus KIND        worker (default) or inthread',
    '--clock MODE      the virtual clock: manual (default, as QEMU under qtest: it moves only by',
    '                  clock_step/clock_set) or host (runs with the host; clock_step moves it ahead)',
    `Limits: a line of at most ${QTEST_LIMITS.maxLine} bytes (longer: FAIL, discarded);`,
    `read/write/memset/b64read/b64write of at most ${QTEST_LIMITS.maxBulk} bytes; a range that`,
    'straddles the edge of RAM is refused whole. SIGINT/SIGTERM close the machine and exit 0.',
  ].join('\n'),
  options: {
    device: { type: 'string', multiple: true },
    socket: { type: 'string' },
    slots: { type: 'string' },
    'ram-size': { type: 'string' },
    bus: { type: 'string' },
    clock: { type: 'string' },
  },
  async run(values) {
    const bus = stringOpt(values, 'bus') ?? 'worker';
    if (bus !== 'worker' && bus !== 'inthread') throw new UsageError(`--bus: expected worker or inthread, got '${shown(bus)}'`);
    const clock = stringOpt(values, 'clock') ?? 'manual';
    if (!CLOCK_MODES.includes(clock as ClockMode)) throw new UsageError(`--clock: expected ${CLOCK_MODES.join(' or ')}, got '${shown(clock)}'`);
    const slots = intOpt(values, 'slots', 1, MACHINE_LIMITS.maxSlots);
    const ramSize = sizeOpt(values, 'ram-size', MACHINE_LIMITS.minRamSize, MACHINE_LIMITS.maxRamSize);
    const args = stringsOpt(values, 'device');
    const slotCount = slots ?? PLATFORM.MMIO_SLOTS_DEFAULT;
    if (args.length > slotCount) throw new UsageError(`--device: ${args.length} devices do not fit in ${slotCount} slots`);
    const devices = args.map(parseDeviceArg);
    for (const d of devices) {
      // qtest reaches the virtio-mmio windows only: a ccw subchannel has no qtest command.
      if (d.transport === 'ccw') throw new UsageError(`--device ${d.type}: qtest serves virtio-mmio only (transport mmio or mmio-legacy), not ccw`);
    }
    checkDevices(devices, 'mmio', slotCount);
    let machine: Machine;
    try {
      machine = await Machine.create({
        devices,
        bus: bus as BusKind,
        clock: clock as ClockMode,
        ...(slots !== undefined ? { slots } : {}),
        ...(ramSize !== undefined ? { ramSize } : {}),
      });
    } catch (err) {
      // Options the machine refuses are the user's to fix.
      if (err instanceof RangeError) throw new UsageError(err.message);
      throw err;
    }
    const signals = listenForStop();
    try {
      const socket = stringOpt(values, 'socket');
      if (socket === undefined) {
        const session = openStreamSession(machine, process.stdin, process.stdout);
        await Promise.race([session.done, signals.signalled]);
        session.stop();
        return 0;
      }
      let server: Awaited<ReturnType<typeof serveSocket>>;
      try {
        server = await serveSocket(machine, socket);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        throw new UsageError(`--socket: cannot listen on '${shown(socket)}': ${e.code ?? e.message}`);
      }
      process.stderr.write(`qtest: listening on ${socket}\n`);
      await signals.signalled;
      await server.close();
      return 0;
    } finally {
      signals.dispose();
      await machine.close();
    }
  },
};
