// How a device notifies its driver, done by whatever exposes it: a
// virtio-mmio register file sets InterruptStatus bits and drives a
// level-triggered line; a virtio-ccw proxy sets indicator bits and raises an
// I/O interrupt. And the per-device counters the board reports.
export interface DriverNotifier {
  /** Used-buffer notification for `queue` (after suppression was applied). */
  usedBuffer(queue: number): void;
  /** Configuration change notification (config change or DEVICE_NEEDS_RESET). */
  configChange(): void;
}

/** Per-device counters, reported by the board's 'stats' control request. */
export interface DeviceCounters {
  /** Accesses or values a correct driver never produces (MMIO-R*, status misuse, bad rings...). */
  guestErrors: number;
  lastGuestError: string | null;
  /** QueueNotify writes (or the transport's equivalent), including ignored ones. */
  notifications: number;
  /** Notifications that scheduled no work (bad index, before DRIVER_OK, queue not ready...). */
  ignoredNotifications: number;
  usedBuffers: number;
  usedInterrupts: number;
  configInterrupts: number;
  /** Malformed rings that set DEVICE_NEEDS_RESET. */
  ringErrors: number;
  /** Model exceptions that set DEVICE_NEEDS_RESET. */
  deviceErrors: number;
  lastDeviceError: string | null;
}

export function newCounters(): DeviceCounters {
  return {
    guestErrors: 0,
    lastGuestError: null,
    notifications: 0,
    ignoredNotifications: 0,
    usedBuffers: 0,
    usedInterrupts: 0,
    configInterrupts: 0,
    ringErrors: 0,
    deviceErrors: 0,
    lastDeviceError: null,
  };
}
