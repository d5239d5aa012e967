// A board module for the scale case: builds the real board in the device
// worker and measures what it costs there. process.memoryUsage() in a worker
// reports that worker's own V8 heap, so the difference around createBoard,
// after a full GC on each side, is the board's live memory: device models,
// register files, queues. It is reported through the 'stats' control request.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createBoard as createRealBoard } from '../../emulator/board.js';
import type { Board, BoardConfig, ControlRequest, ControlResponse, IrqLines } from '../../emulator/board-contract.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function liveBytes(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

export function createBoard(config: BoardConfig, ram: Uint8Array, irq: IrqLines): Board {
  const before = liveBytes();
  const board = createRealBoard(config, ram, irq);
  const boardBytes = liveBytes() - before;
  return {
    read: (addr, width) => board.read(addr, width),
    write: (addr, width, value) => board.write(addr, width, value),
    runDeferred: (budget) => board.runDeferred(budget),
    hasDeferred: () => board.hasDeferred(),
    nextTimerMs: () => board.nextTimerMs(),
    setYieldHook: (hook) => board.setYieldHook?.(hook),
    control(req: ControlRequest): ControlResponse {
      const res = board.control(req);
      if (req.op !== 'stats' || !res.ok) return res;
      return { ok: true, value: { ...(res.value as Record<string, unknown>), boardBytes } };
    },
  };
}
