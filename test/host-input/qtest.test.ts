// HI-01..HI-06: the qtest server against hostile clients, over unix sockets
// in this process (an unhandled stream error would fail the run) and as a
// child process where the process itself must survive or stop.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AccessWidth, PLATFORM } from '../../core/bus.js';
import { REG } from '../../core/uapi/mmio.js';
import { Machine } from '../../emulator/machine.js';
import { LineSplitter, QTEST_LIMITS, QtestSession, serveSocket, type QtestSocketServer } from '../../tools/qtest/server.js';

const BIN = new URL('../../../bin/virtio-emu.js', import.meta.url).pathname;
const RAM = PLATFORM.RAM_BASE;
const MMIO = PLATFORM.MMIO_BASE;
const hex = (n: number): string => `0x${n.toString(16)}`;

/** Lines from a socket; IRQ lines kept apart. */
class Client {
  private buf = '';
  readonly lines: string[] = [];
  private waiters: (() => void)[] = [];
  ended = false;

  constructor(readonly sock: net.Socket) {
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      // Only the new data is searched: replies are up to 2 MiB long.
      let start = 0;
      let i: number;
      while ((i = d.indexOf('\n', start)) >= 0) {
        const line = this.buf + d.slice(start, i);
        this.buf = '';
        start = i + 1;
        if (!line.startsWith('IRQ ')) this.lines.push(line);
      }
      this.buf += d.slice(start);
      this.wake();
    });
    sock.on('end', () => {
      this.ended = true;
      this.wake();
    });
    sock.on('close', () => {
      this.ended = true;
      this.wake();
    });
    sock.on('error', () => {});
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  static connect(path: string): Promise<Client> {
    return new Promise((resolve, reject) => {
      const s = net.createConnection(path, () => resolve(new Client(s)));
      s.once('error', reject);
    });
  }

  async waitLines(n: number): Promise<string[]> {
    while (this.lines.length < n && !this.ended) await new Promise<void>((r) => this.waiters.push(r));
    return this.lines.slice(0, n);
  }

  async waitEnd(): Promise<void> {
    while (!this.ended) await new Promise<void>((r) => this.waiters.push(r));
  }

  async cmd(line: string): Promise<string> {
    const n = this.lines.length;
    this.sock.write(`${line}\n`);
    await this.waitLines(n + 1);
    return this.lines[n]!;
  }
}

/** Poll a condition through the event loop (no deadline of its own: the test timeout bounds it). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}

describe('qtest over a unix socket, hostile clients', () => {
  let dir: string;
  let machine: Machine;
  let server: QtestSocketServer;
  let path: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qtest-hi-'));
    path = join(dir, 'q.sock');
    machine = await Machine.create({ devices: ['rng'], slots: 4, ramSize: 4 << 20 });
    server = await serveSocket(machine, path);
  });
  afterAll(async () => {
    await server?.close();
    await machine?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('HI-01: a client that resets, breaks the pipe or half-closes at any point ends only itself', async () => {
    const big = `read ${hex(RAM)} ${QTEST_LIMITS.maxBulk}`;
    for (let round = 0; round < 12; round++) {
      // Send and go away without reading (the reply meets a closed socket).
      const a = await Client.connect(path);
      a.sock.write(`${big}\n${big}\nreadl ${hex(MMIO)}\n`);
      a.sock.destroy();
      // Go away in the middle of a large reply.
      const b = await Client.connect(path);
      b.sock.write(`${big}\n`);
      await new Promise<void>((r) => b.sock.once('data', () => r()));
      b.sock.destroy();
      // Half a line, then gone.
      const c = await Client.connect(path);
      c.sock.write('readl 0x0a00');
      c.sock.destroy();
      // Connect and vanish.
      (await Client.connect(path)).sock.destroy();
    }
    // Half-close: every line sent is still answered, then the server ends the connection.
    const h = await Client.connect(path);
    h.sock.end(`readl ${hex(MMIO + REG.MagicValue)}\nbogus\nreadl ${hex(MMIO + REG.DeviceID)}`);
    await h.waitEnd();
    expect(h.lines).toEqual(['OK 0x0000000074726976', "FAIL Unknown command 'bogus'", 'OK 0x0000000000000004']);
    // Every dead session is gone and a new client is served.
    await until(() => server.sessions.size === 0);
    const d = await Client.connect(path);
    expect(await d.cmd(`readl ${hex(MMIO + REG.MagicValue)}`)).toBe('OK 0x0000000074726976');
    d.sock.destroy();
  });

  it('HI-02: a line longer than the limit gets one FAIL, is never held whole, and the session goes on', async () => {
    const c = await Client.connect(path);
    const chunk = 'a'.repeat(64 * 1024);
    for (let i = 0; i < Math.ceil((QTEST_LIMITS.maxLine * 1.5) / chunk.length); i++) c.sock.write(chunk);
    c.sock.write(`\nreadl ${hex(MMIO + REG.MagicValue)}\n`);
    expect(await c.waitLines(2)).toEqual([`FAIL line longer than ${QTEST_LIMITS.maxLine} bytes (discarded)`, 'OK 0x0000000074726976']);
    c.sock.destroy();

    const s = new LineSplitter();
    let items = 0;
    for (let i = 0; i < 160; i++) {
      items += s.push(Buffer.alloc(64 * 1024, 0x61)).length;
      expect(s.pending).toBeLessThanOrEqual(QTEST_LIMITS.maxLine);
    }
    expect(items).toBe(0);
    expect(s.push(Buffer.from('\nreadb 0\n'))).toEqual([{ tooLong: true }, 'readb 0']);
    // The longest legal line (a write of maxBulk bytes) still fits.
    const legal = `write ${hex(RAM)} ${QTEST_LIMITS.maxBulk} 0x${'ab'.repeat(QTEST_LIMITS.maxBulk)}`;
    expect(legal.length).toBeLessThanOrEqual(QTEST_LIMITS.maxLine);
    expect(new LineSplitter().push(Buffer.from(`${legal}\n`))).toEqual([legal]);
  });

  it('HI-03: a client pipelining large reads without reading stops being read; its replies all come once it reads', async () => {
    const n = 24;
    machine.mem.u8.fill(0x5a, 0, QTEST_LIMITS.maxBulk);
    const c = await Client.connect(path);
    c.sock.pause();
    c.sock.write(`read ${hex(RAM)} ${QTEST_LIMITS.maxBulk}\n`.repeat(n));
    await until(() => [...server.sessions].some((s) => s.waitingForReader));
    const s = [...server.sessions].find((x) => x.waitingForReader)!;
    // One reply is 2 MiB of hex: the session waits after the first that fills the socket.
    expect(s.session.handled).toBeLessThanOrEqual(2);
    c.sock.resume();
    const lines = await c.waitLines(n);
    expect(lines).toHaveLength(n);
    const want = `OK 0x${'5a'.repeat(QTEST_LIMITS.maxBulk)}`;
    expect(lines.every((l) => l === want)).toBe(true);
    c.sock.destroy();
  });

  it('HI-04: bulk commands are capped, served with aligned bus accesses outside RAM, and refused whole across the edge of RAM', async () => {
    const c = await Client.connect(path);
    expect(await c.cmd(`read ${hex(RAM)} ${QTEST_LIMITS.maxBulk + 1}`)).toBe(`FAIL size ${QTEST_LIMITS.maxBulk + 1} larger than ${QTEST_LIMITS.maxBulk} (the bulk limit)`);
    expect(await c.cmd(`memset ${hex(RAM)} 0x100000000 0`)).toMatch(/^FAIL size .* larger than/);
    // Across the end of RAM: nothing stored, for single and bulk writes alike.
    const end = RAM + machine.mem.size;
    machine.mem.u8.fill(0, machine.mem.size - 8);
    expect(await c.cmd(`writeq ${hex(end - 4)} 0x1122334455667788`)).toMatch(/^FAIL range .* crosses the edge of RAM/);
    expect(await c.cmd(`writel ${hex(end - 2)} 0x11223344`)).toMatch(/^FAIL range .* crosses the edge of RAM/);
    expect(await c.cmd(`write ${hex(end - 4)} 8 0x0102030405060708`)).toMatch(/^FAIL range .* crosses the edge of RAM/);
    expect(await c.cmd(`memset ${hex(RAM - 4)} 8 0xff`)).toMatch(/^FAIL range .* crosses the edge of RAM/);
    expect(await c.cmd(`readq ${hex(RAM - 4)}`)).toMatch(/^FAIL range .* crosses the edge of RAM/);
    expect([...machine.mem.u8.subarray(machine.mem.size - 8)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    // The last 8 bytes of RAM are RAM.
    expect(await c.cmd(`writeq ${hex(end - 8)} 0x1122334455667788`)).toBe('OK');
    expect(await c.cmd(`readq ${hex(end - 8)}`)).toBe('OK 0x1122334455667788');
    c.sock.destroy();

    // Outside RAM, a bulk read is aligned accesses of up to 4 bytes, not one per byte.
    const widths: number[] = [];
    const bus = machine.bus;
    const counting = {
      mem: machine.mem,
      irq: machine.irq,
      closed: false,
      bus: { read: (a: number, w: AccessWidth) => (widths.push(w), bus.read(a, w)), write: (a: number, w: AccessWidth, v: number) => (widths.push(w), bus.write(a, w, v)) },
    } as unknown as Machine;
    const replies: string[] = [];
    const session = new QtestSession(counting, (l) => replies.push(l));
    session.handleLine(`read ${hex(MMIO + 1)} 11`);
    expect(widths).toEqual([1, 2, 4, 4]);
    expect(replies.at(-1)).toMatch(/^OK 0x[0-9a-f]{22}$/);
    widths.length = 0;
    session.handleLine(`read ${hex(MMIO)} 4096`);
    expect(widths).toHaveLength(1024);
    expect(replies.at(-1)!.slice(0, 11)).toBe('OK 0x766972'); // "vir" of MagicValue, little-endian
  });

  it('HI-06: replies to bad lines quote a short prefix of the input, never the whole line', async () => {
    const c = await Client.connect(path);
    const junk = 'x'.repeat(100_000);
    const r1 = await c.cmd(junk);
    expect(r1).toBe(`FAIL Unknown command '${'x'.repeat(QTEST_LIMITS.maxQuote)}...'`);
    const r2 = await c.cmd(`readl 0x${'f'.repeat(200_000)}`);
    expect(r2.length).toBeLessThan(120);
    expect(r2).toMatch(/^FAIL address '0xfff.*\.\.\.' out of range$/);
    const r3 = await c.cmd(`readl ${'9'.repeat(200_000)}`);
    expect(r3.length).toBeLessThan(120);
    const r4 = await c.cmd(`write ${hex(RAM)} 4 zz${'z'.repeat(50_000)}`);
    expect(r4.length).toBeLessThan(120);
    expect(await c.cmd(`readl ${hex(MMIO + REG.MagicValue)}`)).toBe('OK 0x0000000074726976');
    c.sock.destroy();
  });

  it('HI-07: sessions share the machine: one client sees what another wrote; a client over the limit gets one FAIL line', async () => {
    const a = await Client.connect(path);
    const b = await Client.connect(path);
    expect(await a.cmd(`writel ${hex(RAM + 0x40)} 0xcafef00d`)).toBe('OK');
    expect(await b.cmd(`readl ${hex(RAM + 0x40)}`)).toBe('OK 0x00000000cafef00d');
    a.sock.destroy();
    b.sock.destroy();
    await until(() => server.sessions.size === 0);
    const many: Client[] = [];
    for (let i = 0; i < QTEST_LIMITS.maxClients; i++) many.push(await Client.connect(path));
    await until(() => server.sessions.size === QTEST_LIMITS.maxClients);
    const extra = await Client.connect(path);
    await extra.waitEnd();
    expect(extra.lines).toEqual([`FAIL too many clients (${QTEST_LIMITS.maxClients} connected)`]);
    // The ones connected are unaffected.
    expect(await many[0]!.cmd(`readl ${hex(MMIO + REG.MagicValue)}`)).toBe('OK 0x0000000074726976');
    for (const m of many) m.sock.destroy();
  });
});

function startChild(args: string[]): { child: ReturnType<typeof spawn>; err: () => string; listening: Promise<void> } {
  const child = spawn(process.execPath, [BIN, 'qtest', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  let onListen: () => void = () => {};
  const listening = new Promise<void>((r) => {
    onListen = r;
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    if (err.includes('listening on')) onListen();
  });
  return { child, err: () => err, listening };
}

const exited = (child: ReturnType<typeof spawn>): Promise<{ code: number | null; signal: NodeJS.Signals | null }> =>
  new Promise((r) => {
    if (child.exitCode !== null || child.signalCode !== null) r({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => r({ code, signal }));
  });

describe('qtest as a process', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'qtest-proc-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('HI-01: clients that send and vanish do not kill the socket server; it still serves, and SIGTERM ends it with 0', async () => {
    const path = join(dir, 'a.sock');
    const { child, err, listening } = startChild(['--socket', path, '--device', 'rng']);
    await listening;
    for (let i = 0; i < 20; i++) {
      const c = await Client.connect(path);
      c.sock.write(`read ${hex(RAM)} ${QTEST_LIMITS.maxBulk}\n`.repeat(3));
      c.sock.destroy();
    }
    const c = await Client.connect(path);
    expect(await c.cmd(`readl ${hex(MMIO + REG.MagicValue)}`)).toBe('OK 0x0000000074726976');
    c.sock.destroy();
    expect(child.exitCode).toBeNull();
    child.kill('SIGTERM');
    expect(await exited(child)).toEqual({ code: 0, signal: null });
    expect(err()).toBe(`qtest: listening on ${path}\n`);
  });

  it('HI-01: on stdio, a reader that closes its end early is a clean exit, not a crash', async () => {
    const { child, err } = startChild(['--device', 'rng']);
    child.stdout!.destroy();
    child.stdin!.on('error', () => {});
    child.stdin!.end(`read ${hex(RAM)} ${QTEST_LIMITS.maxBulk}\n`.repeat(8));
    expect(await exited(child)).toEqual({ code: 0, signal: null });
    expect(err()).toBe('');
  });

  it('HI-05: SIGTERM during long bulk commands outside RAM stops the server without waiting for them', async () => {
    const path = join(dir, 'b.sock');
    const { child, listening } = startChild(['--socket', path, '--device', 'rng']);
    await listening;
    const c = await Client.connect(path);
    const n = 40;
    // 1 MiB from the first window on: 262 144 trapped accesses per command.
    c.sock.write(`read ${hex(MMIO)} ${QTEST_LIMITS.maxBulk}\n`.repeat(n));
    child.kill('SIGTERM');
    expect(await exited(child)).toEqual({ code: 0, signal: null });
    await c.waitEnd();
    expect(c.lines.filter((l) => l.startsWith('OK ')).length).toBeLessThan(n);
  });

  it('refuses out-of-range machine options as usage errors before starting', async () => {
    for (const args of [['--slots', '5000'], ['--slots', '0'], ['--ram-size', '4G'], ['--ram-size', '100'], ['--device', 'rng,__proto__=1'], ['--device', 'rng,x=1,x=2']]) {
      const { child, err } = startChild(args);
      child.stdin!.end();
      expect((await exited(child)).code).toBe(2);
      expect(err().trimEnd().split('\n')).toHaveLength(1);
    }
  });
});
