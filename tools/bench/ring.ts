// The raw ring anchor (sab.ring): the fastest single-producer/single-consumer
// rings between the main thread and a worker over one SharedArrayBuffer, in
// the shape of a virtqueue with nothing to validate: the main thread writes
// 16-byte request entries into a request ring and publishes its tail in
// batches; the worker consumes them, writes a 16-byte completion entry for
// each into a completion ring and publishes that ring's tail in batches; the
// main thread consumes completions, which frees request slots (at most RING
// entries in flight, so neither ring overruns). Payload words are plain
// stores; only the two tails are Atomics, as avail idx and used idx are.
// This is the limit any virtqueue data path between these two threads can
// reach: ring.rng.eventidx_on is reported against it.

/** Entries per ring (the rng ring's size in ring.rng.*). */
export const RING = 1024;
/** Words per entry: 16 bytes. */
export const ENTRY_WORDS = 4;
/** Entries per publication of a tail (an eighth of the ring, as the rng pipeline refills). */
export const RING_BATCH = 128;

/** Control words, one 64-byte line per writer. */
export const RW = {
  /** Main: request entries published (free-running). */
  REQ_TAIL: 0,
  /** Worker: completion entries published (free-running). */
  CMP_TAIL: 16,
  WORKER_SLEEPING: 32,
  CLOSED: 33,
  READY: 34,
  /** Worker: request entries whose sequence word was not the expected one. */
  ERRORS: 48,
  /** First word of the request ring; the completion ring follows it. */
  RINGS: 64,
} as const;

export const REQ_RING = RW.RINGS;
export const CMP_RING = RW.RINGS + RING * ENTRY_WORDS;
export const RING_WORDS = CMP_RING + RING * ENTRY_WORDS;

export function createRingBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(RING_WORDS * 4);
}
