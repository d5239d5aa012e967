// Scale: one machine with 1024 virtio-rng devices (memory per device: the
// device side in the worker's heap, the kernel side on this thread's heap
// and in guest RAM; probe time), and the device work of 8 devices served by
// one device worker versus two. A machine has exactly one device worker, so
// "two workers" is two machines with 4 devices each, both driven from this
// thread by the same batching loop as "one worker" (one machine, 8 devices).
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { virtioRngDriver } from '../../../core/drivers/rng.js';
import { dmaFor } from '../../../core/dma.js';
import { VIRTIO_ID_RNG } from '../../../core/uapi/ids.js';
import { Machine, type MachineOptions } from '../../../emulator/machine.js';
import { benchDriver } from '../bench-driver.js';
import { runPipeline, type Pipe } from '../pipeline.js';
import type { BenchCase, BenchContext, BenchInstance } from '../case.js';
import { rngPipe } from './datapath.js';
import { countedSystem, probeInstance } from './probe-pm.js';

const SCALE_DEVICES = 1024;
/** Devices of the scale probe in a --quick run: its three 1024-device machines are most of a quick suite's time. */
export const SCALE_DEVICES_QUICK = 128;
const WORKER_DEVICES = 8;
const CHAIN_BYTES = 16;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const MEASURED_BOARD = new URL('../measured-board.js', import.meta.url).href;

/** Live bytes the board of a machine with these options takes in its device worker (see measured-board.ts). */
async function boardBytes(opts: MachineOptions): Promise<number> {
  const m = await Machine.create({ ...opts, boardModule: MEASURED_BOARD });
  try {
    const r = m.control({ op: 'stats' });
    const v = r.ok ? (r.value as { boardBytes?: unknown }).boardBytes : undefined;
    if (typeof v !== 'number') throw new Error('measured board reported no boardBytes');
    return v;
  } finally {
    await m.close();
  }
}

async function scaleCase(ctx: BenchContext): Promise<BenchInstance> {
  const n = ctx.quick ? SCALE_DEVICES_QUICK : SCALE_DEVICES;
  // Device side: n devices against n empty windows, same RAM, so the
  // difference is the device models, register files and queues (measured in
  // the worker's own heap). A bench --board module is not used here.
  const full = await boardBytes({ slots: n, devices: Array.from({ length: n }, () => 'rng'), ramSize: 1 << 20 });
  const empty = await boardBytes({ slots: n, devices: [], ramSize: 1 << 20 });
  // Kernel side: what the boot probe leaves on this thread's heap, and its DMA (vrings, buffers).
  const heap0 = (gc(), process.memoryUsage().heapUsed);
  const booted = await countedSystem(ctx, 'rng', n, [virtioRngDriver]);
  const heap1 = (gc(), process.memoryUsage().heapUsed);
  const dma = dmaFor(booted.sys.machine.mem).stats().used;
  const inst = probeInstance(ctx, n, booted);
  const probeExtras = inst.extras;
  return {
    ...inst,
    minBatches: ctx.quick ? 3 : 10,
    extras: (t) => ({
      ...(probeExtras ? probeExtras(t) : {}),
      bytes_per_device: (full - empty) / n,
      kernel_heap_bytes_per_device: (heap1 - heap0) / n,
      dma_bytes_per_device: dma / n,
    }),
  };
}

async function workersCase(ctx: BenchContext, machines: number): Promise<BenchInstance> {
  const drv = benchDriver('bench_rng_scale', VIRTIO_ID_RNG, { eventIdx: true });
  const per = WORKER_DEVICES / machines;
  const systems = await Promise.all(
    Array.from({ length: machines }, () => countedSystem(ctx, 'rng', per, [drv.driver])),
  );
  const pipes: Pipe[] = [];
  for (const { sys } of systems) {
    for (const d of sys.devices) pipes.push(rngPipe(drv.queue(d.vdev)!, sys.bus.irq, CHAIN_BYTES));
  }
  return {
    run(n) {
      runPipeline(pipes, n);
    },
    batchSize: pipes.reduce((a, p) => a + p.depth, 0),
    teardown: async () => {
      await Promise.all(systems.map(({ sys }) => sys.close()));
    },
    extras: (t) => ({ chains_per_s: t.ops_per_s, total_devices: WORKER_DEVICES, machines, workers: machines, bytes: CHAIN_BYTES }),
  };
}

export const cases: BenchCase[] = [
  {
    name: `scale.probe.${SCALE_DEVICES}dev`,
    description: `one machine with ${SCALE_DEVICES} virtio-rng devices (--quick: ${SCALE_DEVICES_QUICK}): probe time and memory per device`,
    setup: (ctx) => scaleCase(ctx),
  },
  {
    name: `scale.workers.one.${WORKER_DEVICES}dev`,
    description: `ring throughput over ${WORKER_DEVICES} rng devices in one machine (one device worker)`,
    setup: (ctx) => workersCase(ctx, 1),
  },
  {
    name: `scale.workers.two.${WORKER_DEVICES / 2}dev_each`,
    description: `the same ${WORKER_DEVICES} devices as two machines of ${WORKER_DEVICES / 2} (two device workers), driven concurrently`,
    ratioTo: `scale.workers.one.${WORKER_DEVICES}dev`,
    setup: (ctx) => workersCase(ctx, 2),
  },
];
