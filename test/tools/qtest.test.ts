// The qtest server: a test client over a unix socket against a machine with
// the fake board, and the CLI over stdio against the real board.
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PLATFORM } from '../../core/bus.js';
import { REG } from '../../core/uapi/mmio.js';
import { Machine } from '../../emulator/machine.js';
import { parseU64, serveSocket, type QtestSocketServer } from '../../tools/qtest/server.js';
import { FAKE_BOARD_MODULE, FAKE_TYPE } from '../helpers/fake-board.js';

/** A line-oriented client: send a command, take the next non-IRQ line as its reply. */
class Client {
  private buf = '';
  private lines: string[] = [];
  private waiters: (() => void)[] = [];
  readonly irqs: string[] = [];

  constructor(private readonly sock: net.Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      let i: number;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        if (line.startsWith('IRQ ')) this.irqs.push(line);
        else this.lines.push(line);
        for (const w of this.waiters.splice(0)) w();
      }
    });
  }

  static connect(path: string): Promise<Client> {
    return new Promise((resolve, reject) => {
      const s = net.createConnection(path, () => resolve(new Client(s)));
      s.once('error', reject);
    });
  }

  private async next(): Promise<string> {
    while (this.lines.length === 0) await new Promise<void>((r) => this.waiters.push(r));
    return this.lines.shift()!;
  }

  async cmd(line: string): Promise<string> {
    this.sock.write(`${line}\n`);
    return this.next();
  }

  async waitIrq(line: string): Promise<void> {
    while (!this.irqs.includes(line)) await new Promise<void>((r) => this.waiters.push(r));
  }

  close(): void {
    this.sock.destroy();
  }
}

const hex = (n: number): string => `0x${n.toString(16)}`;

describe('qtest server over a unix socket', () => {
  let dir: string;
  let machine: Machine;
  let server: QtestSocketServer;
  let client: Client;
  const mmio0 = PLATFORM.MMIO_BASE;
  const ram = PLATFORM.RAM_BASE;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qtest-'));
    machine = await Machine.create({ devices: [FAKE_TYPE], slots: 4, ramSize: 1 << 20, boardModule: FAKE_BOARD_MODULE });
    server = await serveSocket(machine, join(dir, 'q.sock'));
    client = await Client.connect(join(dir, 'q.sock'));
  });
  afterAll(async () => {
    client?.close();
    await server?.close();
    await machine?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads MagicValue with readl in the 16-digit reply format', async () => {
    expect(await client.cmd(`readl ${hex(mmio0 + REG.MagicValue)}`)).toBe('OK 0x0000000074726976');
    expect(await client.cmd(`readl ${hex(mmio0 + 0x200 + REG.DeviceID)}`)).toBe('OK 0x0000000000000000');
  });

  it('round-trips RAM through every width and the bulk commands', async () => {
    expect(await client.cmd(`writeq ${hex(ram + 0x100)} 0x1122334455667788`)).toBe('OK');
    expect(await client.cmd(`readq ${hex(ram + 0x100)}`)).toBe('OK 0x1122334455667788');
    expect(await client.cmd(`readl ${hex(ram + 0x104)}`)).toBe('OK 0x0000000011223344');
    expect(await client.cmd(`readw ${hex(ram + 0x100)}`)).toBe('OK 0x0000000000007788');
    expect(await client.cmd(`readb ${hex(ram + 0x107)}`)).toBe('OK 0x0000000000000011');
    expect(machine.mem.view.getUint32(0x100, true)).toBe(0x55667788);
    expect(await client.cmd(`write ${hex(ram + 0x200)} 4 0xdeadbeef`)).toBe('OK');
    expect(await client.cmd(`read ${hex(ram + 0x200)} 4`)).toBe('OK 0xdeadbeef');
    expect(await client.cmd(`readl ${hex(ram + 0x200)}`)).toBe('OK 0x00000000efbeadde');
    expect(await client.cmd(`memset ${hex(ram + 0x300)} 3 0x5a`)).toBe('OK');
    expect(await client.cmd(`read ${hex(ram + 0x2ff)} 5`)).toBe('OK 0x005a5a5a00');
    expect(await client.cmd(`b64write ${hex(ram + 0x400)} 3 AQID`)).toBe('OK');
    expect(await client.cmd(`b64read ${hex(ram + 0x400)} 3`)).toBe('OK AQID');
    // The last byte of RAM is RAM; one past it is not.
    expect(await client.cmd(`writeb ${hex(ram + (1 << 20) - 1)} 0x77`)).toBe('OK');
    expect(machine.mem.u8[(1 << 20) - 1]).toBe(0x77);
  });

  it('splits readq/writeq on a register window into two 32-bit accesses', async () => {
    const cfg = mmio0 + REG.Config;
    expect(await client.cmd(`writeq ${hex(cfg)} 0xa1b2c3d4e5f60718`)).toBe('OK');
    expect(await client.cmd(`readl ${hex(cfg + 4)}`)).toBe('OK 0x00000000a1b2c3d4');
    expect(await client.cmd(`readq ${hex(cfg)}`)).toBe('OK 0xa1b2c3d4e5f60718');
    expect(await client.cmd(`read ${hex(cfg)} 2`)).toBe('OK 0x1807');
  });

  it('answers FAIL to malformed lines and keeps serving', async () => {
    expect(await client.cmd('readl')).toMatch(/^FAIL /);
    expect(await client.cmd('readl zzz')).toMatch(/^FAIL bad address/);
    expect(await client.cmd('frobnicate 1 2')).toBe("FAIL Unknown command 'frobnicate'");
    expect(await client.cmd('')).toMatch(/^FAIL /);
    expect(await client.cmd(`write ${hex(ram)} 2 nothex`)).toMatch(/^FAIL /);
    expect(await client.cmd('readl 0x100000000')).toMatch(/^FAIL /);
    expect(await client.cmd(`readl ${hex(mmio0)}`)).toBe('OK 0x0000000074726976');
  });

  it('reports IRQ raise when deferred device work raises a line, and lower on ACK', async () => {
    expect(await client.cmd(`writel ${hex(mmio0 + REG.QueueNotify)} 0`)).toBe('OK');
    await client.waitIrq('IRQ raise 0');
    expect(await client.cmd(`readl ${hex(mmio0 + REG.InterruptStatus)}`)).toBe('OK 0x0000000000000001');
    expect(await client.cmd(`writel ${hex(mmio0 + REG.InterruptACK)} 1`)).toBe('OK');
    // The lower caused by the ACK is reported before the ACK's reply.
    expect(client.irqs).toEqual(['IRQ raise 0', 'IRQ lower 0']);
  });

  it('parses numbers as qemu_strtou64 with base 0 does', () => {
    expect(parseU64('0x1F', 'x')).toBe(31n);
    expect(parseU64('017', 'x')).toBe(15n);
    expect(parseU64('0', 'x')).toBe(0n);
    expect(parseU64('42', 'x')).toBe(42n);
    expect(() => parseU64('0x', 'x')).toThrow();
    expect(() => parseU64('08', 'x')).toThrow();
    expect(() => parseU64('0x10000000000000000', 'x')).toThrow();
  });
});

describe('virtio-emu qtest over stdio', () => {
  it('serves the real board: MagicValue, then exits when stdin ends', async () => {
    const bin = new URL('../../../bin/virtio-emu.js', import.meta.url);
    const child = spawn(process.execPath, [bin.pathname, 'qtest', '--device', 'rng'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const m = PLATFORM.MMIO_BASE;
    child.stdin.end(
      [`readl ${hex(m + REG.MagicValue)}`, `readl ${hex(m + REG.DeviceID)}`, 'bogus', `readl ${hex(m + 0x200 + REG.DeviceID)}`, ''].join('\n'),
    );
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    expect(err).toBe('');
    expect(out).toBe(['OK 0x0000000074726976', 'OK 0x0000000000000004', "FAIL Unknown command 'bogus'", 'OK 0x0000000000000000', ''].join('\n'));
    expect(code).toBe(0);
  });
});
