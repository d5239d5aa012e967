// The same register accesses against other device models through QEMU's
// qtest protocol: QEMU 7.2's own virtio-mmio (qemu-system-aarch64 -M virt)
// and this emulator's `virtio-emu qtest`, both spoken to by the one
// QtestClient. Skipped with a notice when QEMU is not installed.
import { PLATFORM } from '../../../core/bus.js';
import { VIRTIO_ID_RNG } from '../../../core/uapi/ids.js';
import { MMIO_WINDOW_SIZE, REG } from '../../../core/uapi/mmio.js';
import { launchQemu, launchSelf, qemuVersion, QEMU_BINARY } from '../qemu.js';
import type { QtestClient } from '../../qtest/client.js';
import { SEQUENCE_ACCESSES, runSequence, type AsyncPort } from '../register-sequence.js';
import { BenchSkip, type BenchCase, type BenchInstance } from '../case.js';

/** Slots on the virt board; QEMU puts the first -device in the highest one. */
const SLOTS = PLATFORM.MMIO_SLOTS_DEFAULT;

/** The window holding a virtio-rng, found by reading DeviceID in every slot. */
async function findRng(client: QtestClient): Promise<number> {
  for (let slot = 0; slot < SLOTS; slot++) {
    const base = PLATFORM.MMIO_BASE + slot * MMIO_WINDOW_SIZE;
    if ((await client.readl(base + REG.DeviceID)) === VIRTIO_ID_RNG) return base;
  }
  throw new Error('qtest peer: no virtio-rng in any virtio-mmio slot');
}

async function peerCase(peer: 'qemu' | 'self', what: 'read32' | 'sequence'): Promise<BenchInstance> {
  if (peer === 'qemu' && qemuVersion() === null) throw new BenchSkip(`${QEMU_BINARY} not installed (apt-get install qemu-system-arm)`);
  const client = peer === 'qemu' ? await launchQemu() : await launchSelf();
  try {
    const base = await findRng(client);
    const port: AsyncPort = { read: (a) => client.readl(a), write: (a, v) => client.writel(a, v) };
    // Once with every check: the peer is a modern virtio-mmio rng that negotiates.
    await runSequence(port, base, true);
    const magic = base + REG.MagicValue;
    return {
      run:
        what === 'read32'
          ? async (n) => {
              for (let i = 0; i < n; i++) await client.readl(magic);
            }
          : async (n) => {
              for (let i = 0; i < n; i++) await runSequence(port, base);
            },
      teardown: () => client.close(),
      extras: () => ({
        accesses_per_op: what === 'read32' ? 1 : SEQUENCE_ACCESSES,
        slot: (base - PLATFORM.MMIO_BASE) / MMIO_WINDOW_SIZE,
      }),
    };
  } catch (err) {
    client.close();
    throw err;
  }
}

export const cases: BenchCase[] = [
  {
    name: 'peer.qemu.qtest.read32',
    description: "read MagicValue of QEMU's virtio-mmio rng through qtest (QEMU as the peer)",
    ratioTo: 'mmio.read32.trap',
    setup: () => peerCase('qemu', 'read32'),
  },
  {
    name: 'peer.qemu.qtest.sequence',
    description: "the driver register sequence against QEMU's virtio-mmio rng through qtest",
    ratioTo: 'mmio.sequence.trap',
    setup: () => peerCase('qemu', 'sequence'),
  },
  {
    name: 'peer.self.qtest.read32',
    description: 'read MagicValue of `virtio-emu qtest --device rng` through the same qtest client',
    ratioTo: 'peer.qemu.qtest.read32',
    setup: () => peerCase('self', 'read32'),
  },
  {
    name: 'peer.self.qtest.sequence',
    description: 'the driver register sequence against `virtio-emu qtest --device rng` through the same client',
    ratioTo: 'peer.qemu.qtest.sequence',
    setup: () => peerCase('self', 'sequence'),
  },
];
