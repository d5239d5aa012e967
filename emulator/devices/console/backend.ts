// The host side of a virtio-console port, like a QEMU chardev: where
// transmitted bytes go and where input waits until the driver posts receive
// buffers. It is not device state: a device reset or a fresh device instance
// (power 'fresh') keeps pending input and the open output file.
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { bool, bytes, count, record } from '../../snapshot/fields.js';

/** Input held for the guest at most; bytes beyond are dropped (and counted). */
export const CONSOLE_MAX_PENDING_INPUT = 1024 * 1024;

export type ConsoleOutput = { kind: 'stdout' } | { kind: 'none' } | { kind: 'file'; path: string };

export interface BackendState {
  /** Input the guest has not read yet. */
  input: Uint8Array;
  inFileRead: boolean;
  transmitted: number;
  inputDropped: number;
  outputErrors: number;
}

export function checkBackendState(raw: unknown, path: string): BackendState {
  const r = record(raw, path, ['input', 'inFileRead', 'transmitted', 'inputDropped', 'outputErrors']);
  bytes(r['input'], `${path}.input`, CONSOLE_MAX_PENDING_INPUT);
  bool(r['inFileRead'], `${path}.inFileRead`);
  for (const k of ['transmitted', 'inputDropped', 'outputErrors']) count(r[k], `${path}.${k}`);
  return r as unknown as BackendState;
}

// An output file dropped without close() must not keep its descriptor.
const fdCloser = new FinalizationRegistry<number>((fd) => {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
});

export class ConsoleBackend {
  /** Bytes the guest transmitted (including those a 'none' sink discards). */
  transmitted = 0;
  /** Input bytes refused because CONSOLE_MAX_PENDING_INPUT was reached. */
  inputDropped = 0;
  /** Output bytes the host sink failed to take. */
  outputErrors = 0;
  private fd: number;
  private readonly pending: Uint8Array[] = [];
  /** Bytes of pending[0] already delivered. */
  private headOffset = 0;
  private pendingBytes = 0;
  private inFileRead = false;

  constructor(
    readonly output: ConsoleOutput,
    /** Read once, at the first activation, and queued as input. */
    readonly inFile: string | undefined,
  ) {
    this.fd = output.kind === 'stdout' ? 1 : output.kind === 'file' ? openSync(output.path, 'a') : -1;
    if (output.kind === 'file') fdCloser.register(this, this.fd, this);
  }

  /** Send transmitted bytes to the sink (synchronously: the worker never returns to its event loop). */
  transmit(bytes: Uint8Array): void {
    this.transmitted += bytes.length;
    if (this.fd < 0) return;
    try {
      for (let pos = 0; pos < bytes.length; ) pos += writeSync(this.fd, bytes, pos, bytes.length - pos);
    } catch {
      this.outputErrors += bytes.length;
    }
  }

  /** Queue input for the guest; returns the bytes accepted. */
  queueInput(bytes: Uint8Array): number {
    const take = Math.min(bytes.length, CONSOLE_MAX_PENDING_INPUT - this.pendingBytes);
    this.inputDropped += bytes.length - take;
    if (take > 0) {
      this.pending.push(bytes.slice(0, take));
      this.pendingBytes += take;
    }
    return take;
  }

  /**
   * The in= file's contents, queued the first time the device is activated.
   * At most CONSOLE_MAX_PENDING_INPUT bytes are read (a huge file, or
   * /dev/zero, costs no more); an unreadable file queues nothing.
   */
  readInFileOnce(): void {
    if (this.inFileRead || this.inFile === undefined) return;
    this.inFileRead = true;
    let fd = -1;
    try {
      fd = openSync(this.inFile, 'r');
      const buf = new Uint8Array(CONSOLE_MAX_PENDING_INPUT - this.pendingBytes);
      let n = 0;
      while (n < buf.length) {
        const got = readSync(fd, buf, n, buf.length - n, null);
        if (got === 0) break;
        n += got;
      }
      this.queueInput(buf.subarray(0, n));
    } catch {
      // The file went away after the options were checked: no input.
    } finally {
      if (fd >= 0) closeSync(fd);
    }
  }

  get pendingInput(): number {
    return this.pendingBytes;
  }

  /** The oldest pending bytes, at most max of them, without consuming them. */
  peekInput(max: number): Uint8Array {
    const head = this.pending[0];
    if (!head) return new Uint8Array(0);
    return head.subarray(this.headOffset, Math.min(head.length, this.headOffset + max));
  }

  /** Forget the first n pending bytes (n ≤ what peekInput returned). */
  consumeInput(n: number): void {
    const head = this.pending[0];
    if (!head || n <= 0) return;
    this.headOffset += n;
    this.pendingBytes -= n;
    if (this.headOffset >= head.length) {
      this.pending.shift();
      this.headOffset = 0;
    }
  }

  /** The port's host-side state for a snapshot: pending input (at most CONSOLE_MAX_PENDING_INPUT bytes) and the counters. */
  saveState(): BackendState {
    const input = new Uint8Array(this.pendingBytes);
    let at = 0;
    this.pending.forEach((b, i) => {
      const part = i === 0 ? b.subarray(this.headOffset) : b;
      input.set(part, at);
      at += part.length;
    });
    return { input, inFileRead: this.inFileRead, transmitted: this.transmitted, inputDropped: this.inputDropped, outputErrors: this.outputErrors };
  }

  /** Load a state checkBackendState accepted: the pending input is replaced. */
  loadState(s: BackendState): void {
    this.pending.length = 0;
    this.headOffset = 0;
    this.pendingBytes = 0;
    if (s.input.length) this.queueInput(s.input);
    this.inFileRead = s.inFileRead;
    this.transmitted = s.transmitted;
    this.inputDropped = s.inputDropped;
    this.outputErrors = s.outputErrors;
  }

  close(): void {
    if (this.output.kind !== 'file' || this.fd < 0) return;
    fdCloser.unregister(this);
    closeSync(this.fd);
    this.fd = -1;
  }
}
