// A client of QEMU's qtest text protocol over a child process's stdio: one
// command line out, one reply line back ("OK", "OK 0x...", "FAIL ..."), with
// asynchronous "IRQ raise N" / "IRQ lower N" lines skipped (and counted).
// The same client drives QEMU and `virtio-emu qtest`, so the two peers are
// measured through identical code.
import type { ChildProcessWithoutNullStreams } from 'node:child_process';

/** Keep this much of the child's stderr for error messages. */
const STDERR_KEEP = 4096;
const START_TIMEOUT_MS = 15_000;

type Pending = { resolve: (line: string) => void; reject: (err: Error) => void };

export class QtestClient {
  /** IRQ lines seen (they are not replies). */
  irqLines = 0;
  private buf = '';
  private stderr = '';
  private readonly pending: Pending[] = [];
  private exited: Error | null = null;

  constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly cleanup: () => void = () => {},
  ) {
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => this.onData(d));
    // Always drained: a full stderr pipe would stall the peer.
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      this.stderr = (this.stderr + d).slice(-STDERR_KEEP);
    });
    child.stdin.on('error', () => {});
    child.on('error', (err) => this.fail(err));
    child.on('exit', (code, signal) => this.fail(new Error(`qtest peer exited (${signal ?? code}): ${this.stderr.trim().split('\n').slice(-3).join(' | ')}`)));
  }

  /** Resolve once the peer answers (the first command also waits for it to start). */
  async ready(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`qtest peer did not answer within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    });
    try {
      const r = await Promise.race([this.command('endianness'), timeout]);
      if (!r.startsWith('OK')) throw new Error(`qtest peer: endianness answered '${r}'`);
    } catch (err) {
      this.close();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Send one command line; resolves with its reply line. */
  command(line: string): Promise<string> {
    if (this.exited) return Promise.reject(this.exited);
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.child.stdin.write(`${line}\n`);
    });
  }

  async readl(addr: number): Promise<number> {
    return parseOkValue(await this.command(`readl 0x${addr.toString(16)}`));
  }

  async writel(addr: number, value: number): Promise<void> {
    const r = await this.command(`writel 0x${addr.toString(16)} 0x${(value >>> 0).toString(16)}`);
    if (r !== 'OK') throw new Error(`qtest writel: ${r}`);
  }

  close(): void {
    if (!this.exited) {
      this.child.stdin.end();
      this.child.kill('SIGTERM');
    }
    this.cleanup();
  }

  private onData(d: string): void {
    this.buf += d;
    let i: number;
    while ((i = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 1);
      if (line.startsWith('IRQ ')) {
        this.irqLines++;
        continue;
      }
      const p = this.pending.shift();
      if (p) p.resolve(line);
    }
  }

  private fail(err: Error): void {
    if (this.exited) return;
    this.exited = err;
    for (const p of this.pending.splice(0)) p.reject(err);
  }
}

/** "OK 0x0000000074726976" → 0x74726976. */
export function parseOkValue(reply: string): number {
  const m = /^OK 0x([0-9a-fA-F]+)$/.exec(reply);
  if (!m) throw new Error(`qtest: unexpected reply '${reply}'`);
  return Number.parseInt(m[1]!, 16);
}
