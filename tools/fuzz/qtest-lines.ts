// Property: random and mutated qtest command lines against a machine's qtest
// session, and the same bytes cut into random chunks through the line
// splitter. Every line gets exactly one reply, OK or FAIL, nothing escapes
// as an exception, a reply is never longer than the largest legal one (a
// FAIL quotes at most a short prefix of what it was sent), and the splitter
// never holds more than its line limit. One machine serves every run; RAM is
// zeroed first so runs do not see each other's writes.
import * as fc from 'fast-check';
import { PLATFORM } from '../../core/bus.js';
import { MMIO_WINDOW_SIZE, REG } from '../../core/uapi/mmio.js';
import { Machine } from '../../emulator/machine.js';
import { LineSplitter, QTEST_LIMITS, QtestSession } from '../qtest/server.js';
import { check } from './fuzz-board.js';

const RAM_SIZE = 64 * 1024;
const SLOTS = 4;
/** The longest reply there is: read of maxBulk bytes as hex. */
const MAX_REPLY = 2 * QTEST_LIMITS.maxBulk + 8;
/** A FAIL reply: a fixed text and a few quoted words. */
const MAX_FAIL = 400;

const RAM = PLATFORM.RAM_BASE;
const MMIO = PLATFORM.MMIO_BASE;

/** Addresses near every edge that matters: RAM's ends, the windows, unmapped space, the top of the address space. */
const address: fc.Arbitrary<number> = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: RAM, max: RAM + RAM_SIZE - 1 }) },
  { weight: 2, arbitrary: fc.integer({ min: -16, max: 16 }).map((d) => RAM + RAM_SIZE + d) },
  { weight: 1, arbitrary: fc.integer({ min: -16, max: 16 }).map((d) => RAM + d) },
  { weight: 3, arbitrary: fc.tuple(fc.nat({ max: SLOTS }), fc.constantFrom(...Object.values(REG)), fc.integer({ min: -2, max: 6 })).map(([s, r, d]) => MMIO + s * MMIO_WINDOW_SIZE + r + d) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff_ffff }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 16 }).map((d) => 0xffff_ffff - d) },
);

/** A number as a client may write it: hex, decimal, octal, zero-padded, or out of range. */
function numberText(n: fc.Arbitrary<number>): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: n.map((v) => `0x${v.toString(16)}`) },
    { weight: 2, arbitrary: n.map((v) => String(v)) },
    { weight: 1, arbitrary: n.map((v) => `0${v.toString(8)}`) },
    { weight: 1, arbitrary: fc.tuple(n, fc.nat({ max: 40 })).map(([v, z]) => `0x${'0'.repeat(z)}${v.toString(16)}`) },
    { weight: 1, arbitrary: fc.constantFrom('0x10000000000000000', '18446744073709551616', '0x', '08', '-1', '1e3', '0x1g', '') },
  );
}

const size: fc.Arbitrary<number> = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 64 }) },
  { weight: 2, arbitrary: fc.integer({ min: 65, max: 4096 }) },
  { weight: 1, arbitrary: fc.constantFrom(QTEST_LIMITS.maxBulk, QTEST_LIMITS.maxBulk + 1, 2 ** 32, 2 ** 53) },
);

const hexData = fc.uint8Array({ maxLength: 80 }).map((b) => `0x${Buffer.from(b).toString('hex')}`);
const b64Data = fc.uint8Array({ maxLength: 60 }).map((b) => Buffer.from(b).toString('base64'));

/** A well-formed command of every kind. */
const command: fc.Arbitrary<string> = fc.oneof(
  fc.tuple(fc.constantFrom('readb', 'readw', 'readl', 'readq'), numberText(address)).map((w) => w.join(' ')),
  fc.tuple(fc.constantFrom('writeb', 'writew', 'writel', 'writeq'), numberText(address), numberText(fc.integer({ min: 0, max: 0xffff_ffff }))).map((w) => w.join(' ')),
  fc.tuple(fc.constantFrom('read', 'b64read'), numberText(address), numberText(size)).map((w) => w.join(' ')),
  fc.tuple(fc.constant('write'), numberText(address), numberText(size), hexData).map((w) => w.join(' ')),
  fc.tuple(fc.constant('b64write'), numberText(address), numberText(size), b64Data).map((w) => w.join(' ')),
  fc.tuple(fc.constant('memset'), numberText(address), numberText(size), numberText(fc.nat({ max: 0x1ff }))).map((w) => w.join(' ')),
  fc.tuple(fc.constantFrom('clock_step', 'clock_set'), numberText(fc.oneof(fc.nat({ max: 1_000_000 }), fc.constant(Number.MAX_SAFE_INTEGER)))).map((w) => w.join(' ')),
  fc.constantFrom('endianness', 'clock_step', 'clock_step 9223372036854775807', 'clock_set 9223372036854775808', 'irq_intercept_in ioapic', 'irq_intercept_out', '', '   ', '\t'),
);

/** A command, damaged: characters replaced, inserted or cut, words doubled, the line repeated. */
const mutated: fc.Arbitrary<string> = fc
  .tuple(command, fc.array(fc.tuple(fc.nat(), fc.constantFrom('replace', 'insert', 'delete', 'cut'), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }))
  .map(([line, edits]) => {
    let s = line;
    for (const [at, kind, c] of edits) {
      const i = s.length ? at % (s.length + 1) : 0;
      const ch = String.fromCharCode(c);
      if (kind === 'replace') s = s.slice(0, i) + ch + s.slice(i + 1);
      else if (kind === 'insert') s = s.slice(0, i) + ch + s.slice(i);
      else if (kind === 'delete') s = s.slice(0, i) + s.slice(i + 1);
      else s = s.slice(0, i);
    }
    return s.replace(/\n/g, ' ');
  });

/** Bytes a client might send that are nothing like a command. */
const junk: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary-ascii', maxLength: 200 }).map((s) => s.replace(/\n/g, ' ')),
  fc.tuple(fc.constantFrom('read', 'x', 'readl 0x', 'write 0x40000000 4 0x'), fc.nat({ max: 20_000 }), fc.constantFrom('f', '0', ' ', 'a')).map(([p, n, c]) => p + c.repeat(n)),
);

export const qtestLine: fc.Arbitrary<string> = fc.oneof({ weight: 4, arbitrary: command }, { weight: 3, arbitrary: mutated }, { weight: 1, arbitrary: junk });

export interface QtestCase {
  lines: string[];
  /** Where the byte stream of the lines is cut into chunks. */
  cuts: number[];
}

export const qtestCase: fc.Arbitrary<QtestCase> = fc.record({
  lines: fc.array(qtestLine, { minLength: 1, maxLength: 25 }),
  cuts: fc.array(fc.nat(), { maxLength: 12 }),
});

/** What one case did, for the coverage checks. */
export interface QtestOutcome {
  ok: number;
  fail: number;
}

export class QtestLineFuzz {
  private constructor(readonly machine: Machine) {}

  static async create(): Promise<QtestLineFuzz> {
    const machine = await Machine.create({ devices: (['rng', 'blk', 'console'] as const).map((type) => ({ type, ...(type === 'console' ? { options: { out: 'none' } } : {}) })), slots: SLOTS, ramSize: RAM_SIZE, bus: 'inthread' });
    return new QtestLineFuzz(machine);
  }

  close(): Promise<void> {
    return this.machine.close();
  }

  run(c: QtestCase): QtestOutcome {
    this.machine.mem.u8.fill(0);
    const out: string[] = [];
    const session = new QtestSession(this.machine, (l) => out.push(l));
    const outcome: QtestOutcome = { ok: 0, fail: 0 };
    for (const [i, line] of c.lines.entries()) {
      const before = out.length;
      session.handleLine(line);
      const replies = out.slice(before).filter((l) => !/^IRQ (raise|lower) \d+$/.test(l));
      check(replies.length === 1, `line ${i}: ${replies.length} replies to ${JSON.stringify(line.slice(0, 60))}`);
      const r = replies[0]!;
      check(r === 'OK' || r.startsWith('OK ') || r.startsWith('FAIL '), `line ${i}: reply is neither OK nor FAIL: ${JSON.stringify(r.slice(0, 60))}`);
      check(r.length <= (r.startsWith('FAIL') ? MAX_FAIL : MAX_REPLY), `line ${i}: reply of ${r.length} characters`);
      check(!r.includes('\n'), `line ${i}: reply spans lines`);
      if (r.startsWith('OK')) outcome.ok++;
      else outcome.fail++;
    }
    // The same bytes, cut anywhere: the same lines, and never more held than the limit.
    const bytes = Buffer.from(`${c.lines.join('\n')}\n`, 'latin1');
    const limit = 64;
    const splitter = new LineSplitter(limit);
    const got: (string | { tooLong: true })[] = [];
    const points = [...new Set(c.cuts.map((x) => x % (bytes.length + 1)))].sort((a, b) => a - b);
    let from = 0;
    for (const p of [...points, bytes.length]) {
      got.push(...splitter.push(bytes.subarray(from, p)));
      check(splitter.pending <= limit, `the splitter holds ${splitter.pending} bytes, more than its limit ${limit}`);
      from = p;
    }
    got.push(...splitter.end());
    const want = c.lines.map((l) => (Buffer.byteLength(l, 'latin1') > limit ? { tooLong: true as const } : l));
    check(JSON.stringify(got) === JSON.stringify(want), 'the splitter gave other lines than the input holds');
    return outcome;
  }

  property(): fc.IPropertyWithHooks<[QtestCase]> {
    return fc.property(qtestCase, (c) => {
      this.run(c);
    });
  }
}
