// Device requests over the raw test driver: lay out a descriptor chain in
// guest RAM with plain stores, make it available, kick, run the board's
// deferred work and read the used element back. Device-specific helpers
// build virtio-blk and virtio-rtc messages byte by byte from the spec layout.
import { VRING_DESC_F_NEXT, VRING_DESC_F_WRITE } from '../../core/uapi/ring.js';
import { ramBytes, type RawDriver, type RawRing, type TestBoard } from './raw-driver.js';

/** One buffer of a chain: device-readable with `data`, or device-writable of `len` bytes. */
export type BufSpec = { data: Uint8Array } | { len: number; fill?: number };

export interface PostedChain {
  head: number;
  bufs: { addr: number; len: number }[];
}

/** Next free descriptor per ring; tests post few chains, so indices simply wrap. */
const nextDesc = new WeakMap<RawRing, number>();

/** Run deferred device work until none is left (bounded, so a bug cannot hang a test). */
export function runDevice(tb: TestBoard): void {
  for (let i = 0; i < 10_000 && tb.board.hasDeferred(); i++) tb.board.runDeferred(64);
}

/** Post one chain on queue q (readable buffers must come first); kick and run the device unless kick is false. */
export function postChain(drv: RawDriver, ring: RawRing, q: number, bufs: BufSpec[], kick = true): PostedChain {
  const tb = drv.tb;
  const first = nextDesc.get(ring) ?? 0;
  const posted: PostedChain = { head: first, bufs: [] };
  bufs.forEach((b, i) => {
    const len = 'data' in b ? b.data.length : b.len;
    const addr = tb.alloc.take(Math.max(len, 1), 8);
    if ('data' in b) ramBytes(tb, addr, len).set(b.data);
    else ramBytes(tb, addr, len).fill(b.fill ?? 0xee);
    const index = (first + i) % ring.num;
    const last = i === bufs.length - 1;
    ring.writeDesc(index, addr, len, ('data' in b ? 0 : VRING_DESC_F_WRITE) | (last ? 0 : VRING_DESC_F_NEXT), (index + 1) % ring.num);
    posted.bufs.push({ addr, len });
  });
  nextDesc.set(ring, (first + bufs.length) % ring.num);
  ring.addAvail(posted.head);
  if (kick) {
    drv.notify(q);
    runDevice(tb);
  }
  return posted;
}

/** Bytes of a posted buffer as guest RAM holds them now. */
export function bufBytes(tb: TestBoard, chain: PostedChain, i: number): Uint8Array {
  const b = chain.bufs[i]!;
  return ramBytes(tb, b.addr, b.len).slice();
}

/** The used element at used-ring index `idx`, or null if the device has not put it yet. */
export function usedAt(ring: RawRing, idx: number): { id: number; len: number } | null {
  return ((ring.usedIdx() - idx) & 0xffff) > 0 ? ring.usedElem(idx) : null;
}

// ---- virtio-blk ----

export interface BlkResult {
  status: number;
  usedLen: number;
  /** The device-writable data buffer after completion (IN, GET_ID). */
  data: Uint8Array;
}

export interface BlkRequestSpec {
  type: number;
  sector?: bigint;
  /** OUT payload (device-readable). */
  out?: Uint8Array;
  /** Length of the device-writable data buffer (IN, GET_ID). */
  inLen?: number;
  /** Header bytes to send instead of the 16-byte struct (bad-header tests). */
  rawHeader?: Uint8Array;
  /** Leave out the status byte (malformed request). */
  noStatus?: boolean;
}

export function blkHeader(type: number, sector = 0n): Uint8Array {
  const h = new Uint8Array(16);
  const v = new DataView(h.buffer);
  v.setUint32(0, type, true);
  v.setBigUint64(8, sector, true);
  return h;
}

/** One virtio-blk request on requestq 0; throws if the device did not complete it. */
export function blkRequest(drv: RawDriver, ring: RawRing, spec: BlkRequestSpec): BlkResult {
  const bufs: BufSpec[] = [{ data: spec.rawHeader ?? blkHeader(spec.type, spec.sector ?? 0n) }];
  if (spec.out && spec.out.length > 0) bufs.push({ data: spec.out });
  const dataIndex = bufs.length;
  if (spec.inLen) bufs.push({ len: spec.inLen });
  if (!spec.noStatus) bufs.push({ len: 1, fill: 0xff });
  const before = ring.usedIdx();
  const chain = postChain(drv, ring, 0, bufs);
  const used = usedAt(ring, before);
  if (!used) throw new Error('blk request was not completed');
  if (used.id !== chain.head) throw new Error(`used id ${used.id}, expected head ${chain.head}`);
  return {
    status: spec.noStatus ? -1 : bufBytes(drv.tb, chain, bufs.length - 1)[0]!,
    usedLen: used.len,
    data: spec.inLen ? bufBytes(drv.tb, chain, dataIndex) : new Uint8Array(0),
  };
}

// ---- virtio-rtc ----

export function rtcMessage(msgType: number, fields: { clockId?: number; hwCounter?: number; size?: number } = {}): Uint8Array {
  const m = new Uint8Array(fields.size ?? 16);
  const v = new DataView(m.buffer);
  v.setUint16(0, msgType, true);
  if (fields.clockId !== undefined) v.setUint16(8, fields.clockId, true);
  if (fields.hwCounter !== undefined) v.setUint8(10, fields.hwCounter);
  return m;
}

export interface RtcResult {
  usedLen: number;
  resp: DataView;
  status: number;
}

/** One virtio-rtc request on requestq 0 with a response buffer of respLen bytes. */
export function rtcRequest(drv: RawDriver, ring: RawRing, req: Uint8Array, respLen = 24): RtcResult {
  const before = ring.usedIdx();
  const chain = postChain(drv, ring, 0, [{ data: req }, { len: respLen, fill: 0xee }]);
  const used = usedAt(ring, before);
  if (!used || used.id !== chain.head) throw new Error('rtc request was not completed');
  const resp = bufBytes(drv.tb, chain, 1);
  return { usedLen: used.len, resp: new DataView(resp.buffer), status: resp[0]! };
}
