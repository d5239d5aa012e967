// virtio-emu qtest: QEMU's qtest protocol over a machine.
import { Machine, type BusKind, type MachineDevice } from '../../emulator/machine.js';
import { serveSocket, serveStream } from '../qtest/server.js';
import type { TransportKind, DeviceOptionValue } from '../../emulator/board-contract.js';
import { UsageError, intOpt, stringOpt, stringsOpt, type CliCommand } from './args.js';

const TRANSPORTS: TransportKind[] = ['mmio', 'mmio-legacy', 'ccw'];

/** "TYPE[,transport=T][,slot=N][,key=value...]" */
export function parseDeviceArg(arg: string): MachineDevice {
  const [type, ...rest] = arg.split(',');
  if (!type || !/^[a-z0-9-]+$/i.test(type)) throw new UsageError(`--device: bad device type in '${arg}'`);
  const dev: MachineDevice = { type };
  const options: Record<string, DeviceOptionValue> = {};
  for (const kv of rest) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new UsageError(`--device: expected key=value, got '${kv}'`);
    const key = kv.slice(0, eq);
    const raw = kv.slice(eq + 1);
    if (key === 'transport') {
      if (!TRANSPORTS.includes(raw as TransportKind)) throw new UsageError(`--device: unknown transport '${raw}'`);
      dev.transport = raw as TransportKind;
    } else if (key === 'slot') {
      if (!/^\d+$/.test(raw)) throw new UsageError(`--device: bad slot '${raw}'`);
      dev.slot = Number(raw);
    } else {
      options[key] = raw === 'true' ? true : raw === 'false' ? false : /^-?\d+$/.test(raw) ? Number(raw) : raw;
    }
  }
  if (Object.keys(options).length > 0) dev.options = options;
  return dev;
}

export const command: CliCommand = {
  name: 'qtest',
  summary: "serve QEMU's qtest protocol over a machine",
  usage: '[--device TYPE[,transport=T][,slot=N][,k=v]]... [--socket PATH] [--slots N] [--ram-size BYTES] [--bus worker|inthread]',
  help: [
    '--device SPEC     plug a device; the first goes in slot 0 (repeatable)',
    '--socket PATH     listen on a unix socket instead of stdin/stdout',
    '--slots N         virtio-mmio windows (default 32)',
    '--ram-size BYTES  guest RAM at 0x40000000 (default 64 MiB)',
    '--bus KIND        worker (default) or inthread',
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
    if (bus !== 'worker' && bus !== 'inthread') throw new UsageError(`--bus: expected worker or inthread, got '${bus}'`);
    const slots = intOpt(values, 'slots', 1);
    const ramSize = intOpt(values, 'ram-size', 4096);
    const machine = await Machine.create({
      devices: stringsOpt(values, 'device').map(parseDeviceArg),
      bus: bus as BusKind,
      ...(slots !== undefined ? { slots } : {}),
      ...(ramSize !== undefined ? { ramSize } : {}),
    });
    const socket = stringOpt(values, 'socket');
    if (socket === undefined) {
      await serveStream(machine, process.stdin, process.stdout);
      await machine.close();
      return 0;
    }
    const server = await serveSocket(machine, socket);
    process.stderr.write(`qtest: listening on ${socket}\n`);
    await new Promise<void>((resolve) => {
      const stop = (): void => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        void server.close().then(resolve);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    await machine.close();
    return 0;
  },
};
