// Errors the Linux kernel instance raises on the host.

const ERRNO: Record<number, string> = {
  1: 'EPERM',
  2: 'ENOENT',
  4: 'EINTR',
  5: 'EIO',
  6: 'ENXIO',
  7: 'E2BIG',
  11: 'EAGAIN',
  12: 'ENOMEM',
  14: 'EFAULT',
  16: 'EBUSY',
  17: 'EEXIST',
  19: 'ENODEV',
  22: 'EINVAL',
  28: 'ENOSPC',
  34: 'ERANGE',
  38: 'ENOSYS',
  61: 'ENODATA',
  95: 'EOPNOTSUPP',
  110: 'ETIMEDOUT',
  512: 'ERESTARTSYS',
  515: 'ENOIOCTLCMD',
  517: 'EPROBE_DEFER',
  524: 'ENOTSUPP',
};

/** "-ENODEV" for -19 (the errno values of the shim's linux/errno.h). */
export function linuxErrnoName(ret: number): string {
  if (ret === 0) return '0';
  const n = ERRNO[Math.abs(ret)];
  return n ? (ret < 0 ? `-${n}` : n) : String(ret);
}

/**
 * BUG()/BUG_ON() or panic() in the C code. The wasm stack was unwound by
 * this throw, so the kernel instance is dead: every later call refuses.
 */
export class LinuxBugError extends Error {
  constructor(
    readonly kind: 'BUG' | 'panic',
    /** The C file as compiled: "drivers/virtio/virtio.c", "linux/glue/mm.c". */
    readonly file: string,
    readonly line: number,
    /** The function (BUG) or null (panic). */
    readonly func: string | null,
    /** "BUG()", "BUG_ON(status == 0)", or the panic message. */
    readonly what: string,
  ) {
    super(kind === 'BUG' ? `kernel BUG at ${file}:${line}${func ? ` (${func})` : ''}: ${what}` : `Kernel panic at ${file}:${line}: ${what}`);
    this.name = 'LinuxBugError';
  }
}

/** An uninterruptible wait that no interrupt completed within the host's deadline (a hung task). */
export class LinuxHangError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly waitedMs: number,
  ) {
    super(`wait_for_completion at ${file}:${line} was not completed within ${waitedMs} ms: the task hangs`);
    this.name = 'LinuxHangError';
  }
}

/** A call into a kernel instance that died earlier (BUG, panic, hang, bus error) or was closed. */
export class LinuxDeadError extends Error {
  constructor(readonly reason: unknown) {
    super(`the Linux kernel instance is dead: ${reason instanceof Error ? reason.message : String(reason)}`);
    this.name = 'LinuxDeadError';
  }
}

/** A kernel function returned an error code where the host needed success. */
export class LinuxCallError extends Error {
  constructor(
    readonly op: string,
    readonly errno: number,
  ) {
    super(`${op}: ${linuxErrnoName(errno)}`);
    this.name = 'LinuxCallError';
  }
}
