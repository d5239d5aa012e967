// Linux errno values, returned negated as the C code does (-EINVAL etc.).
export const EPERM = 1;
export const ENOENT = 2;
export const EIO = 5;
export const ENXIO = 6;
export const E2BIG = 7;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EBUSY = 16;
export const ENODEV = 19;
export const EINVAL = 22;
export const ENOSPC = 28;
export const EOPNOTSUPP = 95;
export const ETIMEDOUT = 110;
export const EDEADLK = 35;

const NAMES: Record<number, string> = {
  [EPERM]: 'EPERM',
  [ENOENT]: 'ENOENT',
  [EIO]: 'EIO',
  [ENXIO]: 'ENXIO',
  [E2BIG]: 'E2BIG',
  [EAGAIN]: 'EAGAIN',
  [ENOMEM]: 'ENOMEM',
  [EBUSY]: 'EBUSY',
  [ENODEV]: 'ENODEV',
  [EINVAL]: 'EINVAL',
  [ENOSPC]: 'ENOSPC',
  [EOPNOTSUPP]: 'EOPNOTSUPP',
  [ETIMEDOUT]: 'ETIMEDOUT',
  [EDEADLK]: 'EDEADLK',
};

/** "-EINVAL" for -22, "0" for 0. */
export function errnoName(ret: number): string {
  if (ret === 0) return '0';
  const n = NAMES[Math.abs(ret)];
  return n ? (ret < 0 ? `-${n}` : n) : String(ret);
}

/** errno by name ("EIO" or "-EIO" → 5); undefined if unknown. */
export function errnoByName(name: string): number | undefined {
  const bare = name.replace(/^-/, '').toUpperCase();
  for (const [k, v] of Object.entries(NAMES)) if (v === bare) return Number(k);
  return undefined;
}
