// include/linux/pm.h: PM messages and the callback tables. The callback a
// phase runs is chosen from the message, as pm_op/pm_late_early_op/
// pm_noirq_op do in drivers/base/power/main.c.

export const PM_EVENT_ON = 0x0000;
export const PM_EVENT_FREEZE = 0x0001;
export const PM_EVENT_SUSPEND = 0x0002;
export const PM_EVENT_HIBERNATE = 0x0004;
export const PM_EVENT_QUIESCE = 0x0008;
export const PM_EVENT_RESUME = 0x0010;
export const PM_EVENT_THAW = 0x0020;
export const PM_EVENT_RESTORE = 0x0040;
export const PM_EVENT_RECOVER = 0x0080;

export interface PmMessage {
  readonly event: number;
  readonly name: string;
}

export const PMSG_ON: PmMessage = { event: PM_EVENT_ON, name: 'on' };
export const PMSG_FREEZE: PmMessage = { event: PM_EVENT_FREEZE, name: 'freeze' };
export const PMSG_QUIESCE: PmMessage = { event: PM_EVENT_QUIESCE, name: 'quiesce' };
export const PMSG_SUSPEND: PmMessage = { event: PM_EVENT_SUSPEND, name: 'suspend' };
export const PMSG_HIBERNATE: PmMessage = { event: PM_EVENT_HIBERNATE, name: 'hibernate' };
export const PMSG_RESUME: PmMessage = { event: PM_EVENT_RESUME, name: 'resume' };
export const PMSG_THAW: PmMessage = { event: PM_EVENT_THAW, name: 'thaw' };
export const PMSG_RESTORE: PmMessage = { event: PM_EVENT_RESTORE, name: 'restore' };
export const PMSG_RECOVER: PmMessage = { event: PM_EVENT_RECOVER, name: 'recover' };

/** The callbacks of struct dev_pm_ops (system sleep only). */
export const PM_CALLBACKS = [
  'prepare',
  'complete',
  'suspend',
  'resume',
  'freeze',
  'thaw',
  'poweroff',
  'restore',
  'suspend_late',
  'resume_early',
  'freeze_late',
  'thaw_early',
  'poweroff_late',
  'restore_early',
  'suspend_noirq',
  'resume_noirq',
  'freeze_noirq',
  'thaw_noirq',
  'poweroff_noirq',
  'restore_noirq',
] as const;

export type PmCallbackName = (typeof PM_CALLBACKS)[number];

export function isPmCallbackName(s: string): s is PmCallbackName {
  return (PM_CALLBACKS as readonly string[]).includes(s);
}

/** struct dev_pm_ops: each callback returns 0 or -errno. */
export type DevPmOps<D> = Partial<Record<PmCallbackName, (dev: D) => number>>;

type PmCallback<D> = (dev: D) => number;
type SleepOps<D> = Record<'suspend' | 'resume' | 'freeze' | 'thaw' | 'poweroff' | 'restore', PmCallback<D>>;
type NoirqSleepOps<D> = Record<'suspend_noirq' | 'resume_noirq' | 'freeze_noirq' | 'thaw_noirq' | 'poweroff_noirq' | 'restore_noirq', PmCallback<D>>;

/** SET_SYSTEM_SLEEP_PM_OPS(suspend, resume): suspend, freeze and poweroff map to the first, resume, thaw and restore to the second. */
export function setSystemSleepPmOps<D>(suspend: PmCallback<D>, resume: PmCallback<D>): SleepOps<D> {
  return { suspend, resume, freeze: suspend, thaw: resume, poweroff: suspend, restore: resume };
}

/** SET_NOIRQ_SYSTEM_SLEEP_PM_OPS(suspend, resume): the same mapping for the *_noirq callbacks. */
export function setNoirqSystemSleepPmOps<D>(suspend: PmCallback<D>, resume: PmCallback<D>): NoirqSleepOps<D> {
  return {
    suspend_noirq: suspend,
    resume_noirq: resume,
    freeze_noirq: suspend,
    thaw_noirq: resume,
    poweroff_noirq: suspend,
    restore_noirq: resume,
  };
}

/** pm_op(): the normal-phase callback for a message. */
export function pmOp(state: PmMessage): PmCallbackName | null {
  switch (state.event) {
    case PM_EVENT_SUSPEND:
      return 'suspend';
    case PM_EVENT_RESUME:
      return 'resume';
    case PM_EVENT_FREEZE:
    case PM_EVENT_QUIESCE:
      return 'freeze';
    case PM_EVENT_HIBERNATE:
      return 'poweroff';
    case PM_EVENT_THAW:
    case PM_EVENT_RECOVER:
      return 'thaw';
    case PM_EVENT_RESTORE:
      return 'restore';
  }
  return null;
}

/** pm_late_early_op() */
export function pmLateEarlyOp(state: PmMessage): PmCallbackName | null {
  const op = pmOp(state);
  if (!op) return null;
  return ({ suspend: 'suspend_late', resume: 'resume_early', freeze: 'freeze_late', poweroff: 'poweroff_late', thaw: 'thaw_early', restore: 'restore_early' } as const)[
    op as 'suspend' | 'resume' | 'freeze' | 'poweroff' | 'thaw' | 'restore'
  ];
}

/** pm_noirq_op() */
export function pmNoirqOp(state: PmMessage): PmCallbackName | null {
  const op = pmOp(state);
  if (!op) return null;
  return `${op}_noirq` as PmCallbackName;
}

/** resume_event(): the message that undoes a sleep message on abort. */
export function resumeEvent(sleepState: PmMessage): PmMessage {
  switch (sleepState.event) {
    case PM_EVENT_SUSPEND:
      return PMSG_RESUME;
    case PM_EVENT_FREEZE:
    case PM_EVENT_QUIESCE:
      return PMSG_RECOVER;
    case PM_EVENT_HIBERNATE:
      return PMSG_RESTORE;
  }
  return PMSG_ON;
}
