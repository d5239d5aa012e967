// Appends trace records to a file in frames (see records.ts). Records are
// kept in memory and encoded a batch at a time: one msgpackr call and one
// write per batch instead of per register access.
import * as fs from 'node:fs';
import { Packr } from 'msgpackr';
import { FRAME_HEADER, FRAME_MAX, TRACE_MAGIC, type StoredRecord } from './records.js';

/** Records per frame: big enough to amortise encode and write, small enough to lose little on a crash. */
export const DEFAULT_BATCH = 2048;

export class TraceWriter {
  private fd: number | null;
  private pending: StoredRecord[] = [];
  // Records with inline structures: compact, and each frame decodes alone.
  private readonly packr = new Packr({ useRecords: true });
  private written = 0;
  /** Flush what is buffered if the process exits without close(). */
  private readonly onExit = (): void => this.flush();

  constructor(
    readonly path: string,
    private readonly batch = DEFAULT_BATCH,
  ) {
    try {
      this.fd = fs.openSync(path, 'w');
    } catch (err) {
      throw new Error(`cannot write trace ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    fs.writeSync(this.fd, TRACE_MAGIC);
    process.on('exit', this.onExit);
  }

  /** Records accepted so far. */
  get count(): number {
    return this.written + this.pending.length;
  }

  get closed(): boolean {
    return this.fd === null;
  }

  push(r: StoredRecord): void {
    if (this.fd === null) return;
    if (this.pending.push(r) >= this.batch) this.flush();
  }

  /** Encode and append what is buffered. */
  flush(): void {
    if (this.fd === null || this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.writeFrames(batch);
    this.written += batch.length;
  }

  /** One frame, or several if the batch encodes to more than a reader takes (FRAME_MAX). */
  private writeFrames(batch: StoredRecord[]): void {
    const payload = this.packr.pack(batch);
    if (payload.length > FRAME_MAX && batch.length > 1) {
      const half = batch.length >> 1;
      this.writeFrames(batch.slice(0, half));
      this.writeFrames(batch.slice(half));
      return;
    }
    if (payload.length > FRAME_MAX) throw new Error(`trace: one record encodes to ${payload.length} bytes, more than a frame holds (${FRAME_MAX})`);
    const frame = Buffer.allocUnsafe(FRAME_HEADER + payload.length);
    frame.writeUInt32LE(payload.length, 0);
    payload.copy(frame, FRAME_HEADER);
    fs.writeSync(this.fd!, frame);
  }

  close(): void {
    if (this.fd === null) return;
    this.flush();
    process.off('exit', this.onExit);
    fs.closeSync(this.fd);
    this.fd = null;
  }
}
