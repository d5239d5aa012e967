// Execution of one channel program: the ORB that START SUBCHANNEL names, the
// chain of format-1 CCWs it points to, and the ending status the subchannel
// then presents. Everything the guest supplies (ORB, CCW addresses, flags,
// counts) is checked here; a bad program ends with a unit check, never an
// exception or an endless walk.
import {
  CCW1,
  CCW_FLAG_CC,
  CCW_FLAG_SLI,
  DEV_STAT_CHN_END,
  DEV_STAT_DEV_END,
  DEV_STAT_UNIT_CHECK,
  ORB,
  SCHN_STAT_CHN_DATA_CHK,
  SCHN_STAT_INCORR_LEN,
  SCHN_STAT_PROG_CHECK,
  SCSW_FCTL_START_FUNC,
  SCSW_STCTL_ALERT_STATUS,
  SCSW_STCTL_PRIM_STATUS,
  SCSW_STCTL_SEC_STATUS,
  SCSW_STCTL_STATUS_PEND,
  SNS0_CMD_REJECT,
} from '../../core/uapi/ccw.js';
import { addr64, type GuestRam } from '../vring/guest-ram.js';

/** Longest command chain a program may have; virtio-ccw drivers use one CCW. */
export const MAX_CCW_CHAIN = 256;

/** Flags this channel subsystem implements; any other flag ends the program. */
const SUPPORTED_FLAGS = CCW_FLAG_CC | CCW_FLAG_SLI;

/** One fetched CCW. */
export interface Ccw {
  /** Guest-physical address of the CCW itself. */
  addr: number;
  cmd: number;
  flags: number;
  count: number;
  cda: number;
}

/**
 * Why a command or program was refused. All end with unit check and
 * command-reject sense; the channel status adds what QEMU's channel
 * subsystem reports for the class: incorrect length, channel data check
 * (data area outside RAM), program check (bad ORB, CCW address, flags or
 * chain length); a plain reject (unknown or refused command) adds nothing.
 */
export type CcwError = 'reject' | 'length' | 'address' | 'program';

export type CcwOutcome =
  | { ok: true; transferred: number }
  /** quiet: not counted as a guest error (a reject a correct driver expects, or one the device core counted already). */
  | { ok: false; error: CcwError; why: string; quiet?: boolean };

export interface CcwCommandHandler {
  execute(ccw: Ccw): CcwOutcome;
  /** A refused program, for the device's guest-error counters. */
  guestError(msg: string): void;
}

/** The status a subchannel presents when the program ends (SCSW fields and sense byte 0). */
export interface EndingStatus {
  intparm: number;
  fctl: number;
  stctl: number;
  /** Address of the last CCW executed + 8. */
  cpa: number;
  dstat: number;
  cstat: number;
  /** Residual count of the last CCW. */
  count: number;
  sense0: number;
}

const CSTAT: Record<CcwError, number> = {
  reject: 0,
  length: SCHN_STAT_INCORR_LEN,
  address: SCHN_STAT_CHN_DATA_CHK,
  program: SCHN_STAT_PROG_CHECK,
};

export function fail(error: CcwError, why: string): CcwOutcome {
  return { ok: false, error, why };
}

/** A command reject that is no guest error (a capability probe, or a refusal the device core counted). */
export function quietReject(why: string): CcwOutcome {
  return { ok: false, error: 'reject', why, quiet: true };
}

/** Unsolicited status: an indicator was set while the subchannel was idle. */
export function alertStatus(): EndingStatus {
  return { intparm: 0, fctl: 0, stctl: SCSW_STCTL_ALERT_STATUS | SCSW_STCTL_STATUS_PEND, cpa: 0, dstat: 0, cstat: 0, count: 0, sense0: 0 };
}

function ended(intparm: number, cpa: number, count: number): EndingStatus {
  return {
    intparm,
    fctl: SCSW_FCTL_START_FUNC,
    stctl: SCSW_STCTL_PRIM_STATUS | SCSW_STCTL_SEC_STATUS | SCSW_STCTL_STATUS_PEND,
    cpa,
    dstat: DEV_STAT_CHN_END | DEV_STAT_DEV_END,
    cstat: 0,
    count,
    sense0: 0,
  };
}

/** Unit check with command-reject sense, and the channel status of the error class. */
export function unitCheck(intparm: number, cpa: number, count: number, error: CcwError): EndingStatus {
  return {
    ...ended(intparm, cpa, count),
    stctl: SCSW_STCTL_PRIM_STATUS | SCSW_STCTL_SEC_STATUS | SCSW_STCTL_ALERT_STATUS | SCSW_STCTL_STATUS_PEND,
    dstat: DEV_STAT_CHN_END | DEV_STAT_DEV_END | DEV_STAT_UNIT_CHECK,
    cstat: CSTAT[error],
    sense0: SNS0_CMD_REJECT,
  };
}

/** Fetch the CCW at addr, or null if it is not doubleword aligned inside RAM. */
function fetchCcw(ram: GuestRam, addr: number): Ccw | null {
  if (addr % CCW1.ALIGN !== 0 || !ram.contains(addr, CCW1.SIZE)) return null;
  return {
    addr,
    cmd: ram.u8[addr - ram.base + CCW1.cmd_code]!,
    flags: ram.u8[addr - ram.base + CCW1.flags]!,
    count: ram.readU16(addr + CCW1.count),
    cda: ram.readU32(addr + CCW1.cda),
  };
}

/**
 * Run the program whose ORB is at orbAddr. Commands run in chain order
 * until one without command chaining ends the program, or one fails.
 */
export function runChannelProgram(ram: GuestRam, orbAddr: number, handler: CcwCommandHandler): EndingStatus {
  if (orbAddr % ORB.ALIGN !== 0 || !ram.contains(orbAddr, ORB.SIZE)) {
    // s390 would raise a program check on the instruction; without one the
    // intparm is unknown, so the status carries 0.
    handler.guestError(`SSCH: ORB at 0x${orbAddr.toString(16)} is not a 4-aligned block inside RAM`);
    return unitCheck(0, 0, 0, 'program');
  }
  const intparm = ram.readU32(orbAddr + ORB.intparm);
  let addr = ram.readU32(orbAddr + ORB.cpa);
  for (let n = 0; ; n++) {
    if (n === MAX_CCW_CHAIN) {
      handler.guestError(`channel program longer than ${MAX_CCW_CHAIN} CCWs`);
      return unitCheck(intparm, addr, 0, 'program');
    }
    const ccw = fetchCcw(ram, addr);
    if (!ccw) {
      handler.guestError(`CCW at 0x${addr.toString(16)} is not doubleword aligned inside RAM`);
      return unitCheck(intparm, addr, 0, 'program');
    }
    const next = addr + CCW1.SIZE;
    if (ccw.flags & ~SUPPORTED_FLAGS) {
      handler.guestError(`CCW 0x${ccw.cmd.toString(16)}: unsupported flags 0x${(ccw.flags & ~SUPPORTED_FLAGS).toString(16)}`);
      return unitCheck(intparm, next, ccw.count, 'program');
    }
    const r = handler.execute(ccw);
    if (!r.ok) {
      if (!r.quiet) handler.guestError(`CCW 0x${ccw.cmd.toString(16)}: ${r.why}`);
      return unitCheck(intparm, next, ccw.count, r.error);
    }
    if (!(ccw.flags & CCW_FLAG_CC)) return ended(intparm, next, ccw.count - r.transferred);
    addr = next;
  }
}

/** A 64-bit guest address from the two u32 halves at addr (Infinity above 2^53). */
export function readAddr64(ram: GuestRam, addr: number): number {
  return addr64(ram.readU32(addr), ram.readU32(addr + 4));
}
