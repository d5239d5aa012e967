// The data path through the modelled kernel and the device worker:
// - rng.rtt16: one 16-byte entropy request end to end: add to the ring,
//   kick (QueueNotify trap), the device fills it, raises its interrupt, the
//   kernel's completion wait delivers it (vm_interrupt: InterruptStatus read
//   and ACK write, vring_interrupt, the callback harvests and completes);
// - ring.*: the ring kept full by a batching driver (refill every free
//   descriptor, kick as the ring asks, harvest in batches, interrupt only
//   when there is nothing to harvest), on a split ring with EVENT_IDX
//   negotiated and refused, and on a packed ring (EVENT_IDX negotiated: the
//   event suppression areas' RING_EVENT_FLAGS_DESC).
import type { IrqChip } from '../../../core/bus.js';
import { Completion, waitForCompletionTimeout } from '../../../core/completion.js';
import { dmaForDevice } from '../../../core/dma.js';
import { VIRTIO_ID_RNG } from '../../../core/uapi/ids.js';
import { benchDriver, type BenchQueue } from '../bench-driver.js';
import { runPipeline, type Pipe } from '../pipeline.js';
import type { BenchCase, BenchContext, BenchInstance } from '../case.js';
import { countedSystem } from './probe-pm.js';
import { deviceOnRing, expectRing, type RingKind } from '../ring-layout.js';

const RTT_BYTES = 16;
/** Bytes per chain in the throughput cases: small, so the ring and not the payload is measured. */
const RING_BYTES = 16;

async function rngQueue(ctx: BenchContext, eventIdx: boolean, ring: RingKind, count = 1) {
  const drv = benchDriver(`bench_rng_${eventIdx ? 'evidx' : 'noevidx'}`, VIRTIO_ID_RNG, { eventIdx });
  const { sys, bus } = await countedSystem(ctx, deviceOnRing('rng', ring), count, [drv.driver]);
  const queues = sys.devices.map((d) => drv.queue(d.vdev)!);
  try {
    if (queues.some((q) => !q || q.eventIdx !== eventIdx)) throw new Error(`bench driver did not bind with EVENT_IDX ${eventIdx ? 'on' : 'off'}`);
    for (const q of queues) expectRing(q.vq, ring);
  } catch (err) {
    await sys.close();
    throw err;
  }
  return { sys, bus, queues };
}

async function rttCase(ctx: BenchContext): Promise<BenchInstance> {
  const { sys, bus, queues } = await rngQueue(ctx, true, 'split');
  const q = queues[0]!;
  const irq = sys.bus.irq;
  const buf = dmaForDevice(q.vdev).alloc(RTT_BYTES, 16)!;
  const done = new Completion();
  let lastLen = 0;
  q.onInterrupt = () => {
    for (let b = q.vq.getBuf(); b; b = q.vq.getBuf()) {
      lastLen = b.len;
      done.complete();
    }
  };
  const sg = [{ addr: buf, len: RTT_BYTES }];
  let requests = 0;
  bus.reset();
  return {
    run(n) {
      for (let i = 0; i < n; i++) {
        done.reinit();
        if (q.vq.addInbuf(sg, 1) !== 0) throw new Error('rng: add failed');
        q.vq.kick();
        if (waitForCompletionTimeout(done, irq, 1000) === 0) throw new Error('rng: no completion within 1 s');
        if (lastLen !== RTT_BYTES) throw new Error(`rng: used len ${lastLen}`);
      }
      requests += n;
    },
    teardown: () => sys.close(),
    extras: () => ({ bytes: RTT_BYTES, accesses_per_request: bus.accesses / Math.max(1, requests) }),
  };
}

/** A pipe filling the whole ring with one-descriptor device-writable chains. */
export function rngPipe(q: BenchQueue, irq: IrqChip, bytes: number, depth = q.vq.getVringSize()): Pipe {
  const dma = dmaForDevice(q.vdev);
  const base = dma.alloc(bytes * depth, 64);
  if (base === null) throw new Error('rng: no DMA memory for the request buffers');
  const sgs = Array.from({ length: depth }, (_, i) => [{ addr: base + i * bytes, len: bytes }]);
  return {
    q,
    irq,
    depth,
    request: (slot) => ({ sgs: sgs[slot]!, out: 0 }),
    complete: (_slot, len) => {
      if (len !== bytes) throw new Error(`rng: used len ${len}, want ${bytes}`);
    },
  };
}

async function ringCase(ctx: BenchContext, eventIdx: boolean, ring: RingKind): Promise<BenchInstance> {
  const { sys, bus, queues } = await rngQueue(ctx, eventIdx, ring);
  const q = queues[0]!;
  const pipe = rngPipe(q, sys.bus.irq, RING_BYTES);
  const line = sys.devices[0]!.line;
  const irq = sys.machine.irq;
  let chains = 0;
  let waits = 0;
  let refills = 0;
  let harvests = 0;
  bus.reset();
  const raised0 = irq.raiseCount(line);
  return {
    run(n) {
      const c = runPipeline([pipe], n);
      chains += c.completed;
      waits += c.waits;
      refills += c.refills;
      harvests += c.harvests;
    },
    // Whole ring loads per batch, so refill/harvest cycles and not one chain's latency are timed.
    batchSize: 4 * q.vq.getVringSize(),
    teardown: () => sys.close(),
    extras: (t) => ({
      chains_per_s: t.ops_per_s,
      ring,
      ring_size: q.vq.getVringSize(),
      bytes: RING_BYTES,
      kicks_per_1000: (bus.notifies * 1000) / chains,
      irqs_per_1000: ((irq.raiseCount(line) - raised0) * 1000) / chains,
      waits_per_1000: (waits * 1000) / chains,
      refill_batch: chains / Math.max(1, refills),
      harvest_batch: chains / Math.max(1, harvests),
    }),
  };
}

export const cases: BenchCase[] = [
  {
    name: 'rng.rtt16',
    description: 'one 16-byte rng request: add, kick, device, interrupt, harvest (kernel completion wait)',
    contend: true,
    setup: (ctx) => rttCase(ctx),
  },
  {
    name: 'ring.rng.eventidx_on',
    description: `chains/s with a split ring kept full (${RING_BYTES}-byte rng chains, batched harvest), EVENT_IDX negotiated`,
    ratioTo: 'sab.ring',
    contend: true,
    setup: (ctx) => ringCase(ctx, true, 'split'),
  },
  {
    name: 'ring.rng.eventidx_off',
    description: `the same with EVENT_IDX refused by the driver (VRING_AVAIL_F_NO_INTERRUPT / VRING_USED_F_NO_NOTIFY)`,
    ratioTo: 'ring.rng.eventidx_on',
    setup: (ctx) => ringCase(ctx, false, 'split'),
  },
  {
    name: 'ring.rng.packed',
    description: 'the same pipeline on a packed ring (VIRTIO_F_RING_PACKED), EVENT_IDX negotiated (RING_EVENT_FLAGS_DESC)',
    ratioTo: 'ring.rng.eventidx_on',
    setup: (ctx) => ringCase(ctx, true, 'packed'),
  },
];
