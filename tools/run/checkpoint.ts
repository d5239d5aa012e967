// The two points a run can have (RunSettings.point): `--snapshot-at N FILE`
// writes a snapshot file there and runs on; `--restore FILE` runs the same
// steps again up to there and then continues on a new device worker
// loaded from the file.
//
// Why the steps run again: the TypeScript kernel model's state is objects
// on this thread (virtqueue shadows, the DMA allocator, driver state, the
// PM lists), which no file carries. Its state at a step boundary follows
// from the steps alone (the data the devices returned does not change it),
// so running them again brings a new kernel to the file's point; the check
// below holds it to that, and the devices and guest RAM then come from the
// file, through the same validated restore as the API.
import type { Machine } from '../../emulator/machine.js';
import { decodeSnapshot } from '../../emulator/snapshot/format.js';
import { UsageError } from '../usage-error.js';
import type { RunContext, RunPoint } from './plan.js';
import { readRunSnapshot, writeRunSnapshot, type RunSnapshot } from './snapshot-file.js';

/** What --snapshot-at N means, for messages. */
function where(ctx: RunContext | null, at: number, scenario: boolean): string {
  return scenario || ctx?.settings.scenario !== undefined ? `steps[${at}]` : at === 0 ? 'the first I/O check' : `PM cycle ${at}`;
}

/** Write FILE at the point; the run goes on. */
export function snapshotPoint(at: number, file: string, run: RunSnapshot['run']): RunPoint {
  return {
    at,
    report: { kind: 'snapshot', file, at },
    done: false,
    reached(ctx) {
      const m = ctx.sys.machine;
      const r = m.control({ op: 'snapshot' });
      if (!r.ok) throw new Error(r.error);
      writeRunSnapshot(file, { run, at, doc: r.value as Uint8Array, ram: m.mem.u8 });
    },
  };
}

type DeviceView = Record<string, unknown>;

/** What the kernel's driving decided, per device: status, features, each queue's layout and the device's position in it. */
function drivenState(doc: Uint8Array): string[] {
  const out: string[] = [];
  for (const d of decodeSnapshot(doc).devices) {
    const dev = d.device as DeviceView;
    out.push(`slot ${d.slot} Status 0x${(dev['status'] as number).toString(16)}`, `slot ${d.slot} features ${JSON.stringify(dev['negotiated'])}`);
    (dev['queues'] as DeviceView[]).forEach((q, i) => {
      const ring = (q['ring'] ?? {}) as DeviceView;
      const pos = ['nextAvail', 'nextUsed', 'availWrap', 'usedWrap'].filter((k) => k in ring).map((k) => `${k} ${String(ring[k])}`);
      out.push(`slot ${d.slot} queue ${i} ${String(q['kind'])} ${q['ready'] ? 'ready' : 'not ready'} ${JSON.stringify(q['regs'])} ${pos.join(' ')}`);
    });
  }
  return out;
}

/** Run the steps up to the file's point, then move the kernel onto a new worker loaded from it. */
export function restorePoint(file: string, snap: RunSnapshot): RunPoint {
  let spare: Machine | null = null;
  const point: RunPoint = {
    at: snap.at,
    report: { kind: 'restore', file, at: snap.at },
    done: false,
    /** The new worker first: the file's document is checked against it before any step runs. */
    async prepare(ctx) {
      const m = await ctx.sys.spareMachine();
      const c = m.control({ op: 'restore', doc: snap.doc, check: true });
      if (!c.ok) {
        await m.close();
        throw new UsageError(`snapshot file '${file}': ${c.error}`);
      }
      // Closed with the system if the point is never reached.
      spare = m;
    },
    reached(ctx) {
      const r = ctx.sys.machine.control({ op: 'snapshot' });
      if (!r.ok) throw new Error(r.error);
      const here = drivenState(r.value as Uint8Array);
      const there = drivenState(snap.doc);
      const i = here.findIndex((line, k) => line !== there[k]);
      if (i >= 0 || here.length !== there.length) {
        throw new UsageError(
          `snapshot file '${file}': the run's steps up to ${where(ctx, snap.at, snap.run.scenario !== undefined)} do not reach the file's state (${here[i] ?? 'nothing'}; the file has ${there[i] ?? 'nothing'}): it is not a snapshot of this run`,
        );
      }
      ctx.sys.switchMachine(spare!, { doc: snap.doc, ram: snap.ram });
    },
  };
  return point;
}

export { readRunSnapshot };
