// virtio-rtc (spec "RTC Device", device ID 17 = Linux VIRTIO_ID_CLOCK):
// requestq 0 only (VIRTIO_RTC_F_ALARM is not offered), no config space, one
// clock: id 0, type UTC, read from the host's wall clock plus the `offset`
// option.
//
// Each request is a device-readable message (struct virtio_rtc_req_head
// first) and a device-writable response (struct virtio_rtc_resp_head first).
// Statuses follow the spec's device requirements, checked in this order:
//   no device-writable byte       → nothing written, used len 0 ("MUST NOT
//                                    set status" when it does not fit)
//   msg_type unreadable           → EINVAL
//   msg_type unknown (alarm ones
//   included: not negotiated)     → EOPNOTSUPP
//   request or response too small → EINVAL
//   reserved request bytes ≠ 0    → EINVAL (values the spec does not allow)
//   clock_id ≥ num_clocks         → ENODEV
//   hw_counter unknown            → EOPNOTSUPP
//   READ_CROSS                    → EOPNOTSUPP (no hardware counter to read)
//   reading out of le64 range     → EIO
// The response is written up to its size (or what fits, on error) and the
// used len is the bytes written. Malformed requests never throw.
import { VIRTIO_ID_CLOCK } from '../../core/uapi/ids.js';
import {
  VIRTIO_RTC_CLOCK_UTC,
  VIRTIO_RTC_COUNTER_ARM_VCT,
  VIRTIO_RTC_COUNTER_X86_TSC,
  VIRTIO_RTC_MSG_SIZES,
  VIRTIO_RTC_REQ,
  VIRTIO_RTC_REQ_CFG,
  VIRTIO_RTC_REQ_CLOCK_CAP,
  VIRTIO_RTC_REQ_CROSS_CAP,
  VIRTIO_RTC_REQ_HEAD_SIZE,
  VIRTIO_RTC_REQ_READ,
  VIRTIO_RTC_REQ_READ_CROSS,
  VIRTIO_RTC_RESP,
  VIRTIO_RTC_RESP_HEAD_SIZE,
  VIRTIO_RTC_S_EINVAL,
  VIRTIO_RTC_S_EIO,
  VIRTIO_RTC_S_ENODEV,
  VIRTIO_RTC_S_EOPNOTSUPP,
  VIRTIO_RTC_S_OK,
  VIRTIO_RTC_SMEAR_UNSPECIFIED,
} from '../../core/uapi/rtc.js';
import type { DeviceOptionValue } from '../board-contract.js';
import { fail, record, shown, str } from '../snapshot/fields.js';
import { hostUtcNs } from '../virtio/clock.js';
import { RING_FEATURES, serveQueue, type Chain, type DeviceContext, type DeviceHost, type DeviceModel, type DeviceOptions } from './device.js';

export const RTC_DEFAULT_QUEUE_SIZE = 64;
/** The largest request and response this device understands. */
const MAX_MSG = 24;
const U64_LIMIT = 1n << 64n;


interface RtcClock {
  readonly type: number;
  read(): bigint;
}

export interface RtcOptions {
  /** Added to every reading of clock 0, in ns (may be negative). */
  offsetNs: bigint;
  queueSize: number;
  /** Reference clock (tests may substitute one); default the board's virtual clock's UTC (DeviceHost.clock), else hostUtcNs. */
  now?: () => bigint;
}

export class RtcDevice implements DeviceModel {
  readonly deviceId = VIRTIO_ID_CLOCK;
  readonly name = 'rtc';
  readonly features = RING_FEATURES;
  readonly queueNumMax: readonly number[];
  /** "None currently defined." */
  readonly configSize = 0;
  /** The set of clocks never changes, not even across resets (spec: like negotiated features). */
  private readonly clocks: readonly RtcClock[];
  private readonly req = new Uint8Array(MAX_MSG);
  private readonly reqView = new DataView(this.req.buffer);
  private readonly resp = new Uint8Array(MAX_MSG);
  private readonly respView = new DataView(this.resp.buffer);

  /** Added to the reference clock's readings (the offset option, or what a snapshot carried). */
  offsetNs: bigint;

  constructor(opts: RtcOptions) {
    this.queueNumMax = [opts.queueSize];
    this.offsetNs = opts.offsetNs;
    const now = opts.now ?? hostUtcNs;
    this.clocks = [{ type: VIRTIO_RTC_CLOCK_UTC, read: () => now() + this.offsetNs }];
  }

  // ---- snapshot: the clock's offset from the host's UTC, as a decimal string of ns ----

  saveState(): unknown {
    return { offsetNs: this.offsetNs.toString() };
  }

  checkState(state: unknown, path: string): void {
    const v = str(record(state, path, ['offsetNs'])['offsetNs'], `${path}.offsetNs`, 20);
    if (!/^-?\d{1,19}$/.test(v) || BigInt(v) < -(1n << 63n) || BigInt(v) >= 1n << 63n) fail(`${path}.offsetNs`, `${shown(v)} is not a signed 64-bit count of ns`);
  }

  loadState(state: unknown): void {
    this.offsetNs = BigInt((state as { offsetNs: string }).offsetNs);
  }

  handleQueue(ctx: DeviceContext, queue: number): void {
    serveQueue(ctx, queue, this.execute);
  }

  /** Serve one request; returns the used length. */
  private readonly execute = (chain: Chain): number => {
    if (chain.writableBytes === 0) return 0;
    this.req.fill(0);
    this.resp.fill(0);
    chain.read(this.req);
    const { status, len } = this.respond(chain.readableBytes, chain.writableBytes);
    this.resp[VIRTIO_RTC_RESP.status] = status;
    return chain.write(this.resp.subarray(0, Math.min(len, chain.writableBytes)), 0);
  };

  /** Fill this.resp (beyond the status) from this.req; returns the status and the response size. */
  private respond(readable: number, writable: number): { status: number; len: number } {
    const head = VIRTIO_RTC_RESP_HEAD_SIZE;
    if (readable < 2) return { status: VIRTIO_RTC_S_EINVAL, len: head };
    const r = this.reqView;
    const type = r.getUint16(VIRTIO_RTC_REQ.msg_type, true);
    const sizes = VIRTIO_RTC_MSG_SIZES.get(type);
    if (!sizes) return { status: VIRTIO_RTC_S_EOPNOTSUPP, len: head };
    const answer = (status: number) => ({ status, len: sizes.resp });
    if (readable < sizes.req || writable < sizes.resp) return answer(VIRTIO_RTC_S_EINVAL);
    // Reserved bytes: the head's six, then whatever follows this message's fields.
    const fieldsEnd =
      type === VIRTIO_RTC_REQ_CFG
        ? VIRTIO_RTC_REQ_HEAD_SIZE
        : type === VIRTIO_RTC_REQ_CROSS_CAP || type === VIRTIO_RTC_REQ_READ_CROSS
          ? VIRTIO_RTC_REQ.hw_counter + 1
          : VIRTIO_RTC_REQ.clock_id + 2;
    if (!zero(this.req, 2, VIRTIO_RTC_REQ_HEAD_SIZE) || !zero(this.req, fieldsEnd, sizes.req)) return answer(VIRTIO_RTC_S_EINVAL);

    const w = this.respView;
    if (type === VIRTIO_RTC_REQ_CFG) {
      w.setUint16(VIRTIO_RTC_RESP.num_clocks, this.clocks.length, true);
      return answer(VIRTIO_RTC_S_OK);
    }
    const clock = this.clocks[r.getUint16(VIRTIO_RTC_REQ.clock_id, true)];
    if (!clock) return answer(VIRTIO_RTC_S_ENODEV);
    switch (type) {
      case VIRTIO_RTC_REQ_READ: {
        const reading = clock.read();
        if (reading < 0n || reading >= U64_LIMIT) return answer(VIRTIO_RTC_S_EIO);
        w.setBigUint64(VIRTIO_RTC_RESP.clock_reading, reading, true);
        return answer(VIRTIO_RTC_S_OK);
      }
      case VIRTIO_RTC_REQ_CLOCK_CAP:
        w.setUint8(VIRTIO_RTC_RESP.type, clock.type);
        w.setUint8(VIRTIO_RTC_RESP.leap_second_smearing, VIRTIO_RTC_SMEAR_UNSPECIFIED);
        return answer(VIRTIO_RTC_S_OK);
      case VIRTIO_RTC_REQ_CROSS_CAP:
      case VIRTIO_RTC_REQ_READ_CROSS: {
        const counter = r.getUint8(VIRTIO_RTC_REQ.hw_counter);
        if (counter !== VIRTIO_RTC_COUNTER_ARM_VCT && counter !== VIRTIO_RTC_COUNTER_X86_TSC) return answer(VIRTIO_RTC_S_EOPNOTSUPP);
        // CROSS_CAP answers "no" (flags 0), consistent with READ_CROSS failing.
        return answer(type === VIRTIO_RTC_REQ_CROSS_CAP ? VIRTIO_RTC_S_OK : VIRTIO_RTC_S_EOPNOTSUPP);
      }
      default:
        return answer(VIRTIO_RTC_S_EOPNOTSUPP);
    }
  }
}

function zero(bytes: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (bytes[i] !== 0) return false;
  return true;
}

const UNIT_DIGITS: Record<string, number> = { ns: 0, us: 3, ms: 6, s: 9 };

/** offset: a number of seconds, or a string "<decimal>[ns|us|ms|s]" (seconds without a unit). */
export function parseOffsetNs(v: DeviceOptionValue | undefined): bigint {
  if (v === undefined) return 0n;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error('rtc: option offset must be finite');
    return Number.isInteger(v) ? BigInt(v) * 1_000_000_000n : BigInt(Math.round(v * 1e9));
  }
  const m = typeof v === 'string' ? /^\s*([+-]?)(\d+)(?:\.(\d+))?\s*(ns|us|ms|s)?\s*$/.exec(v) : null;
  if (!m) throw new Error(`rtc: option offset '${String(v)}' is not a duration (e.g. 3600, "-1.5s", "250ms", "123ns")`);
  const digits = UNIT_DIGITS[m[4] ?? 's']!;
  const frac = m[3] ?? '';
  if (frac.length > digits) throw new Error(`rtc: option offset '${v}' is finer than 1 ns`);
  const ns = BigInt(m[2]!) * 10n ** BigInt(digits) + BigInt(frac.padEnd(digits, '0') || '0');
  return m[1] === '-' ? -ns : ns;
}

export function createRtc(options: DeviceOptions, host?: DeviceHost): RtcDevice {
  const known = new Set(['offset', 'queueSize']);
  for (const k of Object.keys(options)) if (!known.has(k)) throw new Error(`rtc: unknown option '${k}' (known: ${[...known].join(', ')})`);
  const queueSize = options['queueSize'] ?? RTC_DEFAULT_QUEUE_SIZE;
  if (typeof queueSize !== 'number' || !Number.isInteger(queueSize) || queueSize <= 0) throw new Error('rtc: option queueSize must be a positive integer');
  const clock = host?.clock;
  return new RtcDevice({ offsetNs: parseOffsetNs(options['offset']), queueSize, ...(clock ? { now: () => clock.utcNs() } : {}) });
}
