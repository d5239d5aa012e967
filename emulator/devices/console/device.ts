// virtio-console (spec 5.3), port 0 only (no VIRTIO_CONSOLE_F_MULTIPORT):
// receiveq 0 carries host input to the guest, transmitq 1 guest output to
// the host. VIRTIO_CONSOLE_F_SIZE is offered: cols/rows are static config
// (options cols, rows) that the 'resize' event changes.
//
// Input is held by the backend until the driver posts receive buffers and is
// delivered in order whenever both exist: on a receiveq notification, on
// activation and on every 'input' event. A receive buffer is only popped when
// there is input for it, since a popped buffer cannot be handed back.
//
// Events (board control 'inject'):
//   input  {data: string}            queue UTF-8 bytes for the guest
//   resize {cols: number, rows: number}  new size + config change notification
import { accessSync, constants } from 'node:fs';
import {
  VIRTIO_CONSOLE_CONFIG,
  VIRTIO_CONSOLE_CONFIG_SIZE,
  VIRTIO_CONSOLE_F_SIZE,
  VIRTIO_CONSOLE_RECEIVEQ,
  VIRTIO_CONSOLE_TRANSMITQ,
} from '../../../core/uapi/console.js';
import { bit } from '../../../core/uapi/features.js';
import { VIRTIO_ID_CONSOLE } from '../../../core/uapi/ids.js';
import type { DeviceOptionValue } from '../../board-contract.js';
import { ConsoleBackend, checkBackendState, type BackendState, type ConsoleOutput } from './backend.js';
import { count, int, record } from '../../snapshot/fields.js';
import { RING_FEATURES, type Chain, type ConfigWidth, type DeviceContext, type DeviceHost, type DeviceModel, type DeviceOptions } from '../device.js';

export const CONSOLE_DEFAULT_QUEUE_SIZE = 256;
/** Bytes taken from one transmit buffer at most; the rest is dropped (BI-09). */
export const CONSOLE_MAX_TRANSMIT = 64 * 1024;
const TRANSMIT_CHUNK = 4096;
const utf8 = new TextEncoder();

export interface ConsoleOptions {
  cols: number;
  rows: number;
  queueSize: number;
}

export class ConsoleDevice implements DeviceModel {
  readonly deviceId = VIRTIO_ID_CONSOLE;
  readonly name = 'console';
  readonly features =
    RING_FEATURES | bit(VIRTIO_CONSOLE_F_SIZE);
  readonly queueNumMax: readonly number[];
  readonly configSize = VIRTIO_CONSOLE_CONFIG_SIZE;
  /** Transmit bytes beyond CONSOLE_MAX_TRANSMIT in one buffer, dropped. */
  transmitDropped = 0;
  private readonly config = new DataView(new ArrayBuffer(VIRTIO_CONSOLE_CONFIG_SIZE));
  private readonly chunk = new Uint8Array(TRANSMIT_CHUNK);

  constructor(
    readonly backend: ConsoleBackend,
    opts: ConsoleOptions,
  ) {
    this.queueNumMax = [opts.queueSize, opts.queueSize];
    this.setSize(opts.cols, opts.rows);
    // Meaningful only with MULTIPORT; 1 is what a single-port device has.
    this.config.setUint32(VIRTIO_CONSOLE_CONFIG.max_nr_ports, 1, true);
  }

  private setSize(cols: number, rows: number): void {
    this.config.setUint16(VIRTIO_CONSOLE_CONFIG.cols, cols, true);
    this.config.setUint16(VIRTIO_CONSOLE_CONFIG.rows, rows, true);
  }

  readConfig(offset: number, width: ConfigWidth): number {
    // emerg_wr is write-only (and not offered): it reads 0.
    if (offset >= VIRTIO_CONSOLE_CONFIG.emerg_wr) return 0;
    if (width === 1) return this.config.getUint8(offset);
    if (width === 2) return this.config.getUint16(offset, true);
    return this.config.getUint32(offset, true);
  }

  /** cols/rows/max_nr_ports are read-only; emerg_wr needs VIRTIO_CONSOLE_F_EMERG_WRITE, not offered. */
  writeConfig(_offset: number, _width: ConfigWidth, _value: number): void {}

  /** No chain is held between calls; pending input belongs to the backend and survives. */
  reset(): void {}

  // ---- snapshot: the size in config space, the dropped count and the port's buffers ----

  saveState(): unknown {
    return {
      cols: this.config.getUint16(VIRTIO_CONSOLE_CONFIG.cols, true),
      rows: this.config.getUint16(VIRTIO_CONSOLE_CONFIG.rows, true),
      transmitDropped: this.transmitDropped,
      port: this.backend.saveState(),
    };
  }

  checkState(state: unknown, path: string): void {
    const r = record(state, path, ['cols', 'rows', 'transmitDropped', 'port']);
    int(r['cols'], `${path}.cols`, 0, 0xffff);
    int(r['rows'], `${path}.rows`, 0, 0xffff);
    count(r['transmitDropped'], `${path}.transmitDropped`);
    checkBackendState(r['port'], `${path}.port`);
  }

  loadState(state: unknown): void {
    const s = state as { cols: number; rows: number; transmitDropped: number; port: BackendState };
    this.setSize(s.cols, s.rows);
    this.transmitDropped = s.transmitDropped;
    this.backend.loadState(s.port);
  }

  activate(ctx: DeviceContext): void {
    this.backend.readInFileOnce();
    this.deliver(ctx);
  }

  handleQueue(ctx: DeviceContext, queue: number): void {
    if (queue === VIRTIO_CONSOLE_RECEIVEQ) this.deliver(ctx);
    else if (queue === VIRTIO_CONSOLE_TRANSMITQ) this.transmit(ctx);
  }

  inject(ctx: DeviceContext, event: string, args: Readonly<Record<string, DeviceOptionValue>>): boolean {
    switch (event) {
      case 'input': {
        const data = args['data'];
        if (typeof data !== 'string') return false;
        this.backend.queueInput(utf8.encode(data));
        this.deliver(ctx);
        return true;
      }
      case 'resize': {
        const cols = args['cols'];
        const rows = args['rows'];
        if (!isU16(cols) || !isU16(rows)) return false;
        this.setSize(cols, rows);
        ctx.configChanged();
        return true;
      }
      default:
        return false;
    }
  }

  /** Pending input → receive buffers, in order, while both exist. */
  private deliver(ctx: DeviceContext): void {
    const b = this.backend;
    while (b.pendingInput > 0) {
      const chain = ctx.pop(VIRTIO_CONSOLE_RECEIVEQ);
      if (!chain) return;
      let written = 0;
      while (written < chain.writableBytes && b.pendingInput > 0) {
        const n = chain.write(b.peekInput(chain.writableBytes - written), written);
        if (n === 0) break; // stale chain
        b.consumeInput(n);
        written += n;
      }
      ctx.pushUsed(chain, written);
    }
  }

  private transmit(ctx: DeviceContext): void {
    for (let chain = ctx.pop(VIRTIO_CONSOLE_TRANSMITQ); chain; chain = ctx.pop(VIRTIO_CONSOLE_TRANSMITQ)) {
      this.send(chain);
      ctx.pushUsed(chain, 0);
    }
  }

  private send(chain: Chain): void {
    const len = Math.min(chain.readableBytes, CONSOLE_MAX_TRANSMIT);
    this.transmitDropped += chain.readableBytes - len;
    for (let done = 0; done < len; ) {
      const n = chain.read(this.chunk.subarray(0, Math.min(TRANSMIT_CHUNK, len - done)), done);
      if (n === 0) return;
      this.backend.transmit(this.chunk.subarray(0, n));
      done += n;
    }
  }
}

function isU16(v: DeviceOptionValue | undefined): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffff;
}

function parseOutput(v: DeviceOptionValue | undefined): ConsoleOutput {
  if (v === undefined || v === 'stdout') return { kind: 'stdout' };
  if (v === 'none') return { kind: 'none' };
  if (typeof v !== 'string' || v === '') throw new Error("console: option out must be 'stdout', 'none' or a file path");
  return { kind: 'file', path: v };
}

function u16Option(options: DeviceOptions, name: string, fallback: number): number {
  const v = options[name];
  if (v === undefined) return fallback;
  if (!isU16(v)) throw new Error(`console: option ${name} must be an integer 0..65535`);
  return v;
}

/**
 * Options: out = 'stdout' (default) | 'none' | file path (appended to);
 * in = file path, queued as input at the first activation; cols, rows;
 * queueSize.
 */
export function createConsole(options: DeviceOptions, host?: DeviceHost): ConsoleDevice {
  const known = new Set(['out', 'in', 'cols', 'rows', 'queueSize']);
  for (const k of Object.keys(options)) if (!known.has(k)) throw new Error(`console: unknown option '${k}' (known: ${[...known].join(', ')})`);
  const output = parseOutput(options['out']);
  const inFile = options['in'];
  if (inFile !== undefined) {
    if (typeof inFile !== 'string' || inFile === '') throw new Error('console: option in must be a file path');
    accessSync(inFile, constants.R_OK);
  }
  const queueSize = options['queueSize'] ?? CONSOLE_DEFAULT_QUEUE_SIZE;
  if (typeof queueSize !== 'number' || !Number.isInteger(queueSize) || queueSize <= 0) throw new Error('console: option queueSize must be a positive integer');

  const key = `console.backend:${JSON.stringify(output)}:${inFile ?? ''}`;
  const kept = host?.retained.get(key);
  const backend = kept instanceof ConsoleBackend ? kept : new ConsoleBackend(output, inFile);
  host?.retained.set(key, backend);
  return new ConsoleDevice(backend, { cols: u16Option(options, 'cols', 80), rows: u16Option(options, 'rows', 25), queueSize });
}
