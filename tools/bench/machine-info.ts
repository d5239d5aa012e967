// What the numbers were measured on: they only compare within one run on one
// machine, so the report says which.
import * as os from 'node:os';
import { qemuVersion } from './qemu.js';

export interface MachineInfo {
  cpus: number;
  cpu_model: string;
  node: string;
  v8: string;
  platform: string;
  arch: string;
  total_mem_bytes: number;
  /** 1-minute load average when the run started: a busy machine inflates tails. */
  loadavg_1m: number;
  /** QEMU used as the peer, or null when it is not installed. */
  qemu: string | null;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpu_model: cpus[0]?.model ?? 'unknown',
    node: process.versions.node,
    v8: process.versions.v8,
    platform: process.platform,
    arch: process.arch,
    total_mem_bytes: os.totalmem(),
    loadavg_1m: Number(os.loadavg()[0]!.toFixed(2)),
    qemu: qemuVersion(),
  };
}
