// virtio_ccw's ccw_io_helper(): start a channel program, then sleep until
// the subchannel's I/O interrupt reports its end. Linux's wait_event() has
// no timeout; a model must not hang, so the wait here is bounded:
// - the line is masked (device interrupts are off, as in the PM noirq
//   phases): nothing can deliver the interrupt, the operation throws
//   CcwDeadlockError. The status stays latched; once the line is unmasked
//   the handler takes it and the subchannel is idle again;
// - the line is enabled but no interrupt came: as cio's I/O timeout does,
//   the driver's handler gets an error IRB (ERR_PTR(-ETIMEDOUT)) and the
//   operation fails with -ETIMEDOUT.
import { kernel, devErr, devWarn, type LogTarget } from '../../core/kernel.js';
import {
  VIRTIO_CCW_DOING_READ_CONFIG,
  VIRTIO_CCW_DOING_READ_FEAT,
  VIRTIO_CCW_DOING_READ_STATUS,
  VIRTIO_CCW_DOING_READ_VQ_CONF,
  VIRTIO_CCW_DOING_RESET,
  VIRTIO_CCW_DOING_SET_CONF_IND,
  VIRTIO_CCW_DOING_SET_IND,
  VIRTIO_CCW_DOING_SET_IND_ADAPTER,
  VIRTIO_CCW_DOING_SET_VIRTIO_REV,
  VIRTIO_CCW_DOING_SET_VQ,
  VIRTIO_CCW_DOING_WRITE_CONFIG,
  VIRTIO_CCW_DOING_WRITE_FEAT,
  VIRTIO_CCW_DOING_WRITE_STATUS,
  VIRTIO_CCW_INTPARM_MASK,
} from '../../core/uapi/ccw.js';
import { EBUSY, ETIMEDOUT } from '../../core/uapi/errno.js';
import type { CcwDevice } from './cio.js';

/** Tunables of the model (not of Linux). */
export const ccwOptions = {
  /** How long ccw_io_helper waits for the I/O interrupt before giving up (ms). */
  ioTimeoutMs: 1000,
  /** One blocking step of the wait (ms). */
  waitSliceMs: 20,
};

/** What ccw_io_helper needs of the virtio_ccw_device. */
export interface CcwIoState extends LogTarget {
  readonly cdev: CcwDevice;
  /** vcdev->curr_io: in-flight flags. */
  currIo: number;
  /** vcdev->err: the error the interrupt handler recorded. */
  err: number;
  /** Per-device override of ccwOptions.ioTimeoutMs. */
  ioTimeoutMs: number | null;
}

export type CcwDeadlockCode = 'EMU_CCW_IRQ_DEADLOCK';

/**
 * A ccw operation waited for an I/O interrupt on a masked line. Linux would
 * hang here forever (the reason the transport is not noirq_safe).
 */
export class CcwDeadlockError extends Error {
  readonly code: CcwDeadlockCode = 'EMU_CCW_IRQ_DEADLOCK';

  constructor(
    /** The channel command, e.g. 'VDEV_RESET'. */
    readonly op: string,
    /** The ccw device, e.g. '0.0.0003'. */
    readonly device: string,
    readonly line: number,
    readonly waitedMs: number,
  ) {
    super(
      `virtio-ccw: ${op} would deadlock waiting for an I/O interrupt with device interrupts masked ` +
        `(${device}, line ${line} masked; gave up after ${Math.round(waitedMs)} ms)`,
    );
    this.name = 'CcwDeadlockError';
  }
}

const OPS: [number, string][] = [
  [VIRTIO_CCW_DOING_SET_VQ, 'SET_VQ'],
  [VIRTIO_CCW_DOING_RESET, 'VDEV_RESET'],
  [VIRTIO_CCW_DOING_READ_FEAT, 'READ_FEAT'],
  [VIRTIO_CCW_DOING_WRITE_FEAT, 'WRITE_FEAT'],
  [VIRTIO_CCW_DOING_READ_CONFIG, 'READ_CONF'],
  [VIRTIO_CCW_DOING_WRITE_CONFIG, 'WRITE_CONF'],
  [VIRTIO_CCW_DOING_WRITE_STATUS, 'WRITE_STATUS'],
  [VIRTIO_CCW_DOING_SET_IND, 'SET_IND'],
  [VIRTIO_CCW_DOING_READ_VQ_CONF, 'READ_VQ_CONF'],
  [VIRTIO_CCW_DOING_SET_CONF_IND, 'SET_CONF_IND'],
  [VIRTIO_CCW_DOING_SET_IND_ADAPTER, 'SET_IND_ADAPTER'],
  [VIRTIO_CCW_DOING_SET_VIRTIO_REV, 'SET_VIRTIO_REV'],
  [VIRTIO_CCW_DOING_READ_STATUS, 'READ_STATUS'],
];

/** The channel command an in-flight flag stands for. */
export function ccwOpName(intparm: number): string {
  const flag = (intparm & VIRTIO_CCW_INTPARM_MASK) >>> 0;
  return OPS.find(([f]) => f === flag)?.[1] ?? `intparm 0x${(intparm >>> 0).toString(16)}`;
}

/** doing_io(): still in flight, unless the handler recorded an error. */
function doingIo(vcdev: CcwIoState, flag: number): number {
  if (vcdev.err) return 0;
  return vcdev.currIo & flag;
}

/**
 * ccw_io_helper(vcdev, ccw, intparm): 0, the start error, or the error the
 * interrupt handler recorded (-EOPNOTSUPP command reject, -EIO, -ETIMEDOUT).
 * Throws CcwDeadlockError when the interrupt cannot arrive.
 */
export function ccwIoHelper(vcdev: CcwIoState, ccw: number, intparm: number): number {
  const cdev = vcdev.cdev;
  const irq = cdev.io.irq;
  const flag = (intparm & VIRTIO_CCW_INTPARM_MASK) >>> 0;
  const timeoutMs = vcdev.ioTimeoutMs ?? ccwOptions.ioTimeoutMs;
  const start = performance.now();
  const deadline = start + timeoutMs;

  // mutex_lock(&vcdev->io_lock) and wait_event() sleep.
  kernel.checkSleepable(vcdev, 'wait_event', 'ccw_io_helper');

  const giveUp = (): never => {
    const op = ccwOpName(intparm);
    const err = new CcwDeadlockError(op, cdev.name, cdev.line, performance.now() - start);
    devErr(cdev, err.message);
    throw err;
  };

  let ret: number;
  for (;;) {
    ret = cdev.start(ccw, intparm);
    if (!ret) {
      if (!vcdev.currIo) vcdev.err = 0;
      vcdev.currIo = (vcdev.currIo | flag) >>> 0;
    }
    if (ret !== -EBUSY) break;
    // cpu_relax() with interrupts enabled: the handler takes the status
    // that keeps the subchannel busy, then the start is retried.
    const left = deadline - performance.now();
    if (left <= 0) {
      if (irq.isMasked(cdev.line)) giveUp();
      devWarn(cdev, `${ccwOpName(intparm)}: subchannel still busy after ${timeoutMs} ms`);
      return ret;
    }
    irq.waitAndDeliver(Math.min(ccwOptions.waitSliceMs, left));
  }
  if (ret) return ret;

  // wait_event(vcdev->wait_q, doing_io(vcdev, flag) == 0)
  while (doingIo(vcdev, flag)) {
    // Interrupts that are already pending run first.
    if (irq.deliverPending() && !doingIo(vcdev, flag)) break;
    const left = deadline - performance.now();
    if (left <= 0) {
      if (irq.isMasked(cdev.line)) {
        // Abandon the wait; the late interrupt then matches nothing in flight.
        vcdev.currIo = (vcdev.currIo & ~flag) >>> 0;
        giveUp();
      }
      devWarn(cdev, `${ccwOpName(intparm)}: no I/O interrupt within ${timeoutMs} ms`);
      if (cdev.handler) {
        cdev.handler(cdev, cdev.intparm, -ETIMEDOUT);
      } else {
        vcdev.err = -ETIMEDOUT;
        vcdev.currIo = (vcdev.currIo & ~flag) >>> 0;
      }
      break;
    }
    irq.waitAndDeliver(Math.min(ccwOptions.waitSliceMs, left));
  }
  return ret ? ret : vcdev.err;
}
