// The virtio-ccw transport (Linux drivers/s390/virtio/virtio_ccw.c), over
// this board's channel subsystem:
// - ccw-cio.ts: the common I/O layer it relies on (ccw_device, SSCH, TSCH,
//   the I/O interrupt);
// - ccw-io.ts: ccw_io_helper, the bounded wait for the I/O interrupt, and
//   CcwDeadlockError;
// - ccw-device.ts: struct virtio_ccw_device and virtio_ccw_config_ops
//   (noirq_safe = false, no reset_vqs), revision negotiation, the
//   interrupt handler;
// - ccw-probe.ts: probe/online/remove and a scan of the subchannels;
// - ccw-pm.ts: freeze/restore as virtio_ccw once had them, no noirq pair.
export * from './cio.js';
export * from './io.js';
export * from './device.js';
export * from './probe.js';
export * from './pm.js';
