// The virtio-mmio transport (Linux drivers/virtio/virtio_mmio.c):
// - mmio-device.ts: struct virtio_mmio_device and virtio_mmio_config_ops
//   (config/status/features, vq setup and teardown, notify, vm_interrupt,
//   vm_reset_vqs for noirq restore);
// - mmio-probe.ts: virtio_mmio_probe/remove and a scan of the board's windows;
// - mmio-pm.ts: the dev_pm_ops (normal and noirq system sleep).
export * from './device.js';
export * from './probe.js';
export * from './pm.js';
