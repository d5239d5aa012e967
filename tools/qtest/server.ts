// QEMU's qtest text protocol (system/qtest.c) over a Machine, so tools that
// speak qtest can drive the emulator as they drive QEMU. One reply line per
// command line; "IRQ raise N" / "IRQ lower N" lines arrive asynchronously
// when a line's level changes (always on: irq_intercept_* just answer OK).
// Addresses in guest RAM go to RAM directly, everything else to the bus.
import * as net from 'node:net';
import { existsSync, lstatSync, unlinkSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { BusError } from '../../core/bus.js';
import type { Machine } from '../../emulator/machine.js';

/** Largest read/write/memset a single command may cover. */
const MAX_BULK = 16 << 20;
/** How often the IRQ watcher re-checks levels when no raise wakes it (lowers do not). */
const IRQ_POLL_MS = 10;

class QtestFail extends Error {}

/** qemu_strtou64(..., base 0): decimal, 0x hex, or 0-prefixed octal. */
export function parseU64(word: string | undefined, what: string): bigint {
  if (word === undefined || word === '') throw new QtestFail(`missing ${what}`);
  let v: bigint;
  if (/^0[xX][0-9a-fA-F]+$/.test(word)) v = BigInt(word);
  else if (/^0[0-7]*$/.test(word)) v = BigInt(word.length > 1 ? `0o${word.slice(1)}` : '0');
  else if (/^[1-9][0-9]*$/.test(word)) v = BigInt(word);
  else throw new QtestFail(`bad ${what} '${word}'`);
  if (v >= 1n << 64n) throw new QtestFail(`${what} '${word}' out of range`);
  return v;
}

function parseAddr(word: string | undefined): number {
  const v = parseU64(word, 'address');
  if (v >= 1n << 32n) throw new QtestFail(`address ${word} outside the 32-bit physical address space`);
  return Number(v);
}

function parseLen(word: string | undefined): number {
  const v = parseU64(word, 'size');
  if (v > BigInt(MAX_BULK)) throw new QtestFail(`size ${word} larger than ${MAX_BULK}`);
  return Number(v);
}

function hex16(v: bigint): string {
  return `0x${v.toString(16).padStart(16, '0')}`;
}

/** One client's session: parses lines, runs them against the machine, writes replies. */
export class QtestSession {
  private readonly reported: boolean[];
  private readonly raises: number[];
  private watching = false;

  constructor(
    private readonly machine: Machine,
    private readonly send: (line: string) => void,
  ) {
    const irq = machine.irq;
    this.reported = Array.from({ length: irq.lines }, () => false);
    this.raises = Array.from({ length: irq.lines }, (_, i) => irq.raiseCount(i));
  }

  /** Run one command line and send its reply (and any IRQ lines it caused first). */
  handleLine(raw: string): void {
    let reply: string;
    try {
      reply = this.execute(raw.replace(/\r$/, '').trim().split(/\s+/));
    } catch (err) {
      if (err instanceof QtestFail) reply = `FAIL ${err.message}`;
      else if (err instanceof BusError) reply = `FAIL ${err.code}: ${err.message}`;
      else reply = `FAIL ${err instanceof Error ? err.message : String(err)}`;
    }
    // Effects of the command on the lines (an ACK lowering one) come before
    // its reply, as QEMU emits them while the access runs.
    this.reportIrqs();
    this.send(reply);
  }

  /** Watch the lines from the event loop for changes caused by deferred device work. */
  startIrqWatch(): void {
    if (this.watching) return;
    this.watching = true;
    const irq = this.machine.irq;
    const loop = async (): Promise<void> => {
      while (this.watching && !this.machine.closed) {
        const seq = irq.sequence();
        this.reportIrqs();
        await irq.waitForRaise(seq, IRQ_POLL_MS);
      }
    };
    void loop();
  }

  stopIrqWatch(): void {
    this.watching = false;
  }

  /** Send IRQ raise/lower for every line whose level changed since last reported. */
  reportIrqs(): void {
    if (this.machine.closed) return;
    const irq = this.machine.irq;
    for (let line = 0; line < irq.lines; line++) {
      const level = irq.level(line);
      const raises = irq.raiseCount(line);
      const pulsed = raises !== this.raises[line];
      this.raises[line] = raises;
      if (level === this.reported[line]) {
        // A raise and lower both since the last look: report the pulse.
        if (!level && pulsed) {
          this.send(`IRQ raise ${line}`);
          this.send(`IRQ lower ${line}`);
        }
        continue;
      }
      this.reported[line] = level;
      this.send(`IRQ ${level ? 'raise' : 'lower'} ${line}`);
    }
  }

  private execute(words: string[]): string {
    const cmd = words[0] ?? '';
    switch (cmd) {
      case '':
        throw new QtestFail('empty command');
      case 'readb':
      case 'readw':
      case 'readl':
      case 'readq':
        return `OK ${hex16(this.readN(parseAddr(words[1]), widthOf(cmd[4]!)))}`;
      case 'writeb':
      case 'writew':
      case 'writel':
      case 'writeq': {
        const addr = parseAddr(words[1]);
        const value = parseU64(words[2], 'value');
        this.writeN(addr, widthOf(cmd[5]!), value);
        return 'OK';
      }
      case 'read': {
        const data = this.readBytes(parseAddr(words[1]), parseLen(words[2]));
        return `OK 0x${Buffer.from(data).toString('hex')}`;
      }
      case 'write': {
        const addr = parseAddr(words[1]);
        const len = parseLen(words[2]);
        const hex = words[3];
        if (hex === undefined || !/^0[xX][0-9a-fA-F]*$/.test(hex) || hex.length % 2 !== 0) {
          throw new QtestFail(`bad data '${hex ?? ''}' (want 0x followed by hex byte pairs)`);
        }
        // As QEMU: missing trailing bytes are written as 0.
        const data = new Uint8Array(len);
        data.set(Buffer.from(hex.slice(2), 'hex').subarray(0, len));
        this.writeBytes(addr, data);
        return 'OK';
      }
      case 'memset': {
        const addr = parseAddr(words[1]);
        const len = parseLen(words[2]);
        const pattern = Number(parseU64(words[3], 'pattern') & 0xffn);
        this.writeBytes(addr, new Uint8Array(len).fill(pattern));
        return 'OK';
      }
      case 'b64read': {
        const data = this.readBytes(parseAddr(words[1]), parseLen(words[2]));
        return `OK ${Buffer.from(data).toString('base64')}`;
      }
      case 'b64write': {
        const addr = parseAddr(words[1]);
        const len = parseLen(words[2]);
        const b64 = words[3];
        if (b64 === undefined || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw new QtestFail('bad base64 data');
        const data = new Uint8Array(len);
        data.set(Buffer.from(b64, 'base64').subarray(0, len));
        this.writeBytes(addr, data);
        return 'OK';
      }
      case 'endianness':
        return 'OK little';
      case 'irq_intercept_in':
      case 'irq_intercept_out':
        return 'OK';
      default:
        throw new QtestFail(`Unknown command '${cmd}'`);
    }
  }

  private inRam(addr: number, len: number): boolean {
    const mem = this.machine.mem;
    return addr >= mem.base && addr + len <= mem.base + mem.size;
  }

  private readN(addr: number, width: 1 | 2 | 4 | 8): bigint {
    if (this.inRam(addr, width)) {
      const view = this.machine.mem.view;
      const o = addr - this.machine.mem.base;
      if (width === 8) return view.getBigUint64(o, true);
      return BigInt(width === 1 ? view.getUint8(o) : width === 2 ? view.getUint16(o, true) : view.getUint32(o, true));
    }
    const bus = this.machine.bus;
    if (width !== 8) return BigInt(bus.read(addr, width));
    // The bus carries at most 32 bits: a 64-bit access is two, low half first.
    if (addr + 4 >= 2 ** 32) throw new QtestFail('64-bit access crosses the end of the address space');
    const lo = bus.read(addr, 4);
    const hi = bus.read(addr + 4, 4);
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  private writeN(addr: number, width: 1 | 2 | 4 | 8, value: bigint): void {
    const masked = BigInt.asUintN(width * 8, value);
    if (this.inRam(addr, width)) {
      const view = this.machine.mem.view;
      const o = addr - this.machine.mem.base;
      if (width === 8) view.setBigUint64(o, masked, true);
      else if (width === 4) view.setUint32(o, Number(masked), true);
      else if (width === 2) view.setUint16(o, Number(masked), true);
      else view.setUint8(o, Number(masked));
      return;
    }
    const bus = this.machine.bus;
    if (width !== 8) {
      bus.write(addr, width, Number(masked));
      return;
    }
    if (addr + 4 >= 2 ** 32) throw new QtestFail('64-bit access crosses the end of the address space');
    bus.write(addr, 4, Number(masked & 0xffff_ffffn));
    bus.write(addr + 4, 4, Number(masked >> 32n));
  }

  private readBytes(addr: number, len: number): Uint8Array {
    if (len === 0) throw new QtestFail('size 0');
    if (addr + len > 2 ** 32) throw new QtestFail('range crosses the end of the address space');
    const mem = this.machine.mem;
    if (this.inRam(addr, len)) return mem.u8.slice(addr - mem.base, addr - mem.base + len);
    const out = new Uint8Array(len);
    for (let i = 0; i < len; i++) {
      const a = addr + i;
      out[i] = this.inRam(a, 1) ? mem.u8[a - mem.base]! : this.machine.bus.read(a, 1);
    }
    return out;
  }

  private writeBytes(addr: number, data: Uint8Array): void {
    if (addr + data.length > 2 ** 32) throw new QtestFail('range crosses the end of the address space');
    const mem = this.machine.mem;
    if (this.inRam(addr, data.length)) {
      mem.u8.set(data, addr - mem.base);
      return;
    }
    for (let i = 0; i < data.length; i++) {
      const a = addr + i;
      if (this.inRam(a, 1)) mem.u8[a - mem.base] = data[i]!;
      else this.machine.bus.write(a, 1, data[i]!);
    }
  }
}

function widthOf(suffix: string): 1 | 2 | 4 | 8 {
  return suffix === 'b' ? 1 : suffix === 'w' ? 2 : suffix === 'l' ? 4 : 8;
}

/** Serve one session over a pair of streams until the input ends. */
export function serveStream(machine: Machine, input: Readable, output: Writable): Promise<void> {
  const session = new QtestSession(machine, (line) => output.write(`${line}\n`));
  const rl = createInterface({ input, crlfDelay: Infinity });
  session.startIrqWatch();
  rl.on('line', (line) => session.handleLine(line));
  return new Promise((resolve) => {
    rl.once('close', () => {
      session.stopIrqWatch();
      resolve();
    });
  });
}

export interface QtestSocketServer {
  readonly server: net.Server;
  /** Stop listening and drop every connection. */
  close(): Promise<void>;
}

/**
 * Listen on a unix socket; each connection is a session on the same machine.
 * A stale socket file at `path` is replaced.
 */
export async function serveSocket(machine: Machine, path: string): Promise<QtestSocketServer> {
  if (existsSync(path) && lstatSync(path).isSocket()) unlinkSync(path);
  const conns = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    conns.add(sock);
    sock.on('close', () => conns.delete(sock));
    sock.on('error', () => sock.destroy());
    void serveStream(machine, sock, sock).then(() => sock.end());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const c of conns) c.destroy();
      }),
  };
}
