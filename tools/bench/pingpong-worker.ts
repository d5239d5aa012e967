// The raw SAB round trip, for the sab.pingpong case: the same spin-then-wait
// serving loop as the trap mailbox, with no access to decode and no board.
// It is the floor the register trap path is measured against.
import { workerData } from 'node:worker_threads';
import { MB } from '../../emulator/bus/mailbox.js';
import { WORKER_SPIN_MS, spinWhile } from '../../emulator/bus/spin.js';

function serve(mb: Int32Array): void {
  let last = Atomics.load(mb, MB.REQ);
  Atomics.store(mb, MB.READY, 1);
  Atomics.notify(mb, MB.READY);
  for (;;) {
    const seq = Atomics.load(mb, MB.REQ);
    if (seq !== last) {
      last = seq;
      Atomics.store(mb, MB.RESP, seq);
      if (Atomics.load(mb, MB.DRIVER_SLEEPING) !== 0) Atomics.notify(mb, MB.RESP, 1);
      continue;
    }
    if (Atomics.load(mb, MB.CLOSED) !== 0) return;
    if (spinWhile(mb, MB.REQ, last, WORKER_SPIN_MS) !== last) continue;
    Atomics.store(mb, MB.WORKER_SLEEPING, 1);
    Atomics.wait(mb, MB.REQ, last);
    Atomics.store(mb, MB.WORKER_SLEEPING, 0);
  }
}

serve(new Int32Array((workerData as { mailbox: SharedArrayBuffer }).mailbox));
