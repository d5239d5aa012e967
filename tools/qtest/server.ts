// QEMU's qtest text protocol (system/qtest.c) over a Machine, so tools that
// speak qtest can drive the emulator as they drive QEMU. One reply line per
// command line; "IRQ raise N" / "IRQ lower N" lines arrive asynchronously
// when a line's level changes (always on: irq_intercept_* just answer OK).
//
// Hostile clients are expected (README, "Host input"): every size is bounded
// before anything is allocated (QTEST_LIMITS), a client's errors (reset,
// broken pipe, half-close) end that client only, and a client that does not
// read its replies stops being read (backpressure) instead of growing the
// server. Addresses wholly in guest RAM go to RAM directly; addresses wholly
// outside it go to the bus, a bulk command in naturally aligned accesses of
// at most 4 bytes, yielding to the event loop between slices; a range that
// straddles the edge of RAM is refused whole.
import * as net from 'node:net';
import { existsSync, lstatSync, unlinkSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { BusError, read64, write64, type AccessWidth } from '../../core/bus.js';
import type { ControlRequest } from '../../emulator/board-contract.js';
import type { Machine } from '../../emulator/machine.js';
import { CLOCK_MAX_NS } from '../../emulator/virtio/clock.js';

export const QTEST_LIMITS = {
  /** Bytes one read, write, memset, b64read or b64write may cover. */
  maxBulk: 1 << 20,
  /** Longest command line in bytes, without its newline: a write of maxBulk bytes in hex, and room for the rest. */
  maxLine: 2 * (1 << 20) + 256,
  /** Characters of a client's word quoted back in a FAIL reply. */
  maxQuote: 32,
  /** Clients connected at once to a socket; one more gets a FAIL line and is closed. */
  maxClients: 16,
  /**
   * A bulk command outside RAM lets the event loop run (signals, other
   * clients' sockets) after this many bus accesses or sliceMs, whichever
   * comes first.
   */
  sliceAccesses: 4096,
  sliceMs: 10,
} as const;

/** How often the IRQ watcher re-checks levels when no raise wakes it (lowers do not). */
const IRQ_POLL_MS = 10;
const TWO_32 = 2 ** 32;

class QtestFail extends Error {}

/** A client's word for a reply: at most maxQuote characters, printable. */
export function quote(word: string): string {
  const cut = word.length > QTEST_LIMITS.maxQuote ? `${word.slice(0, QTEST_LIMITS.maxQuote)}...` : word;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is replaced
  return cut.replace(/[\x00-\x1f\x7f-\uffff]/g, '?');
}

/** qemu_strtou64(..., base 0): decimal, 0x hex, or 0-prefixed octal. Linear: long words are refused before BigInt. */
export function parseU64(word: string | undefined, what: string): bigint {
  if (word === undefined || word === '') throw new QtestFail(`missing ${what}`);
  const range = (): QtestFail => new QtestFail(`${what} '${quote(word)}' out of range`);
  let v: bigint;
  if (/^0[xX][0-9a-fA-F]+$/.test(word)) {
    const digits = word.slice(2).replace(/^0+/, '');
    if (digits.length > 16) throw range();
    v = BigInt(`0x${digits || '0'}`);
  } else if (/^0[0-7]*$/.test(word)) {
    const digits = word.replace(/^0+/, '');
    if (digits.length > 22) throw range();
    v = BigInt(`0o${digits || '0'}`);
  } else if (/^[1-9][0-9]*$/.test(word)) {
    if (word.length > 20) throw range();
    v = BigInt(word);
  } else {
    throw new QtestFail(`bad ${what} '${quote(word)}'`);
  }
  if (v >= 1n << 64n) throw range();
  return v;
}

function parseAddr(word: string | undefined): number {
  const v = parseU64(word, 'address');
  if (v >= 1n << 32n) throw new QtestFail(`address ${quote(word!)} outside the 32-bit physical address space`);
  return Number(v);
}

/** A bulk size: at most maxBulk; 0 only where QEMU takes it (writes do nothing). */
function parseLen(word: string | undefined, allowZero = false): number {
  const v = parseU64(word, 'size');
  if (v === 0n && !allowZero) throw new QtestFail('size 0');
  if (v > BigInt(QTEST_LIMITS.maxBulk)) throw new QtestFail(`size ${quote(word!)} larger than ${QTEST_LIMITS.maxBulk} (the bulk limit)`);
  return Number(v);
}

/** A clock argument: a u64 as qtest writes numbers, at most the int64 the clock is (qemu_strtoi64). */
function parseClockNs(word: string | undefined): bigint {
  const ns = parseU64(word, 'ns');
  if (ns > CLOCK_MAX_NS) throw new QtestFail(`ns '${quote(word!)}' out of range (at most ${CLOCK_MAX_NS})`);
  return ns;
}

function hex16(v: bigint): string {
  return `0x${v.toString(16).padStart(16, '0')}`;
}

/** The first `max` whitespace-separated words of a line (linear; the rest is never split). */
function words(line: string, max: number): string[] {
  const out: string[] = [];
  let i = 0;
  const n = line.length;
  while (out.length < max) {
    while (i < n && (line.charCodeAt(i) === 32 || line.charCodeAt(i) === 9 || line.charCodeAt(i) === 13)) i++;
    if (i >= n) break;
    const start = i;
    while (i < n && line.charCodeAt(i) !== 32 && line.charCodeAt(i) !== 9 && line.charCodeAt(i) !== 13) i++;
    out.push(line.slice(start, i));
  }
  return out;
}

/** Naturally aligned width of the next bus access at `addr` with `left` bytes to go. */
function alignedWidth(addr: number, left: number): AccessWidth {
  if (addr % 4 === 0 && left >= 4) return 4;
  if (addr % 2 === 0 && left >= 2) return 2;
  return 1;
}

/** Counts one slice of bus work: over() once it has had its accesses or its time (then starts the next). */
class Slice {
  private n = 0;
  private start = performance.now();

  over(): boolean {
    this.n++;
    // The clock is read every 64 accesses only.
    if (this.n < QTEST_LIMITS.sliceAccesses && (this.n & 63 || performance.now() - this.start < QTEST_LIMITS.sliceMs)) return false;
    this.n = 0;
    this.start = performance.now();
    return true;
  }
}

/** A command's steps: yields between slices of bus work, returns the reply. */
type Steps = Generator<undefined, string, void>;

export interface SessionOptions {
  /** The output cannot take more now: IRQ lines wait (they are coalesced, never queued). */
  congested?: () => boolean;
}

/** One client's session: parses lines, runs them against the machine, writes replies. */
export class QtestSession {
  private readonly reported: boolean[];
  private readonly raises: number[];
  private watching = false;
  /** Lines handled so far (a reply each). */
  handled = 0;

  constructor(
    private readonly machine: Machine,
    private readonly send: (line: string) => void,
    private readonly opts: SessionOptions = {},
  ) {
    const irq = machine.irq;
    this.reported = Array.from({ length: irq.lines }, () => false);
    this.raises = Array.from({ length: irq.lines }, (_, i) => irq.raiseCount(i));
  }

  /** Run one command line to completion and send its reply (and any IRQ lines it caused first). */
  handleLine(raw: string): void {
    const steps = this.steps(raw);
    let r = steps.next();
    while (!r.done) r = steps.next();
    this.finish(r.value);
  }

  /**
   * Start a line: if it needs no more than one slice of bus work (every
   * command but a bulk one outside RAM), it is done and replied to at once
   * and null comes back; otherwise the rest of its steps, for finishLine().
   */
  beginLine(raw: string): Steps | null {
    const steps = this.steps(raw);
    const r = steps.next();
    if (!r.done) return steps;
    this.finish(r.value);
    return null;
  }

  /**
   * Run the rest of a line's steps, letting the event loop run between
   * slices; stops early (with a FAIL) once `stop()` says so or the machine
   * closes.
   */
  async finishLine(steps: Steps, stop: () => boolean = () => false): Promise<void> {
    let r: IteratorResult<undefined, string>;
    for (;;) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (stop() || this.machine.closed) {
        r = { done: true, value: 'FAIL EMU_CLOSED: the command was stopped (the server is closing)' };
        break;
      }
      r = steps.next();
      if (r.done) break;
    }
    this.finish(r.value);
  }

  /** handleLine, letting the event loop run between slices of bus work. */
  async handleLineAsync(raw: string, stop: () => boolean = () => false): Promise<void> {
    const rest = this.beginLine(raw);
    if (rest) await this.finishLine(rest, stop);
  }

  /** The reply to a line that was too long to keep; the line itself was discarded. */
  rejectLongLine(): void {
    this.finish(`FAIL line longer than ${QTEST_LIMITS.maxLine} bytes (discarded)`);
  }

  private finish(reply: string): void {
    this.handled++;
    // Effects of the command on the lines (an ACK lowering one) come before
    // its reply, as QEMU emits them while the access runs.
    this.reportIrqs();
    this.send(reply);
  }

  /** The command's steps, with every failure turned into a FAIL reply. */
  private *steps(raw: string): Steps {
    try {
      return yield* this.execute(words(raw, 5));
    } catch (err) {
      if (err instanceof QtestFail) return `FAIL ${err.message}`;
      if (err instanceof BusError) return `FAIL ${err.code}: ${err.message}`;
      return `FAIL ${quote(err instanceof Error ? err.message : String(err))}`;
    }
  }

  /** Watch the lines from the event loop for changes caused by deferred device work. */
  startIrqWatch(): void {
    if (this.watching) return;
    this.watching = true;
    const irq = this.machine.irq;
    const loop = async (): Promise<void> => {
      while (this.watching && !this.machine.closed) {
        const seq = irq.sequence();
        if (!this.opts.congested?.()) this.reportIrqs();
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

  private *execute(w: string[]): Steps {
    const cmd = w[0] ?? '';
    switch (cmd) {
      case '':
        throw new QtestFail('empty command');
      case 'readb':
      case 'readw':
      case 'readl':
      case 'readq':
        return `OK ${hex16(this.readN(parseAddr(w[1]), widthOf(cmd[4]!)))}`;
      case 'writeb':
      case 'writew':
      case 'writel':
      case 'writeq': {
        const addr = parseAddr(w[1]);
        const value = parseU64(w[2], 'value');
        this.writeN(addr, widthOf(cmd[5]!), value);
        return 'OK';
      }
      case 'read': {
        const data = yield* this.readBytes(parseAddr(w[1]), parseLen(w[2]));
        return `OK 0x${Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('hex')}`;
      }
      case 'write': {
        const addr = parseAddr(w[1]);
        const len = parseLen(w[2], true);
        const hex = w[3];
        if (hex === undefined || !/^0[xX][0-9a-fA-F]*$/.test(hex) || hex.length % 2 !== 0) {
          throw new QtestFail(`bad data '${quote(hex ?? '')}' (want 0x followed by hex byte pairs)`);
        }
        this.range(addr, len);
        // As QEMU: missing trailing bytes are written as 0, extra ones ignored.
        const data = new Uint8Array(len);
        data.set(Buffer.from(hex.slice(2, 2 + 2 * len), 'hex'));
        yield* this.writeBytes(addr, data);
        return 'OK';
      }
      case 'memset': {
        const addr = parseAddr(w[1]);
        const len = parseLen(w[2], true);
        const pattern = Number(parseU64(w[3], 'pattern') & 0xffn);
        yield* this.fill(addr, len, pattern);
        return 'OK';
      }
      case 'b64read': {
        const data = yield* this.readBytes(parseAddr(w[1]), parseLen(w[2]));
        return `OK ${Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64')}`;
      }
      case 'b64write': {
        const addr = parseAddr(w[1]);
        const len = parseLen(w[2], true);
        const b64 = w[3];
        if (b64 === undefined || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw new QtestFail('bad base64 data');
        this.range(addr, len);
        const data = new Uint8Array(len);
        // Only what can fill `len` bytes is decoded.
        data.set(Buffer.from(b64.slice(0, Math.ceil(len / 3) * 4), 'base64').subarray(0, len));
        yield* this.writeBytes(addr, data);
        return 'OK';
      }
      case 'endianness':
        return 'OK little';
      case 'clock_step':
        return this.clockStep(w[1]);
      case 'clock_set': {
        const ns = parseClockNs(w[1]);
        const now = this.clock({ op: 'clock', to: String(ns) }).ns;
        // As QEMU: OK when the clock is at NS now, FAIL (with the time it is at) when it was already past.
        return `${now === ns ? 'OK' : 'FAIL'} ${now}`;
      }
      case 'irq_intercept_in':
      case 'irq_intercept_out':
        return 'OK';
      default:
        throw new QtestFail(`Unknown command '${quote(cmd)}'`);
    }
  }

  /** clock_step [NS]: NS ns further, or to the next timer deadline; the reply is the clock in ns, as QEMU's. */
  private clockStep(word: string | undefined): string {
    const r = this.clock(word === undefined ? { op: 'clock', step: 'deadline' } : { op: 'clock', step: String(parseClockNs(word)) });
    return r.moved ? `OK ${r.ns}` : 'FAIL could not advance time';
  }

  /** The machine's virtual clock after a clock request: the time in ns, and whether it moved. */
  private clock(req: Extract<ControlRequest, { op: 'clock' }>): { ns: bigint; moved: boolean } {
    const r = this.machine.control(req);
    if (!r.ok) {
      if (/no pending deadline/.test(r.error)) throw new QtestFail('cannot advance clock to the next deadline because there is no pending deadline');
      throw new QtestFail(r.error);
    }
    const v = r.value as { ns: string; moved: boolean };
    return { ns: BigInt(v.ns), moved: v.moved };
  }

  /**
   * Where [addr, addr + len) goes: wholly in RAM, or wholly outside it (the
   * bus). A range that straddles the edge of RAM, or leaves the 32-bit
   * address space, is refused before any byte is touched.
   */
  private range(addr: number, len: number): 'ram' | 'bus' {
    if (addr + len > TWO_32) throw new QtestFail('range crosses the end of the address space');
    const { base, size } = this.machine.mem;
    if (addr >= base && addr + len <= base + size) return 'ram';
    if (addr + len <= base || addr >= base + size) return 'bus';
    throw new QtestFail(
      `range 0x${addr.toString(16)}+${len} crosses the edge of RAM (0x${base.toString(16)}-0x${(base + size - 1).toString(16)}); nothing was accessed`,
    );
  }

  private readN(addr: number, width: 1 | 2 | 4 | 8): bigint {
    if (this.range(addr, width) === 'ram') {
      const view = this.machine.mem.view;
      const o = addr - this.machine.mem.base;
      if (width === 8) return view.getBigUint64(o, true);
      return BigInt(width === 1 ? view.getUint8(o) : width === 2 ? view.getUint16(o, true) : view.getUint32(o, true));
    }
    const bus = this.machine.bus;
    // The bus carries at most 32 bits: a 64-bit access is two, low word first (BI-21).
    return width === 8 ? read64(bus, addr) : BigInt(bus.read(addr, width));
  }

  private writeN(addr: number, width: 1 | 2 | 4 | 8, value: bigint): void {
    const masked = BigInt.asUintN(width * 8, value);
    if (this.range(addr, width) === 'ram') {
      const view = this.machine.mem.view;
      const o = addr - this.machine.mem.base;
      if (width === 8) view.setBigUint64(o, masked, true);
      else if (width === 4) view.setUint32(o, Number(masked), true);
      else if (width === 2) view.setUint16(o, Number(masked), true);
      else view.setUint8(o, Number(masked));
      return;
    }
    if (width === 8) write64(this.machine.bus, addr, masked);
    else this.machine.bus.write(addr, width, Number(masked));
  }

  private *readBytes(addr: number, len: number): Generator<undefined, Uint8Array, void> {
    const mem = this.machine.mem;
    if (this.range(addr, len) === 'ram') return mem.u8.slice(addr - mem.base, addr - mem.base + len);
    const out = new Uint8Array(len);
    const bus = this.machine.bus;
    const slice = new Slice();
    for (let pos = 0; pos < len; ) {
      const width = alignedWidth(addr + pos, len - pos);
      const v = bus.read(addr + pos, width);
      for (let b = 0; b < width; b++) out[pos + b] = (v >>> (8 * b)) & 0xff;
      pos += width;
      if (slice.over() && pos < len) yield;
    }
    return out;
  }

  private *writeBytes(addr: number, data: Uint8Array): Generator<undefined, void, void> {
    const mem = this.machine.mem;
    if (this.range(addr, data.length) === 'ram') {
      mem.u8.set(data, addr - mem.base);
      return;
    }
    const bus = this.machine.bus;
    const slice = new Slice();
    for (let pos = 0; pos < data.length; ) {
      const width = alignedWidth(addr + pos, data.length - pos);
      let v = 0;
      for (let b = width - 1; b >= 0; b--) v = (v << 8) | data[pos + b]!;
      bus.write(addr + pos, width, v >>> 0);
      pos += width;
      if (slice.over() && pos < data.length) yield;
    }
  }

  private *fill(addr: number, len: number, pattern: number): Generator<undefined, void, void> {
    const mem = this.machine.mem;
    if (this.range(addr, len) === 'ram') {
      mem.u8.fill(pattern, addr - mem.base, addr - mem.base + len);
      return;
    }
    yield* this.writeBytes(addr, new Uint8Array(len).fill(pattern));
  }
}

function widthOf(suffix: string): 1 | 2 | 4 | 8 {
  return suffix === 'b' ? 1 : suffix === 'w' ? 2 : suffix === 'l' ? 4 : 8;
}

/** What a line splitter hands out: a whole line, or the news that one was too long and dropped. */
export type LineItem = string | { tooLong: true };

/**
 * Bytes → lines, never holding more than maxLine bytes of one line: a longer
 * line is dropped as it arrives and reported once at its newline. Lines are
 * latin1 (one character per byte): the protocol is ASCII, and anything else
 * fails to parse as it should.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private held = 0;
  private discarding = false;

  constructor(private readonly maxLine: number = QTEST_LIMITS.maxLine) {}

  /** Bytes of an unfinished line held now. */
  get pending(): number {
    return this.held;
  }

  push(chunk: Buffer): LineItem[] {
    const out: LineItem[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl < 0) break;
      out.push(this.take(chunk.subarray(start, nl)));
      start = nl + 1;
    }
    this.hold(chunk.subarray(start));
    return out;
  }

  /** The input ended: a last line without its newline, if any. */
  end(): LineItem[] {
    if (!this.discarding && this.held === 0) return [];
    return [this.take(Buffer.alloc(0))];
  }

  private hold(piece: Buffer): void {
    if (piece.length === 0 || this.discarding) return;
    if (this.held + piece.length > this.maxLine) {
      this.parts = [];
      this.held = 0;
      this.discarding = true;
      return;
    }
    // A copy: the chunk's buffer may be reused by the stream.
    this.parts.push(Buffer.from(piece));
    this.held += piece.length;
  }

  private take(last: Buffer): LineItem {
    if (this.discarding || this.held + last.length > this.maxLine) {
      this.parts = [];
      this.held = 0;
      this.discarding = false;
      return { tooLong: true };
    }
    const line = this.parts.length ? Buffer.concat([...this.parts, last]) : last;
    this.parts = [];
    this.held = 0;
    return line.toString('latin1');
  }
}

/**
 * Commands of every client of one machine run one at a time, each whole: a
 * bulk command outside RAM holds the machine across its slices. Taken at
 * once when free (the common case costs no promise), else in arrival order.
 */
class MachineLock {
  private held = false;
  private readonly waiters: (() => void)[] = [];

  tryAcquire(): boolean {
    if (this.held) return false;
    this.held = true;
    return true;
  }

  acquire(): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.held = false;
  }
}

const machineLocks = new WeakMap<Machine, MachineLock>();

function lockOf(machine: Machine): MachineLock {
  let l = machineLocks.get(machine);
  if (!l) machineLocks.set(machine, (l = new MachineLock()));
  return l;
}

/** Until the stream can take more, or is gone. */
function drained(out: Writable): Promise<void> {
  if (!out.writableNeedDrain || out.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      out.off('drain', done);
      out.off('close', done);
      out.off('error', done);
      resolve();
    };
    out.on('drain', done);
    out.on('close', done);
    out.on('error', done);
  });
}

export interface StreamSession {
  /** Resolves when the input ended (every line answered) or the client went away. */
  readonly done: Promise<void>;
  readonly session: QtestSession;
  /** The session is waiting for the client to read (output full, input not read meanwhile). */
  readonly waitingForReader: boolean;
  /** End the session now (server closing). */
  stop(): void;
}

/**
 * Serve one session over a pair of streams until the input ends, the client
 * goes away, or stop(). Never throws and never lets a stream error escape:
 * a reset, broken pipe or half-close ends this session only.
 */
export function openStreamSession(machine: Machine, input: Readable, output: Writable): StreamSession {
  let gone = false;
  let waiting = false;
  // The client is gone (a reset, a broken pipe, its output closed): end now
  // unless a line is being answered (that ends the session when it returns).
  const onError = (): void => {
    gone = true;
    if (!pumping) close();
  };
  input.on('error', onError);
  output.on('error', onError);
  output.on('close', onError);
  const session = new QtestSession(
    machine,
    (line) => {
      if (gone || output.destroyed || output.writableEnded) return;
      output.write(`${line}\n`);
    },
    { congested: () => output.writableNeedDrain },
  );
  const splitter = new LineSplitter();
  const lock = lockOf(machine);
  const stopped = (): boolean => gone || machine.closed;
  const queue: LineItem[] = [];
  let ended = false;
  let pumping = false;
  let finish: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });

  // Whether pump() paused the input: it does so only while it must wait (for
  // the machine, a bulk command's slices, or a client that does not read);
  // lines answered at once cost no pause and resume.
  let paused = false;
  const hold = (): void => {
    if (!paused) {
      paused = true;
      input.pause();
    }
  };

  /** Answer the queued lines in order; the input is paused while an answer has to wait. */
  const pump = async (): Promise<void> => {
    if (pumping) return;
    pumping = true;
    try {
      while (queue.length && !stopped()) {
        const item = queue.shift()!;
        if (!lock.tryAcquire()) {
          hold();
          await lock.acquire();
        }
        try {
          if (stopped()) break;
          if (typeof item !== 'string') session.rejectLongLine();
          else {
            const rest = session.beginLine(item);
            if (rest) {
              hold();
              await session.finishLine(rest, stopped);
            }
          }
        } finally {
          lock.release();
        }
        // Backpressure: read nothing more until the client has taken its replies.
        if (output.writableNeedDrain && !stopped()) {
          hold();
          waiting = true;
          await drained(output);
          waiting = false;
        }
      }
    } finally {
      pumping = false;
    }
    if (stopped() || (ended && !queue.length)) close();
    else if (paused && !queue.length) {
      paused = false;
      input.resume();
    }
  };

  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    session.stopIrqWatch();
    input.off('data', onData);
    input.off('end', onEnd);
    input.off('close', onInputClose);
    input.off('error', onError);
    output.off('close', onError);
    // Keep listeners: a late error on a stream nobody reads must not crash the process.
    input.on('error', () => {});
    output.off('error', onError);
    output.on('error', () => {});
    finish();
  };
  const onData = (chunk: Buffer | string): void => {
    const items = splitter.push(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk);
    if (!items.length) return;
    queue.push(...items);
    void pump();
  };
  const onEnd = (): void => {
    ended = true;
    queue.push(...splitter.end());
    void pump();
  };
  // The input went away without an end (a reset, destroy()): this client is gone.
  const onInputClose = (): void => {
    if (ended) return;
    gone = true;
    if (!pumping) close();
  };
  input.on('data', onData);
  input.on('end', onEnd);
  input.on('close', onInputClose);
  session.startIrqWatch();

  return {
    done,
    session,
    get waitingForReader() {
      return waiting;
    },
    stop() {
      gone = true;
      input.destroy();
      if (!pumping) close();
    },
  };
}

/** Serve one session over a pair of streams until the input ends (stdio). */
export function serveStream(machine: Machine, input: Readable, output: Writable): Promise<void> {
  return openStreamSession(machine, input, output).done;
}

export interface QtestSocketServer {
  readonly server: net.Server;
  /** Sessions now connected. */
  readonly sessions: ReadonlySet<StreamSession>;
  /** Stop listening and drop every connection. */
  close(): Promise<void>;
}

/**
 * Listen on a unix socket; each connection is a session on the same machine
 * (the devices' state is shared: one client sees what another wrote), at
 * most QTEST_LIMITS.maxClients at once. A stale socket file at `path` is
 * replaced; any other file there is left alone (listen fails).
 */
export async function serveSocket(machine: Machine, path: string): Promise<QtestSocketServer> {
  if (existsSync(path) && lstatSync(path).isSocket()) unlinkSync(path);
  const sessions = new Set<StreamSession>();
  const socks = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (sock) => {
    sock.on('error', () => sock.destroy());
    socks.add(sock);
    sock.on('close', () => socks.delete(sock));
    if (sessions.size >= QTEST_LIMITS.maxClients) {
      sock.end(`FAIL too many clients (${QTEST_LIMITS.maxClients} connected)\n`);
      return;
    }
    const s = openStreamSession(machine, sock, sock);
    sessions.add(s);
    void s.done.then(() => {
      sessions.delete(s);
      // Every line is answered: finish the replies, then close.
      if (!sock.destroyed) sock.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // An error after listening (none is expected) must not take the process down.
  server.on('error', () => {});
  return {
    server,
    sessions,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sessions) s.stop();
        for (const c of socks) c.destroy();
      }),
  };
}
