// Atomics.waitAsync (ES2024; in Node 20) with its types: the project's
// TypeScript lib is ES2022, which does not declare it.
export type WaitAsyncResult =
  | { async: false; value: 'not-equal' | 'timed-out' }
  | { async: true; value: Promise<'ok' | 'timed-out'> };

type WaitAsyncFn = (ta: Int32Array, index: number, value: number, timeoutMs?: number) => WaitAsyncResult;

const impl = (Atomics as unknown as { waitAsync: WaitAsyncFn }).waitAsync;

/**
 * Wait without blocking the thread until ta[index] != value is notified, or
 * timeoutMs passes. A pending wait does not keep the event loop alive.
 */
export function waitAsync(ta: Int32Array, index: number, value: number, timeoutMs = Infinity): WaitAsyncResult {
  return impl(ta, index, value, timeoutMs);
}
