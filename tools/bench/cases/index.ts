// Every benchmark group, in report order. Add a group: a file in this
// directory exporting its cases, then one line here.
import type { BenchCase } from '../case.js';
import { cases as blk } from './blk.js';
import { cases as datapath } from './datapath.js';
import { cases as idle } from './idle.js';
import { cases as linux } from './linux.js';
import { baselineCases, floorCases } from './mailbox.js';
import { cases as peers } from './peers.js';
import { cases as probePm } from './probe-pm.js';
import { cases as registers } from './registers.js';
import { cases as scale } from './scale.js';

export const allCases: BenchCase[] = [
  ...floorCases,
  ...registers,
  ...baselineCases,
  ...peers,
  ...probePm,
  ...linux,
  ...datapath,
  ...blk,
  ...scale,
  ...idle,
];
