// Device worker entry. Builds the board over the shared guest RAM and
// interrupt controller, then serves the trap mailbox in a synchronous loop
// that never returns to the event loop until the machine closes. Any
// exception escaping the board kills the worker, and the driver's pending
// and later accesses fail with EMU_WORKER_DEAD carrying the error text.
import { workerData } from 'node:worker_threads';
import type { Board, BoardConfig, ControlRequest, ControlResponse, IrqLines } from './board-contract.js';
import { IrqDeviceLines } from './irq/controller.js';
import type { MailboxBuffers } from './bus/mailbox.js';
import { MailboxServer, announceDeath } from './bus/mailbox-server.js';
import { asRecord } from './bus/inthread.js';

export interface WorkerData {
  mailbox: SharedArrayBuffer;
  control: SharedArrayBuffer;
  irq: SharedArrayBuffer;
  ram: SharedArrayBuffer;
  config: BoardConfig;
  /** URL of a module exporting createBoard (the real board unless a test substitutes one). */
  boardModule: string;
}

export type CreateBoard = (config: BoardConfig, ram: Uint8Array, irq: IrqLines) => Board;

function describe(err: unknown): string {
  if (err instanceof Error) return err.stack ?? `${err.name}: ${err.message}`;
  return String(err);
}

function control(board: Board, req: ControlRequest, server: MailboxServer): ControlResponse {
  switch (req.op) {
    case 'ping':
      return { ok: true, value: 'pong' };
    case 'stats': {
      const res = board.control(req);
      const bus = { kind: 'worker', ...server.stats };
      return { ok: true, value: res.ok ? { ...asRecord(res.value), bus } : { bus } };
    }
    case 'fault':
      if (req.kind === 'crash') throw new Error('fault injected: crash');
      if (req.kind === 'hang') {
        const ms = req.ms ?? 1000;
        // Reply first, then stop answering: the next access meets the trap deadline.
        server.afterReply = () => {
          const end = performance.now() + ms;
          while (performance.now() < end) {
            // busy on purpose
          }
        };
        return { ok: true };
      }
      return board.control(req);
    default:
      return board.control(req);
  }
}

async function main(): Promise<void> {
  const data = workerData as WorkerData;
  const buffers: MailboxBuffers = { mailbox: data.mailbox, control: data.control };
  let done = false;
  const die = (reason: string): void => {
    if (done) return;
    done = true;
    announceDeath(buffers, reason);
  };
  // process.exit() from device code, or anything else ending the thread.
  process.on('exit', (code) => die(`worker exited with code ${code}`));
  try {
    const mod = (await import(data.boardModule)) as { createBoard?: CreateBoard };
    if (typeof mod.createBoard !== 'function') throw new Error(`${data.boardModule} does not export createBoard`);
    const board = mod.createBoard(data.config, new Uint8Array(data.ram), new IrqDeviceLines(data.irq));
    const server = new MailboxServer(buffers, board, (req, s) => control(board, req, s));
    server.serve();
    done = true;
  } catch (err) {
    die(describe(err));
    process.exitCode = 1;
  }
}

void main();
