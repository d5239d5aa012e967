// SIGINT and SIGTERM for commands that run until told to stop (qtest) or
// whose long runs stop between two cycles and report what they did (run).
// A second signal while the first is being handled ends the process at once.
import { constants } from 'node:os';

const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

export interface StopListener {
  /** The first signal received, or null. */
  readonly signal: StopSignal | null;
  /** Resolves with the first signal. */
  readonly signalled: Promise<StopSignal>;
  /** Remove the handlers (the default action applies again). */
  dispose(): void;
}

/** The exit status of a process that stopped for `signal`, as a shell reports it (128 + its number). */
export function signalExitCode(signal: StopSignal): number {
  return 128 + constants.signals[signal];
}

export function listenForStop(): StopListener {
  let first: StopSignal | null = null;
  let fire: (s: StopSignal) => void = () => {};
  const signalled = new Promise<StopSignal>((resolve) => {
    fire = resolve;
  });
  const handlers = STOP_SIGNALS.map((s) => {
    const h = (): void => {
      if (first !== null) process.exit(signalExitCode(s));
      first = s;
      fire(s);
    };
    process.on(s, h);
    return [s, h] as const;
  });
  return {
    get signal() {
      return first;
    },
    signalled,
    dispose: () => {
      for (const [s, h] of handlers) process.off(s, h);
    },
  };
}
