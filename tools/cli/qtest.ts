// virtio-emu qtest: QEMU's qtest protocol over a machine, on stdio or a unix
// socket. SIGINT and SIGTERM stop serving (a bulk command under way stops at
// its next slice), close the machine and exit 0.
import { MACHINE_LIMITS, Machine, type BusKind, type MachineDevice } from '../../emulator/machine.js';
import { QTEST_LIMITS, openStreamSession, serveSocket } from '../qtest/server.js';
import type { TransportKind, DeviceOptionValue } from '../../emulator/board-contract.js';
import { UsageError, intOpt, shown, sizeOpt, stringOpt, stringsOpt, type CliCommand } from './args.js';

const TRANSPORTS: TransportKind[] = ['mmio', 'mmio-legacy', 'ccw'];
/** Longest --device argument accepted (a path option included). */
const MAX_DEVICE_ARG = MACHINE_LIMITS.maxOptionLength + 256;

/** "TYPE[,transport=T][,slot=N][,key=value...]" */
export function parseDeviceArg(arg: string): MachineDevice {
  if (arg.length > MAX_DEVICE_ARG) throw new UsageError(`--device: argument longer than ${MAX_DEVICE_ARG} characters`);
  const [type, ...rest] = arg.split(',');
  if (!type || !/^[a-z0-9-]+$/i.test(type)) throw new UsageError(`--device: bad device type in '${shown(arg)}'`);
  const dev: MachineDevice = { type };
  const options: Record<string, DeviceOptionValue> = {};
  const seen = new Set<string>();
  for (const kv of rest) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new UsageError(`--device: expected key=value, got '${shown(kv)}'`);
    const key = kv.slice(0, eq);
    const raw = kv.slice(eq + 1);
    // Own, plain names only: '__proto__' or 'constructor' are not options.
    if (!/^[A-Za-z][\w.-]{0,63}$/.test(key) || key === 'constructor') throw new UsageError(`--device: bad option name '${shown(key)}'`);
    if (seen.has(key)) throw new UsageError(`--device: option '${key}' given twice`);
    seen.add(key);
    if (key === 'transport') {
      if (!TRANSPORTS.includes(raw as TransportKind)) throw new UsageError(`--device: unknown transport '${shown(raw)}'`);
      dev.transport = raw as TransportKind;
    } else if (key === 'slot') {
      if (!/^\d{1,9}$/.test(raw)) throw new UsageError(`--device: bad slot '${shown(raw)}'`);
      dev.slot = Number(raw);
    } else {
      options[key] = raw === 'true' ? true : raw === 'false' ? false : /^-?\d{1,15}$/.test(raw) ? Number(raw) : raw;
    }
  }
  if (Object.keys(options).length > 0) dev.options = options;
  return dev;
}

/** Resolves on the first SIGINT or SIGTERM; the handlers are removed by the returned stop(). */
function onStopSignal(): { signalled: Promise<void>; stop: () => void } {
  let fire: () => void = () => {};
  const signalled = new Promise<void>((resolve) => {
    fire = resolve;
  });
  const handler = (): void => fire();
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signalled,
    stop: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

export const command: CliCommand = {
  name: 'qtest',
  summary: "serve QEMU's qtest protocol over a machine",
  usage: '[--device TYPE[,transport=T][,slot=N][,k=v]]... [--socket PATH] [--slots N] [--ram-size BYTES] [--bus worker|inthread]',
  help: [
    '--device SPEC     plug a device; the first goes in slot 0 (repeatable, at most --slots)',
    '--socket PATH     listen on a unix socket instead of stdin/stdout',
    `                  (at most ${QTEST_LIMITS.maxClients} clients at once, sharing the machine's devices)`,
    `--slots N         virtio-mmio windows, 1 to ${MACHINE_LIMITS.maxSlots} (default 32)`,
    `--ram-size BYTES  guest RAM at 0x40000000, ${MACHINE_LIMITS.minRamSize} to ${MACHINE_LIMITS.maxRamSize} (3G); K/M/G allowed (default 64M)`,
    '--bus KIND        worker (default) or inthread',
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
  },
  async run(values) {
    const bus = stringOpt(values, 'bus') ?? 'worker';
    if (bus !== 'worker' && bus !== 'inthread') throw new UsageError(`--bus: expected worker or inthread, got '${shown(bus)}'`);
    const slots = intOpt(values, 'slots', 1, MACHINE_LIMITS.maxSlots);
    const ramSize = sizeOpt(values, 'ram-size', MACHINE_LIMITS.minRamSize, MACHINE_LIMITS.maxRamSize);
    const devices = stringsOpt(values, 'device');
    if (devices.length > (slots ?? 32)) throw new UsageError(`--device: ${devices.length} devices do not fit in ${slots ?? 32} slots`);
    let machine: Machine;
    try {
      machine = await Machine.create({
        devices: devices.map(parseDeviceArg),
        bus: bus as BusKind,
        ...(slots !== undefined ? { slots } : {}),
        ...(ramSize !== undefined ? { ramSize } : {}),
      });
    } catch (err) {
      // Options the machine refuses are the user's to fix.
      if (err instanceof RangeError) throw new UsageError(err.message);
      throw err;
    }
    const signals = onStopSignal();
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
      signals.stop();
      await machine.close();
    }
  },
};
