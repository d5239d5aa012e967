// The reference points of the register trap path: the raw SAB round trip
// between the same two threads (the floor), and the same read over a
// postMessage round trip (the design a naive implementation would use).
import { Worker } from 'node:worker_threads';
import { MAGIC_VALUE, REG } from '../../../core/uapi/mmio.js';
import { MB, createMailbox } from '../../../emulator/bus/mailbox.js';
import { DRIVER_SPIN_MS, spinWhile } from '../../../emulator/bus/spin.js';
import { createIrqState } from '../../../emulator/irq/controller.js';
import { boardModuleUrl, buildBoardConfig, type BusKind, type MachineOptions } from '../../../emulator/machine.js';
import { CMP_RING, ENTRY_WORDS, REQ_RING, RING, RING_BATCH, RW, createRingBuffer } from '../ring.js';
import type { BenchCase, BenchContext, BenchInstance } from '../case.js';

function machineOpts(ctx: BenchContext, bus: BusKind): MachineOptions {
  return { devices: ['rng'], ramSize: 1 << 20, bus, ...(ctx.boardModule ? { boardModule: ctx.boardModule } : {}) };
}

async function pingpong(): Promise<BenchInstance> {
  const { mailbox } = createMailbox(16);
  const mb = new Int32Array(mailbox);
  const w = new Worker(new URL('../pingpong-worker.js', import.meta.url), { workerData: { mailbox } });
  w.on('error', () => {});
  while (Atomics.load(mb, MB.READY) === 0) await new Promise((r) => setTimeout(r, 1));
  let seq = 0;
  return {
    run(n) {
      for (let i = 0; i < n; i++) {
        seq = (seq + 1) | 0;
        Atomics.store(mb, MB.REQ, seq);
        if (Atomics.load(mb, MB.WORKER_SLEEPING) !== 0) Atomics.notify(mb, MB.REQ, 1);
        // Same shape as MailboxBus: spin, then block until the answer.
        const prev = (seq - 1) | 0;
        if (spinWhile(mb, MB.RESP, prev, DRIVER_SPIN_MS) === prev) {
          while (Atomics.load(mb, MB.RESP) !== seq) {
            Atomics.store(mb, MB.DRIVER_SLEEPING, 1);
            Atomics.wait(mb, MB.RESP, prev, 20);
            Atomics.store(mb, MB.DRIVER_SLEEPING, 0);
          }
        }
      }
    },
    async teardown() {
      Atomics.store(mb, MB.CLOSED, 1);
      Atomics.notify(mb, MB.REQ);
      await w.terminate();
    },
  };
}

/** sab.ring's producer end (see ring.ts): n request entries through and n completions back per run. */
async function ring(): Promise<BenchInstance> {
  const sab = createRingBuffer();
  const r = new Int32Array(sab);
  const w = new Worker(new URL('../ring-worker.js', import.meta.url), { workerData: { ring: sab } });
  w.on('error', () => {});
  while (Atomics.load(r, RW.READY) === 0) await new Promise((res) => setTimeout(res, 1));
  const mask = RING - 1;
  /** Requests published, and completions consumed (free-running). */
  let tail = 0;
  let head = 0;
  let bad = 0;
  const publish = (): void => {
    Atomics.store(r, RW.REQ_TAIL, tail);
    if (Atomics.load(r, RW.WORKER_SLEEPING) !== 0) Atomics.notify(r, RW.REQ_TAIL, 1);
  };
  return {
    run(n) {
      let produced = 0;
      let completed = 0;
      while (completed < n) {
        // Fill whatever is free, publishing a batch at a time; a short batch
        // only when nothing is in flight or nothing more is wanted.
        let room = RING - ((tail - head) | 0);
        let want = n - produced;
        while (room > 0 && want > 0 && (room >= RING_BATCH || want <= room || tail === head)) {
          const k = Math.min(room, want, RING_BATCH);
          for (let i = 0; i < k; i++) {
            const at = REQ_RING + (tail & mask) * ENTRY_WORDS;
            r[at] = tail;
            r[at + 1] = at;
            r[at + 2] = 0;
            r[at + 3] = 16;
            tail = (tail + 1) | 0;
          }
          publish();
          produced += k;
          room -= k;
          want -= k;
        }
        const done = Atomics.load(r, RW.CMP_TAIL);
        for (; head !== done; head = (head + 1) | 0) {
          const c = CMP_RING + (head & mask) * ENTRY_WORDS;
          if (r[c] !== head || r[c + 1] !== 16) bad++;
          completed++;
        }
      }
      if (bad || Atomics.load(r, RW.ERRORS)) throw new Error(`sab.ring: ${bad} bad completions, ${Atomics.load(r, RW.ERRORS)} bad requests`);
    },
    // Whole ring loads per batch, as ring.rng.* times them.
    batchSize: 4 * RING,
    async teardown() {
      Atomics.store(r, RW.CLOSED, 1);
      Atomics.notify(r, RW.REQ_TAIL);
      await w.terminate();
    },
    extras: (t) => ({ chains_per_s: t.ops_per_s, ring_size: RING, entry_bytes: ENTRY_WORDS * 4, publish_batch: RING_BATCH }),
  };
}

async function postMessageRead(ctx: BenchContext): Promise<BenchInstance> {
  const opts = machineOpts(ctx, 'worker');
  const config = buildBoardConfig(opts);
  const w = new Worker(new URL('../postmessage-worker.js', import.meta.url), {
    workerData: {
      config,
      boardModule: boardModuleUrl(opts),
      ram: new SharedArrayBuffer(config.ramSize),
      irq: createIrqState(config.slots),
    },
  });
  let next: ((v: unknown) => void) | null = null;
  let failure: Error | null = null;
  w.on('message', (v: unknown) => {
    const r = next;
    next = null;
    r?.(v);
  });
  w.on('error', (err) => {
    failure = err;
    next?.(undefined);
  });
  const reply = (): Promise<unknown> => new Promise((r) => (next = r));
  await reply();
  if (failure) throw failure;
  const addr = config.mmioBase + REG.MagicValue;
  if ((await (w.postMessage([addr, 4]), reply())) !== MAGIC_VALUE) {
    await w.terminate();
    throw failure ?? new Error('slot 0 does not read MagicValue');
  }
  return {
    async run(n) {
      for (let i = 0; i < n; i++) {
        const p = reply();
        w.postMessage([addr, 4]);
        await p;
      }
    },
    teardown: async () => {
      await w.terminate();
    },
  };
}

export const floorCases: BenchCase[] = [
  {
    name: 'sab.pingpong',
    description: 'raw SharedArrayBuffer round trip to a worker spinning like the mailbox (the floor)',
    contend: true,
    setup: () => pingpong(),
  },
  {
    name: 'sab.ring',
    description: `raw SPSC request and completion rings of 16-byte entries (${RING} entries, tails published every ${RING_BATCH}) to a worker: the data-path floor`,
    contend: true,
    setup: () => ring(),
  },
];

export const baselineCases: BenchCase[] = [
  {
    name: 'baseline.postmessage.read32',
    description: 'read MagicValue via a postMessage round trip to a worker',
    ratioTo: 'mmio.read32.trap',
    contend: true,
    setup: (ctx) => postMessageRead(ctx),
  },
];
