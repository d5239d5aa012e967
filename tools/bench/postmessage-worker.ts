// The postMessage baseline: a worker holding the same board, answering each
// read request message with a message.
import { parentPort, workerData } from 'node:worker_threads';
import type { BoardConfig } from '../../emulator/board-contract.js';
import type { CreateBoard } from '../../emulator/worker.js';

const data = workerData as { config: BoardConfig; boardModule: string; ram: SharedArrayBuffer; irq: SharedArrayBuffer };
const { IrqDeviceLines } = await import('../../emulator/irq/controller.js');
const mod = (await import(data.boardModule)) as { createBoard: CreateBoard };
const board = mod.createBoard(data.config, new Uint8Array(data.ram), new IrqDeviceLines(data.irq));
const port = parentPort!;
port.on('message', (msg: [number, 1 | 2 | 4]) => {
  port.postMessage(board.read(msg[0], msg[1]));
});
port.postMessage('ready');
