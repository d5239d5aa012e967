// A one-line progress bar for long runs (many sleep/wake cycles), drawn on a
// terminal only: never into a pipe or a file, and never with --json.

/** Runs with fewer cycles finish too soon for a bar to help. */
export const PROGRESS_MIN_CYCLES = 10;
/** Redraw at most this often (ms). */
const REDRAW_MS = 100;

export interface Progress {
  update(done: number, total: number): void;
  /** Clear the bar so the summary starts on a clean line. */
  end(): void;
}

export interface ProgressStream {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(s: string): boolean;
}

/** A bar on `stream` if it is a terminal and the run is long, else null. */
export function progressBar(totalCycles: number, opts: { json: boolean; stream?: ProgressStream }): Progress | null {
  const stream = opts.stream ?? process.stderr;
  if (opts.json || !stream.isTTY || totalCycles < PROGRESS_MIN_CYCLES) return null;
  let last = 0;
  let drawn = false;
  return {
    update(done, total) {
      const now = performance.now();
      if (done < total && now - last < REDRAW_MS) return;
      last = now;
      const label = ` ${done}/${total} cycles`;
      const width = Math.max(10, Math.min(50, (stream.columns ?? 80) - label.length - 3));
      const fill = Math.round((done / Math.max(1, total)) * width);
      stream.write(`\r[${'#'.repeat(fill)}${'-'.repeat(width - fill)}]${label}`);
      drawn = true;
    },
    end() {
      if (drawn) stream.write('\r\x1b[K');
      drawn = false;
    },
  };
}
