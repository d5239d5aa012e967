// virtio-console port 0 through real registers and rings: transmit into a
// file sink, input held until receive buffers exist and delivered in order,
// input from a file at activation, and the size config.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  VIRTIO_CONSOLE_CONFIG,
  VIRTIO_CONSOLE_F_MULTIPORT,
  VIRTIO_CONSOLE_F_SIZE,
  VIRTIO_CONSOLE_RECEIVEQ,
  VIRTIO_CONSOLE_TRANSMITQ,
} from '../../core/uapi/console.js';
import { bit } from '../../core/uapi/features.js';
import { VIRTIO_ID_CONSOLE } from '../../core/uapi/ids.js';
import { REG, VIRTIO_MMIO_INT_CONFIG } from '../../core/uapi/mmio.js';
import type { DeviceOptionValue } from '../../emulator/board-contract.js';
import { RawDriver, makeBoard, type RawRing, type TestBoard } from '../helpers/raw-driver.js';
import { bufBytes, postChain, runDevice, usedAt, type PostedChain } from '../helpers/raw-requests.js';

const dir = mkdtempSync(join(tmpdir(), 'console-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const text = (b: Uint8Array): string => Buffer.from(b).toString('utf8');

function consoleBoard(options: Record<string, DeviceOptionValue> = {}): { tb: TestBoard; drv: RawDriver } {
  const tb = makeBoard([{ type: 'console', transport: 'mmio', options: { out: 'none', ...options } }]);
  return { tb, drv: new RawDriver(tb) };
}

function input(tb: TestBoard, data: string): void {
  expect(tb.board.control({ op: 'inject', slot: 0, event: 'input', args: { data } })).toEqual({ ok: true });
  runDevice(tb);
}

/** Post n receive buffers of `len` bytes each. */
function postReceive(drv: RawDriver, rx: RawRing, n: number, len: number): PostedChain[] {
  const out: PostedChain[] = [];
  for (let i = 0; i < n; i++) out.push(postChain(drv, rx, VIRTIO_CONSOLE_RECEIVEQ, [{ len }]));
  return out;
}

/** What the device returned in receive buffers so far, in used-ring order. */
function received(drv: RawDriver, rx: RawRing, posted: PostedChain[]): string {
  let s = '';
  for (let i = 0; i < rx.usedIdx(); i++) {
    const u = rx.usedElem(i);
    const chain = posted.find((c) => c.head === u.id)!;
    s += text(bufBytes(drv.tb, chain, 0).subarray(0, u.len));
  }
  return s;
}

describe('virtio-console configuration', () => {
  it('is a console with two queues, offering the size feature only', () => {
    const { drv } = consoleBoard({ cols: 132, rows: 43 });
    expect(drv.read(REG.DeviceID)).toBe(VIRTIO_ID_CONSOLE);
    const f = drv.deviceFeatures();
    expect(f & bit(VIRTIO_CONSOLE_F_SIZE)).not.toBe(0n);
    expect(f & bit(VIRTIO_CONSOLE_F_MULTIPORT)).toBe(0n);
    for (const q of [0, 1]) {
      drv.write(REG.QueueSel, q);
      expect(drv.read(REG.QueueNumMax)).toBeGreaterThan(0);
    }
    drv.write(REG.QueueSel, 2);
    expect(drv.read(REG.QueueNumMax)).toBe(0);
    expect(drv.read(REG.Config + VIRTIO_CONSOLE_CONFIG.cols, 2)).toBe(132);
    expect(drv.read(REG.Config + VIRTIO_CONSOLE_CONFIG.rows, 2)).toBe(43);
  });

  it('changes cols/rows on a resize event with a config interrupt', () => {
    const { tb, drv } = consoleBoard();
    drv.bringUp([8, 8]);
    const gen = drv.read(REG.ConfigGeneration);
    expect(tb.board.control({ op: 'inject', slot: 0, event: 'resize', args: { cols: 100, rows: 30 } })).toEqual({ ok: true });
    expect(drv.read(REG.Config + VIRTIO_CONSOLE_CONFIG.cols, 2)).toBe(100);
    expect(drv.read(REG.Config + VIRTIO_CONSOLE_CONFIG.rows, 2)).toBe(30);
    expect(drv.read(REG.ConfigGeneration)).not.toBe(gen);
    expect(drv.interruptStatus() & VIRTIO_MMIO_INT_CONFIG).not.toBe(0);
    expect(tb.board.control({ op: 'inject', slot: 0, event: 'resize', args: { cols: -1, rows: 30 } }).ok).toBe(false);
  });
});

describe('virtio-console transmit', () => {
  it('appends transmitted bytes to the output file, used len 0', () => {
    const out = join(dir, 'tx.log');
    writeFileSync(out, 'before|');
    const { drv } = consoleBoard({ out });
    const [, tx] = drv.bringUp([8, 8]);
    const c1 = postChain(drv, tx!, VIRTIO_CONSOLE_TRANSMITQ, [{ data: Buffer.from('hello, ') }]);
    postChain(drv, tx!, VIRTIO_CONSOLE_TRANSMITQ, [{ data: Buffer.from('wor') }, { data: Buffer.from('ld\n') }]);
    expect(usedAt(tx!, 0)).toEqual({ id: c1.head, len: 0 });
    expect(tx!.usedIdx()).toBe(2);
    expect(readFileSync(out, 'utf8')).toBe('before|hello, world\n');
  });
});

describe('virtio-console receive', () => {
  it('holds input until buffers are posted, then delivers everything in order', () => {
    const { tb, drv } = consoleBoard();
    // Input before the driver even exists, then between setup and buffers.
    input(tb, 'early ');
    const [rx] = drv.bringUp([8, 8]);
    input(tb, 'abc');
    expect(rx!.usedIdx()).toBe(0);

    const posted = postReceive(drv, rx!, 4, 4);
    expect(received(drv, rx!, posted)).toBe('early abc');
    input(tb, 'XYZ');
    expect(received(drv, rx!, posted)).toBe('early abcXYZ');
    // Every used len counts only the bytes written.
    expect([0, 1, 2, 3].map((i) => rx!.usedElem(i).len)).toEqual([4, 4, 1, 3]);
  });

  it('delivers input injected after buffers are posted at once, one buffer per burst', () => {
    const { tb, drv } = consoleBoard();
    const [rx] = drv.bringUp([8, 8]);
    const posted = postReceive(drv, rx!, 3, 16);
    expect(rx!.usedIdx()).toBe(0);
    input(tb, 'one');
    input(tb, 'two');
    expect(rx!.usedIdx()).toBe(2);
    expect(received(drv, rx!, posted)).toBe('onetwo');
  });

  for (const how of ['driver reset', "power 'fresh'"] as const) {
    it(`keeps pending input and the output file across a ${how}`, () => {
      const out = join(dir, `kept-${how.replace(/\W/g, '')}.log`);
      const { tb, drv } = consoleBoard({ out });
      const [, tx] = drv.bringUp([8, 8]);
      postChain(drv, tx!, VIRTIO_CONSOLE_TRANSMITQ, [{ data: Buffer.from('a') }]);
      input(tb, 'kept');
      if (how === 'driver reset') drv.reset();
      else expect(tb.board.control({ op: 'power', model: 'fresh' })).toEqual({ ok: true });
      const [rx, tx2] = drv.bringUp([8, 8]);
      const posted = postReceive(drv, rx!, 1, 16);
      expect(received(drv, rx!, posted)).toBe('kept');
      postChain(drv, tx2!, VIRTIO_CONSOLE_TRANSMITQ, [{ data: Buffer.from('b') }]);
      expect(readFileSync(out, 'utf8')).toBe('ab');
    });
  }

  it('queues the in= file at activation, ahead of later input', () => {
    const inFile = join(dir, 'in.txt');
    writeFileSync(inFile, 'from file;');
    const { tb, drv } = consoleBoard({ in: inFile });
    const [rx] = drv.bringUp([8, 8]);
    input(tb, 'typed');
    const posted = postReceive(drv, rx!, 2, 32);
    expect(received(drv, rx!, posted)).toBe('from file;typed');
    expect(() => consoleBoard({ in: join(dir, 'missing.txt') })).toThrow();
  });

  it('rejects input events without data', () => {
    const { tb } = consoleBoard();
    expect(tb.board.control({ op: 'inject', slot: 0, event: 'input', args: {} }).ok).toBe(false);
    expect(tb.board.control({ op: 'inject', slot: 0, event: 'bogus' }).ok).toBe(false);
  });
});
