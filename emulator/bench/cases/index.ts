// Every benchmark group, in report order. Add a group: a file in this
// directory exporting `cases: BenchCase[]`, then one line here.
import type { BenchCase } from '../registry.js';
import { cases as mailbox } from './mailbox.js';

export const allCases: BenchCase[] = [...mailbox];
