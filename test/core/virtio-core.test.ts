// The virtio core model (core/virtio.ts) against a recording in-memory
// transport: order of checks, errno values, noirq state, WARN_ONs. The same
// paths over real registers are in pm-*.test.ts.
import { beforeEach, describe, expect, it } from 'vitest';
import { kernel } from '../../core/kernel.js';
import {
  VIRTIO_NOIRQ_ENTERED,
  VIRTIO_NOIRQ_NONE,
  VIRTIO_NOIRQ_RESTORED,
  type VirtioDevice,
  type VirtioDriver,
  registerVirtioDevice,
  registerVirtioDriver,
  unregisterVirtioDevice,
  virtioConfigChanged,
  virtioConfigDriverDisable,
  virtioConfigDriverEnable,
  virtioDeviceFreeze,
  virtioDeviceFreezeNoirq,
  virtioDeviceReady,
  virtioDeviceReadyNoirq,
  virtioDeviceRestore,
  virtioDeviceRestoreNoirq,
} from '../../core/virtio.js';
import { EINVAL, EIO, ENODEV, EOPNOTSUPP } from '../../core/uapi/errno.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FAILED,
  VIRTIO_CONFIG_S_FEATURES_OK,
} from '../../core/uapi/status.js';
import { fakeDevice, fakeVq } from '../helpers/fake-transport.js';

const ID = [{ device: 4, vendor: 0xffffffff }];

interface Calls {
  calls: string[];
}

function driver(cbs: Partial<VirtioDriver> = {}, featureTable: number[] = []): VirtioDriver & Calls {
  const calls: string[] = [];
  const d: VirtioDriver & Calls = {
    name: 'test-drv',
    idTable: ID,
    featureTable,
    calls,
    probe: () => (calls.push('probe'), 0),
    remove: (dev) => {
      calls.push('remove');
      dev.config.reset(dev);
    },
    configChanged: () => void calls.push('config_changed'),
    ...cbs,
  };
  return d;
}

function noirqDriver(extra: Partial<VirtioDriver> = {}): VirtioDriver & Calls {
  const d = driver();
  return Object.assign(d, {
    freeze: () => (d.calls.push('freeze'), 0),
    restore: () => (d.calls.push('restore'), 0),
    freezeNoirq: () => (d.calls.push('freeze_noirq'), 0),
    restoreNoirq: (dev: VirtioDevice) => {
      d.calls.push('restore_noirq');
      virtioDeviceReadyNoirq(dev);
      return 0;
    },
    ...extra,
  });
}

function bound(drv: VirtioDriver, opts: Parameters<typeof fakeDevice>[0] = {}) {
  const f = fakeDevice(opts);
  registerVirtioDriver(drv, f.bus);
  expect(registerVirtioDevice(f.dev)).toBe(0);
  return f;
}

beforeEach(() => kernel.clear());

describe('probe', () => {
  it('runs reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK read-back, probe, DRIVER_OK in that order', () => {
    const drv = driver({}, [0, 3]);
    const { dev, state } = bound(drv, { deviceFeatures: (1n << 32n) | 1n | (1n << 29n) | (1n << 5n) });
    expect(dev.driver).toBe(drv);
    expect(state.status).toBe(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
    // driver bit 0 offered and wanted; 3 wanted but not offered; 5 offered, not wanted;
    // transport bits 29 and 32 preserved for finalize_features.
    expect(dev.features).toBe(1n | (1n << 29n) | (1n << 32n));
    expect(state.ops).toEqual([
      'reset',
      'get_status',
      'set_status 1',
      'get_status',
      'set_status 3',
      'get_features',
      'finalize_features',
      'get_status',
      'set_status 11',
      'get_status', // FEATURES_OK read back
      'get_status', // probe done: DRIVER_OK already set?
      'get_status', // virtio_device_ready
      'set_status 15',
    ]);
    expect(drv.calls).toEqual(['probe']);
    expect(dev.configCoreEnabled).toBe(true);
  });

  it('legacy device (no VERSION_1): no FEATURES_OK, legacy feature table used', () => {
    const drv = driver({}, [0]);
    drv.featureTableLegacy = [1];
    const { dev, state } = bound(drv, { deviceFeatures: 0b11n });
    expect(dev.features).toBe(0b10n);
    expect(state.status & VIRTIO_CONFIG_S_FEATURES_OK).toBe(0);
    expect(state.status & VIRTIO_CONFIG_S_DRIVER_OK).toBeTruthy();
  });

  it('device refusing FEATURES_OK: -ENODEV, FAILED set, driver not bound', () => {
    const drv = driver();
    const f = fakeDevice();
    f.state.refuseFeaturesOk = true;
    registerVirtioDriver(drv, f.bus);
    registerVirtioDevice(f.dev);
    expect(f.dev.probeResult).toBe(-ENODEV);
    expect(f.dev.driver).toBeNull();
    expect(f.state.status & VIRTIO_CONFIG_S_FAILED).toBeTruthy();
    expect(drv.calls).not.toContain('probe');
    expect(f.dev.messages.some((m) => m.msg.includes('device refuses features'))).toBe(true);
  });

  it('probe error: FAILED set and the driver unbound', () => {
    const drv = driver({ probe: () => -EIO });
    const f = bound(drv);
    expect(f.dev.probeResult).toBe(-EIO);
    expect(f.dev.driver).toBeNull();
    expect(f.state.status & VIRTIO_CONFIG_S_FAILED).toBeTruthy();
  });

  it('remove resets (driver), re-ACKs, and a driver that does not reset trips WARN_ON_ONCE', () => {
    const drv = driver();
    const f = bound(drv);
    unregisterVirtioDevice(f.dev);
    expect(drv.calls).toEqual(['probe', 'remove']);
    expect(f.state.status).toBe(VIRTIO_CONFIG_S_ACKNOWLEDGE);
    expect(f.dev.warnings).toEqual([]);

    const lazy = driver({ remove: () => undefined });
    const g = bound(lazy);
    unregisterVirtioDevice(g.dev);
    expect(g.dev.warnings.map((w) => w.where)).toEqual(['virtio_dev_remove']);
  });

  it('virtio_device_ready twice trips the DRIVER_OK WARN_ON', () => {
    const { dev } = bound(driver());
    virtioDeviceReady(dev);
    expect(dev.warnings).toEqual([
      expect.objectContaining({ kind: 'WARN_ON', where: 'virtio_device_ready', what: 'status & VIRTIO_CONFIG_S_DRIVER_OK' }),
    ]);
  });
});

describe('config change gating', () => {
  it('a change while core-disabled is delivered exactly once when enabled', () => {
    const drv = driver();
    const f = fakeDevice();
    registerVirtioDriver(drv, f.bus);
    // before probe completes, config is core-disabled: register with the driver but fire first
    const dev = f.dev;
    registerVirtioDevice(dev);
    virtioDeviceFreeze(dev); // core disable
    virtioConfigChanged(dev);
    virtioConfigChanged(dev);
    expect(drv.calls.filter((c) => c === 'config_changed')).toHaveLength(0);
    expect(dev.configChangePending).toBe(true);
    virtioDeviceRestore(dev);
    expect(drv.calls.filter((c) => c === 'config_changed')).toHaveLength(1);
    expect(dev.configChangePending).toBe(false);
    virtioConfigChanged(dev);
    expect(drv.calls.filter((c) => c === 'config_changed')).toHaveLength(2);
  });

  it('driver disable holds changes; enable delivers once', () => {
    const drv = driver();
    const { dev } = bound(drv);
    virtioConfigDriverDisable(dev);
    virtioConfigChanged(dev);
    virtioConfigChanged(dev);
    expect(drv.calls).not.toContain('config_changed');
    virtioConfigDriverEnable(dev);
    expect(drv.calls.filter((c) => c === 'config_changed')).toHaveLength(1);
  });
});

describe('virtio_device_freeze (with the noirq patch)', () => {
  it.each([
    ['freeze without restore', { freeze: () => 0 }],
    ['restore without freeze', { restore: () => 0 }],
    ['freeze_noirq without restore_noirq', { freezeNoirq: () => 0 }],
    ['restore_noirq without freeze_noirq', { restoreNoirq: () => 0 }],
  ])('%s: -EINVAL, config re-enabled, driver freeze not called', (_n, cbs) => {
    const calls: string[] = [];
    const drv = driver({ ...cbs, freeze: 'freeze' in cbs ? () => (calls.push('freeze'), 0) : undefined });
    const { dev } = bound(drv);
    expect(virtioDeviceFreeze(dev)).toBe(-EINVAL);
    expect(dev.configCoreEnabled).toBe(true);
    expect(calls).toEqual([]);
    expect(dev.messages.map((m) => m.msg)).toContain('freeze/restore and freeze_noirq/restore_noirq must each be paired');
  });

  it('restore_noirq on a transport without noirq_safe: -EOPNOTSUPP at freeze, config re-enabled', () => {
    const drv = noirqDriver();
    const { dev } = bound(drv, { noirqSafe: false });
    expect(virtioDeviceFreeze(dev)).toBe(-EOPNOTSUPP);
    expect(dev.configCoreEnabled).toBe(true);
    expect(drv.calls).not.toContain('freeze');
  });

  it('pairing is checked before noirq_safe', () => {
    const drv = noirqDriver({ freeze: undefined });
    const { dev } = bound(drv, { noirqSafe: false });
    expect(virtioDeviceFreeze(dev)).toBe(-EINVAL);
  });

  it('records FAILED and resets noirq_state to NONE', () => {
    const drv = noirqDriver();
    const f = bound(drv);
    f.dev.noirqState = VIRTIO_NOIRQ_RESTORED;
    f.state.status |= VIRTIO_CONFIG_S_FAILED;
    expect(virtioDeviceFreeze(f.dev)).toBe(0);
    expect(f.dev.failed).toBe(true);
    expect(f.dev.noirqState).toBe(VIRTIO_NOIRQ_NONE);
    expect(f.dev.configCoreEnabled).toBe(false);
  });

  it('driver freeze error: config re-enabled and the error returned', () => {
    const drv = driver({ freeze: () => -EIO, restore: () => 0 });
    const { dev } = bound(drv);
    expect(virtioDeviceFreeze(dev)).toBe(-EIO);
    expect(dev.configCoreEnabled).toBe(true);
  });
});

describe('virtio_device_freeze_noirq', () => {
  it('success sets ENTERED; failure leaves NONE', () => {
    const ok = bound(noirqDriver());
    virtioDeviceFreeze(ok.dev);
    expect(virtioDeviceFreezeNoirq(ok.dev)).toBe(0);
    expect(ok.dev.noirqState).toBe(VIRTIO_NOIRQ_ENTERED);

    const bad = bound(noirqDriver({ freezeNoirq: () => -EIO }));
    virtioDeviceFreeze(bad.dev);
    expect(virtioDeviceFreezeNoirq(bad.dev)).toBe(-EIO);
    expect(bad.dev.noirqState).toBe(VIRTIO_NOIRQ_NONE);
  });

  it('active vqs without reset_vqs: -EOPNOTSUPP and the driver callback is not run', () => {
    const drv = noirqDriver();
    const { dev } = bound(drv, { resetVqs: false });
    dev.vqs.push(fakeVq(dev));
    virtioDeviceFreeze(dev);
    expect(virtioDeviceFreezeNoirq(dev)).toBe(-EOPNOTSUPP);
    expect(drv.calls).not.toContain('freeze_noirq');
    expect(dev.noirqState).toBe(VIRTIO_NOIRQ_NONE);
  });

  it('no vqs: reset_vqs is not required', () => {
    const { dev } = bound(noirqDriver(), { resetVqs: false });
    virtioDeviceFreeze(dev);
    expect(virtioDeviceFreezeNoirq(dev)).toBe(0);
  });

  it('transport without noirq_safe is caught again (safety net)', () => {
    const { dev } = bound(noirqDriver(), { noirqSafe: false });
    expect(virtioDeviceFreezeNoirq(dev)).toBe(-EOPNOTSUPP);
  });

  it('driver without noirq callbacks: 0 and state untouched', () => {
    const { dev } = bound(driver({ freeze: () => 0, restore: () => 0 }));
    virtioDeviceFreeze(dev);
    expect(virtioDeviceFreezeNoirq(dev)).toBe(0);
    expect(dev.noirqState).toBe(VIRTIO_NOIRQ_NONE);
  });
});

describe('virtio_device_restore_noirq and restore', () => {
  function frozen(drv = noirqDriver(), opts: Parameters<typeof fakeDevice>[0] = {}) {
    const f = bound(drv, opts);
    f.dev.vqs.push(fakeVq(f.dev));
    expect(virtioDeviceFreeze(f.dev)).toBe(0);
    expect(virtioDeviceFreezeNoirq(f.dev)).toBe(0);
    f.state.ops.length = 0;
    return { ...f, drv };
  }

  it('noirq reinit: reset, ACK, DRIVER, finalize, FEATURES_OK read back, reset_vqs, restore_noirq; RESTORED', () => {
    const { dev, state, drv } = frozen();
    kernel.noirqDepth++;
    try {
      expect(virtioDeviceRestoreNoirq(dev)).toBe(0);
    } finally {
      kernel.noirqDepth--;
    }
    expect(state.ops).toEqual([
      'reset',
      'get_status',
      'set_status 1',
      'get_status',
      'set_status 3',
      'finalize_features',
      'get_status',
      'set_status 11',
      'get_status',
      'reset_vqs',
      'get_status',
      'set_status 15',
      'get_status',
    ]);
    expect(drv.calls.slice(-1)).toEqual(['restore_noirq']);
    expect(dev.noirqState).toBe(VIRTIO_NOIRQ_RESTORED);
    expect(dev.configCoreEnabled).toBe(true);
    // nothing sleepable ran in the noirq phase
    expect(dev.warnings).toEqual([]);
  });

  it('restore() after RESTORED: no reset, no feature writes, driver restore called, no second DRIVER_OK', () => {
    const { dev, state, drv } = frozen();
    virtioDeviceRestoreNoirq(dev);
    state.ops.length = 0;
    expect(virtioDeviceRestore(dev)).toBe(0);
    expect(state.ops).toEqual(['get_status']);
    expect(drv.calls.slice(-1)).toEqual(['restore']);
    expect(dev.warnings).toEqual([]);
  });

  it('restore() with ENTERED (restore_noirq never completed): -EIO and FAILED, no driver restore', () => {
    const { dev, state, drv } = frozen();
    expect(virtioDeviceRestore(dev)).toBe(-EIO);
    expect(state.status & VIRTIO_CONFIG_S_FAILED).toBeTruthy();
    expect(drv.calls).not.toContain('restore');
    expect(state.ops).not.toContain('reset');
  });

  it('restore() after an abort before noirq (NONE): no reinit, driver restore undoes freeze', () => {
    const drv = noirqDriver();
    const f = bound(drv);
    virtioDeviceFreeze(f.dev);
    f.state.ops.length = 0;
    expect(virtioDeviceRestore(f.dev)).toBe(0);
    expect(f.state.ops).not.toContain('reset');
    expect(drv.calls.slice(-1)).toEqual(['restore']);
    expect(f.dev.configCoreEnabled).toBe(true);
  });

  it('driver without restore_noirq: restore() does the full reinit', () => {
    const drv = driver({ freeze: () => 0, restore: () => 0 });
    const f = bound(drv);
    virtioDeviceFreeze(f.dev);
    f.state.ops.length = 0;
    expect(virtioDeviceRestore(f.dev)).toBe(0);
    expect(f.state.ops[0]).toBe('reset');
    expect(f.state.status).toBe(15);
  });

  it('device refusing FEATURES_OK on restore_noirq: -ENODEV, FAILED, state stays ENTERED, then restore -EIO', () => {
    const { dev, state, drv } = frozen();
    state.refuseFeaturesOk = true;
    expect(virtioDeviceRestoreNoirq(dev)).toBe(-ENODEV);
    expect(state.status & VIRTIO_CONFIG_S_FAILED).toBeTruthy();
    expect(dev.noirqState).toBe(VIRTIO_NOIRQ_ENTERED);
    expect(drv.calls).not.toContain('restore_noirq');
    expect(state.ops).not.toContain('reset_vqs');
    expect(virtioDeviceRestore(dev)).toBe(-EIO);
  });

  it('restore_noirq failing in the driver: FAILED set, state ENTERED', () => {
    const { dev, state } = frozen(noirqDriver({ restoreNoirq: () => -EIO }));
    expect(virtioDeviceRestoreNoirq(dev)).toBe(-EIO);
    expect(state.status & VIRTIO_CONFIG_S_FAILED).toBeTruthy();
    expect(dev.noirqState).toBe(VIRTIO_NOIRQ_ENTERED);
  });

  it('vqs without reset_vqs at restore_noirq: -EOPNOTSUPP after the reinit, FAILED set', () => {
    const drv = noirqDriver();
    const f = bound(drv, { resetVqs: false });
    virtioDeviceFreeze(f.dev);
    virtioDeviceFreezeNoirq(f.dev); // no vqs yet: allowed
    f.dev.vqs.push(fakeVq(f.dev));
    expect(virtioDeviceRestoreNoirq(f.dev)).toBe(-EOPNOTSUPP);
    expect(f.state.status & VIRTIO_CONFIG_S_FAILED).toBeTruthy();
  });

  it('transport without noirq_safe: -EOPNOTSUPP and FAILED is not set', () => {
    const drv = noirqDriver();
    const f = bound(drv, { noirqSafe: false });
    f.dev.noirqState = VIRTIO_NOIRQ_ENTERED;
    const before = f.state.status;
    expect(virtioDeviceRestoreNoirq(f.dev)).toBe(-EOPNOTSUPP);
    expect(f.state.status).toBe(before);
  });

  it('dev->failed is restored for debugging in the noirq reinit (0x81)', () => {
    const { dev, state } = frozen();
    dev.failed = true;
    virtioDeviceRestoreNoirq(dev);
    expect(state.ops).toContain('set_status 129');
  });

  it('a config change pending across the noirq phase is delivered once by the noirq enable', () => {
    const { dev, drv } = frozen();
    virtioConfigChanged(dev);
    expect(drv.calls).not.toContain('config_changed');
    virtioDeviceRestoreNoirq(dev);
    expect(drv.calls.filter((c) => c === 'config_changed')).toHaveLength(1);
    virtioDeviceRestore(dev);
    expect(drv.calls.filter((c) => c === 'config_changed')).toHaveLength(1);
  });

  it('virtio_device_ready_noirq warns when DRIVER_OK is already set', () => {
    const { dev } = frozen(
      noirqDriver({
        restoreNoirq: (d: VirtioDevice) => {
          virtioDeviceReadyNoirq(d);
          virtioDeviceReadyNoirq(d);
          return 0;
        },
      }),
    );
    virtioDeviceRestoreNoirq(dev);
    expect(dev.warnings.filter((w) => w.where === 'virtio_device_ready_noirq')).toHaveLength(1);
  });

  it('a driver calling virtio_device_ready in restore() after a noirq restore trips the WARN', () => {
    const { dev } = frozen(
      noirqDriver({
        restore: (d: VirtioDevice) => {
          virtioDeviceReady(d);
          return 0;
        },
      }),
    );
    virtioDeviceRestoreNoirq(dev);
    virtioDeviceRestore(dev);
    expect(dev.warnings.map((w) => w.where)).toEqual(['virtio_device_ready']);
  });

  it('the normal reinit run in a noirq phase is flagged by the context checker', () => {
    const drv = driver({ freeze: () => 0, restore: () => 0 });
    const f = bound(drv);
    virtioDeviceFreeze(f.dev);
    kernel.noirqDepth++;
    try {
      virtioDeviceRestore(f.dev);
    } finally {
      kernel.noirqDepth--;
    }
    const flagged = f.dev.warnings.filter((w) => w.kind === 'noirq-context').map((w) => w.what);
    expect(flagged).toContain('might_sleep');
    expect(flagged).toContain('spin_lock_irq');
  });
});
