// What kernel-diff runs under both kernels: each scenario is a machine
// (devices in slots), device-side setup before boot, and steps after the
// probe. The same scenario runs on a fresh machine per kernel.
import type { PmInjection } from '../../core/pm/dpm.js';
import type { PmCallbackName } from '../../core/pm/pm.js';
import type { HibernationMode } from '../../core/pm/system.js';
import { EBUSY, EIO } from '../../core/uapi/errno.js';
import { VIRTIO_ID_RNG } from '../../core/uapi/ids.js';
import type { TransportKind } from '../../emulator/board-contract.js';
import type { Machine, MachineDevice } from '../../emulator/machine.js';
import type { PowerModel } from '../system.js';

export interface PmStep {
  do: 'pm';
  kind: 'suspend' | 'hibernate';
  power: PowerModel;
  mode?: HibernationMode;
  /** Callbacks made to fail (DpmCore.inject), this step only. */
  fail?: PmInjection[];
  /** Hibernation: callbacks of the boot kernel made to fail (its quiesce). */
  bootFail?: PmInjection[];
}

export type DiffStep = { do: 'rng-read'; slot: number; bytes: number } | { do: 'remove'; slot: number } | { do: 'probe'; slot: number } | PmStep;

/**
 * A driver both kernels have: Linux's own (virtio_rng) or the project's C
 * driver and its model twin (the clock with and without the noirq pair, the
 * clock consumer, the PM test driver).
 */
export type DiffDriver =
  | 'virtio_rng'
  | 'virtio_rtc_noirq'
  | 'virtio_rtc'
  | { driver: 'clock_consumer'; deviceId: number; clock: string }
  | { driver: 'test_driver'; deviceId: number; queues: number; callbacks: readonly ('freeze' | 'restore' | 'freeze_noirq' | 'restore_noirq')[] };

/** A transport op taken away from a bound device before the steps (the PM core's refusals). */
export interface DiffTweak {
  slot: number;
  resetVqs?: false;
  noirqSafe?: false;
}

export interface DiffScenario {
  name: string;
  devices: MachineDevice[];
  /** Windows on the board (both kernels scan all of them). */
  slots: number;
  /** Drivers in match order (default: virtio_rng only). */
  drivers?: readonly DiffDriver[];
  beforeBoot?: (machine: Machine) => void;
  tweak?: DiffTweak;
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

// ---------------------------------------------------------------------------
// System sleep: the rng and the clock (with or without the noirq pair) under
// both kernels' PM callbacks, driven by the same PM core.

const PM_SLOTS = 2;
const rngAndClock = (t: DiffTransport): MachineDevice[] => [
  { type: 'rng', transport: t },
  { type: 'rtc', transport: t },
];
const CLOCK: Record<'noirq' | 'classic', readonly DiffDriver[]> = {
  noirq: ['virtio_rng', 'virtio_rtc_noirq'],
  classic: ['virtio_rng', 'virtio_rtc'],
};
/** Slot 0 is the clock consumer (bound to the rng device), reading "rtc1.0" from its restore(). */
const CONSUMER: Record<'noirq' | 'classic', readonly DiffDriver[]> = {
  noirq: [{ driver: 'clock_consumer', deviceId: VIRTIO_ID_RNG, clock: 'rtc1.0' }, 'virtio_rtc_noirq'],
  classic: [{ driver: 'clock_consumer', deviceId: VIRTIO_ID_RNG, clock: 'rtc1.0' }, 'virtio_rtc'],
};

const fail = (phase: PmCallbackName, device: number, errno = EIO): PmInjection => ({ phase, device, errno });

/** The PM scenarios: suspend and hibernation × power model × a failure at each phase × the clock with and without the noirq pair, and the refusals. */
export function pmScenarios(transports: readonly DiffTransport[]): DiffScenario[] {
  const out: DiffScenario[] = [];
  for (const t of transports) {
    const pm = (name: string, clock: 'noirq' | 'classic', steps: PmStep[], extra: Partial<DiffScenario> = {}): void => {
      out.push({ name: `${name}.${t}`, devices: rngAndClock(t), slots: PM_SLOTS, drivers: CLOCK[clock], steps, ...extra });
    };
    for (const clock of ['noirq', 'classic'] as const) {
      for (const power of ['retain', 'reset', 'fresh'] as const) {
        pm(`suspend.${power}.${clock}`, clock, [{ do: 'pm', kind: 'suspend', power }]);
        pm(`hibernate.${power}.${clock}`, clock, [{ do: 'pm', kind: 'hibernate', power }]);
      }
      pm(`hibernate.platform.${clock}`, clock, [{ do: 'pm', kind: 'hibernate', power: 'fresh', mode: 'platform' }]);
    }
    pm('suspend.cycles3.noirq', 'noirq', [1, 2, 3].map(() => ({ do: 'pm' as const, kind: 'suspend' as const, power: 'reset' as const })));
    // A failure at each phase virtio-mmio has a callback for.
    for (const [phase, device] of [
      ['suspend', 0],
      ['suspend', 1],
      ['suspend_noirq', 1],
      ['resume_noirq', 1],
      ['resume', 0],
      ['resume', 1],
    ] as const) {
      pm(`suspend.fail-${phase}@${device}.noirq`, 'noirq', [{ do: 'pm', kind: 'suspend', power: 'reset', fail: [fail(phase, device)] }]);
    }
    pm('suspend.fail-suspend_noirq@1.classic', 'classic', [{ do: 'pm', kind: 'suspend', power: 'reset', fail: [fail('suspend_noirq', 1)] }]);
    for (const [phase, device] of [
      ['freeze', 1],
      ['freeze_noirq', 1],
      ['freeze_noirq', 0],
      ['thaw_noirq', 1],
      ['thaw', 1],
      ['restore_noirq', 1],
      ['restore', 0],
    ] as const) {
      pm(`hibernate.fail-${phase}@${device}.noirq`, 'noirq', [{ do: 'pm', kind: 'hibernate', power: 'fresh', fail: [fail(phase, device)] }]);
    }
    pm('hibernate.fail-freeze@1.classic', 'classic', [{ do: 'pm', kind: 'hibernate', power: 'fresh', fail: [fail('freeze', 1)] }]);
    // power_down(): only a wakeup event (-EBUSY/-EAGAIN) rolls back; any other error powers off anyway.
    for (const [phase, errno] of [
      ['poweroff', EIO],
      ['poweroff', EBUSY],
      ['poweroff_noirq', EIO],
      ['poweroff_noirq', EBUSY],
    ] as const) {
      pm(`hibernate.platform.fail-${phase}-${errno === EIO ? 'EIO' : 'EBUSY'}.noirq`, 'noirq', [
        { do: 'pm', kind: 'hibernate', power: 'fresh', mode: 'platform', fail: [fail(phase, 1, errno)] },
      ]);
    }
    for (const phase of ['freeze', 'freeze_noirq'] as const) {
      pm(`hibernate.quiesce-fail-${phase}.noirq`, 'noirq', [{ do: 'pm', kind: 'hibernate', power: 'fresh', bootFail: [fail(phase, 1)] }]);
    }
    // The motivating case: a driver whose restore() reads the clock.
    for (const clock of ['noirq', 'classic'] as const) {
      out.push({ name: `consumer.suspend.${clock}.${t}`, devices: rngAndClock(t), slots: PM_SLOTS, drivers: CONSUMER[clock], steps: [{ do: 'pm', kind: 'suspend', power: 'reset' }] });
    }
    // The refusals of the patch.
    const testDevice: MachineDevice[] = [{ type: 'rng', transport: t }];
    const test = (callbacks: readonly ('freeze' | 'restore' | 'freeze_noirq' | 'restore_noirq')[]): DiffDriver[] => [
      { driver: 'test_driver', deviceId: VIRTIO_ID_RNG, queues: 1, callbacks },
    ];
    out.push({ name: `refusal.mis-paired.${t}`, devices: testDevice, slots: PM_SLOTS, drivers: test(['freeze', 'restore', 'freeze_noirq']), steps: [{ do: 'pm', kind: 'suspend', power: 'retain' }] });
    out.push({
      name: `refusal.no-reset-vqs.${t}`,
      devices: testDevice,
      slots: PM_SLOTS,
      drivers: test(['freeze', 'restore', 'freeze_noirq', 'restore_noirq']),
      tweak: { slot: 0, resetVqs: false },
      steps: [{ do: 'pm', kind: 'suspend', power: 'retain' }],
    });
    out.push({
      name: `refusal.not-noirq-safe.${t}`,
      devices: testDevice,
      slots: PM_SLOTS,
      drivers: test(['freeze', 'restore', 'freeze_noirq', 'restore_noirq']),
      tweak: { slot: 0, noirqSafe: false },
      steps: [{ do: 'pm', kind: 'suspend', power: 'retain' }],
    });
    out.push({ name: `noirq-pair.suspend.${t}`, devices: testDevice, slots: PM_SLOTS, drivers: test(['freeze', 'restore', 'freeze_noirq', 'restore_noirq']), steps: [{ do: 'pm', kind: 'suspend', power: 'reset' }] });
  }
  return out;
}
