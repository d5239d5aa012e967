// Which ring layout a queue uses is decided when it is enabled, by the
// negotiated VIRTIO_F_RING_PACKED: the queue object then becomes a split or
// a packed queue, keeping the registers the driver programmed.
import { PackedQueue } from './packed-queue.js';
import { copyRegisters, type DeviceQueue, type RingKind } from './queue.js';
import { SplitQueue } from './split-queue.js';

export function createQueue(kind: RingKind, index: number, maxSize: number): DeviceQueue {
  return kind === 'packed' ? new PackedQueue(index, maxSize) : new SplitQueue(index, maxSize);
}

/**
 * q itself if it has the kind, else a queue of that kind with q's registers.
 * Only for a queue that is not ready: its chains are dead already, and the
 * new queue's epoch is past q's so they stay dead.
 */
export function queueOfKind(q: DeviceQueue, kind: RingKind): DeviceQueue {
  if (q.kind === kind) return q;
  const next = createQueue(kind, q.index, q.maxSize);
  copyRegisters(q, next);
  next.epoch = q.epoch + 1;
  return next;
}
