// The consumer end of sab.ring (see ring.ts): take request entries, check
// each one's sequence word, write a completion entry, publish completions in
// batches. Spins like the mailbox's worker end while requests keep coming,
// sleeps once idle.
import { workerData } from 'node:worker_threads';
import { WORKER_SPIN_MS, spinWhile } from '../../emulator/bus/spin.js';
import { CMP_RING, ENTRY_WORDS, REQ_RING, RING, RING_BATCH, RW } from './ring.js';

function serve(r: Int32Array): void {
  const mask = RING - 1;
  let head = Atomics.load(r, RW.REQ_TAIL);
  let errors = 0;
  Atomics.store(r, RW.READY, 1);
  Atomics.notify(r, RW.READY);
  for (;;) {
    const tail = Atomics.load(r, RW.REQ_TAIL);
    if (tail !== head) {
      // Everything up to tail is published: plain reads and writes from here.
      let unpublished = 0;
      for (; head !== tail; head = (head + 1) | 0) {
        const at = REQ_RING + (head & mask) * ENTRY_WORDS;
        if (r[at] !== head) errors++;
        const c = CMP_RING + (head & mask) * ENTRY_WORDS;
        r[c] = head;
        r[c + 1] = r[at + 3]!;
        if (++unpublished === RING_BATCH) {
          Atomics.store(r, RW.CMP_TAIL, (head + 1) | 0);
          unpublished = 0;
        }
      }
      Atomics.store(r, RW.CMP_TAIL, head);
      if (errors) Atomics.store(r, RW.ERRORS, errors);
      continue;
    }
    if (Atomics.load(r, RW.CLOSED) !== 0) return;
    if (spinWhile(r, RW.REQ_TAIL, head, WORKER_SPIN_MS) !== head) continue;
    Atomics.store(r, RW.WORKER_SLEEPING, 1);
    Atomics.wait(r, RW.REQ_TAIL, head);
    Atomics.store(r, RW.WORKER_SLEEPING, 0);
  }
}

serve(new Int32Array((workerData as { ring: SharedArrayBuffer }).ring));
