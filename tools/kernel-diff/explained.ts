// Differences between the model and Linux 6.12 that are version differences
// (the model follows the newer tree the noirq patch is based on), each with
// the Linux change that explains it. kernel-diff reports a scenario that
// differs only in such a way as "explained", with this text; the README
// lists the same entries. A difference that matches none is a model bug.
import type { ResultDifference, TraceDifference } from './compare.js';
import type { DiffScenario } from './scenarios.js';

export interface ExplainedDifference {
  id: string;
  /** The Linux change and what it does to the register trace. */
  reason: string;
  matches(s: DiffScenario, trace: TraceDifference | null, results: readonly ResultDifference[]): boolean;
}

export const EXPLAINED: readonly ExplainedDifference[] = [];

export function explain(s: DiffScenario, trace: TraceDifference | null, results: readonly ResultDifference[]): string | undefined {
  return EXPLAINED.find((e) => e.matches(s, trace, results))?.reason;
}
