// What kernel-diff runs under both kernels: each scenario is a machine
// (devices in slots), device-side setup before boot, and steps after the
// probe. The same scenario runs on a fresh machine per kernel.
import type { TransportKind } from '../../emulator/board-contract.js';
import type { Machine, MachineDevice } from '../../emulator/machine.js';

export type DiffStep = { do: 'rng-read'; slot: number; bytes: number } | { do: 'remove'; slot: number } | { do: 'probe'; slot: number };

export interface DiffScenario {
  name: string;
  devices: MachineDevice[];
  /** Windows on the board (both kernels scan all of them). */
  slots: number;
  beforeBoot?: (machine: Machine) => void;
  steps: DiffStep[];
}

/** The transports both kernels drive. */
export const DIFF_TRANSPORTS = ['mmio', 'mmio-legacy'] as const satisfies readonly TransportKind[];
export type DiffTransport = (typeof DIFF_TRANSPORTS)[number];

const SLOTS = 4;

/** rng read sizes: below, at and above one request (64 bytes), and many requests. */
export const RNG_READ_SIZES = [1, 16, 64, 100, 4096] as const;

const refuseFeatures =
  (slot: number) =>
  (m: Machine): void => {
    const r = m.control({ op: 'inject', slot, event: 'refuse-features' });
    if (!r.ok) throw new Error(`refuse-features: ${r.error}`);
  };

/** Ring layouts a transport can negotiate: virtio-mmio v2 both (the device offers RING_PACKED unless packed=false), legacy split only. */
export function diffRings(t: DiffTransport): readonly DiffRing[] {
  return t === 'mmio' ? DIFF_RINGS : ['split'];
}

export const DIFF_RINGS = ['packed', 'split'] as const;
export type DiffRing = (typeof DIFF_RINGS)[number];

/**
 * The probe and I/O scenarios, for the devices given (default one rng in
 * slot 0) on each transport and, over virtio-mmio v2, on each ring layout:
 * a device offering VIRTIO_F_RING_PACKED (both kernels negotiate it) and the
 * same device with packed=false (split rings). Names end in the transport,
 * then the ring for virtio-mmio v2 (probe.rng.mmio.packed).
 */
export function probeScenarios(devices: MachineDevice[] | null, transports: readonly DiffTransport[]): DiffScenario[] {
  const out: DiffScenario[] = [];
  for (const t of transports) {
    for (const ring of diffRings(t)) {
      const suffix = t === 'mmio' ? `${t}.${ring}` : t;
      const on = (d: MachineDevice): MachineDevice => {
        const dev = { ...d, transport: d.transport ?? t };
        if (t !== 'mmio' || d.options?.['packed'] !== undefined) return dev;
        return { ...dev, options: { ...d.options, packed: ring === 'packed' } };
      };
      out.push(...scenariosOn(devices, suffix, on));
    }
  }
  return out;
}

function scenariosOn(devices: MachineDevice[] | null, t: string, on: (d: MachineDevice) => MachineDevice): DiffScenario[] {
  const out: DiffScenario[] = [];
  if (devices) {
    const devs = devices.map(on);
    out.push({ name: `probe.${devs.map((d) => d.type).join('+')}.${t}`, devices: devs, slots: Math.max(SLOTS, devs.length), steps: [] });
    return out;
  }
  const rng: MachineDevice[] = [on({ type: 'rng' })];
  out.push({ name: `probe.rng.${t}`, devices: rng, slots: SLOTS, steps: [] });
  for (const n of RNG_READ_SIZES) out.push({ name: `rng-read.${n}.${t}`, devices: rng, slots: SLOTS, steps: [{ do: 'rng-read', slot: 0, bytes: n }] });
  out.push({
    name: `rng-read.sequence.${t}`,
    devices: rng,
    slots: SLOTS,
    steps: [1, 16, 64, 100].map((bytes) => ({ do: 'rng-read' as const, slot: 0, bytes })),
  });
  // A ring of 4: 1024 bytes are 16 requests, four laps of the ring (the packed wrap counters flip, split indices go round).
  out.push({
    name: `rng-read.small-ring.${t}`,
    devices: [on({ type: 'rng', options: { queueSize: 4 } })],
    slots: SLOTS,
    steps: [{ do: 'rng-read', slot: 0, bytes: 1024 }],
  });
  out.push({
    name: `remove-reprobe.rng.${t}`,
    devices: rng,
    slots: SLOTS,
    steps: [
      { do: 'rng-read', slot: 0, bytes: 64 },
      { do: 'remove', slot: 0 },
      { do: 'probe', slot: 0 },
      { do: 'rng-read', slot: 0, bytes: 64 },
    ],
  });
  out.push({ name: `refused-features.rng.${t}`, devices: rng, slots: SLOTS, beforeBoot: refuseFeatures(0), steps: [] });
  out.push({
    name: `two-devices.rng.${t}`,
    devices: [on({ type: 'rng', slot: 0 }), on({ type: 'rng', slot: 2 })],
    slots: SLOTS,
    steps: [
      { do: 'rng-read', slot: 2, bytes: 64 },
      { do: 'rng-read', slot: 0, bytes: 64 },
    ],
  });
  return out;
}
