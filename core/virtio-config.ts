// include/linux/virtio_config.h: the transport's config ops and the inline
// helpers drivers use (feature tests, device_ready, config reads).
import type { VirtioDevice } from './virtio.js';
import type { Virtqueue, VirtqueueInfo } from './virtqueue/types.js';

/** struct virtio_config_ops (with the reference patch's reset_vqs and noirq_safe). */
export interface VirtioConfigOps {
  /** Read buf.length bytes of config space at offset. */
  get(vdev: VirtioDevice, offset: number, buf: Uint8Array): void;
  set(vdev: VirtioDevice, offset: number, buf: Uint8Array): void;
  /** ConfigGeneration, or undefined when the transport has none. */
  generation?(vdev: VirtioDevice): number;
  getStatus(vdev: VirtioDevice): number;
  setStatus(vdev: VirtioDevice, status: number): void;
  reset(vdev: VirtioDevice): void;
  /** Fills vqs[]; returns 0 or -errno. */
  findVqs(vdev: VirtioDevice, vqs: (Virtqueue | null)[], vqsInfo: VirtqueueInfo[]): number;
  delVqs(vdev: VirtioDevice): void;
  /** Reinitialise existing virtqueues without allocating (noirq restore). */
  resetVqs?(vdev: VirtioDevice): number;
  synchronizeCbs?(vdev: VirtioDevice): void;
  getFeatures(vdev: VirtioDevice): bigint;
  finalizeFeatures(vdev: VirtioDevice): number;
  busName(vdev: VirtioDevice): string;
  /** reset, get_status, set_status and finalize_features never wait for an interrupt. */
  readonly noirqSafe: boolean;
}
