// The layout's rules, read from the sources' own imports (type-only imports
// count: a circle of types is still a circle). A new arrow that breaks one
// fails here, so the wings cannot grow back into each other.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WINGS = ['core', 'transports', 'emulator', 'linux', 'tools'];

function sources(dir: string): string[] {
  let out: string[] = [];
  let names: string[];
  try {
    names = readdirSync(join(ROOT, dir));
  } catch {
    return out;
  }
  for (const n of names) {
    const p = join(dir, n);
    if (statSync(join(ROOT, p)).isDirectory()) out = out.concat(sources(p));
    else if (n.endsWith('.ts') && !n.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

const SPEC = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g;

/** file → the repository files it imports (relative specifiers only). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const wing of WINGS) {
    for (const file of sources(wing)) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      const deps: string[] = [];
      for (const m of text.matchAll(SPEC)) {
        const target = normalize(join(dirname(file), m[1]!)).replace(/\.js$/, '.ts');
        deps.push(target);
      }
      graph.set(file, deps);
    }
  }
  return graph;
}

/** Strongly connected components with more than one file (Tarjan). */
function circles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

const graph = importGraph();

function arrows(from: string, to: string, except: string[] = []): string[] {
  const hits: string[] = [];
  for (const [file, deps] of graph) {
    if (!file.startsWith(from) || except.some((e) => file.startsWith(e))) continue;
    for (const d of deps) if (d.startsWith(to)) hits.push(`${file} -> ${relative('.', d)}`);
  }
  return hits;
}

describe('architecture', () => {
  it('reads the sources of every wing', () => {
    expect(graph.size).toBeGreaterThan(120);
    expect([...graph.keys()].some((f) => f.startsWith('tools/'))).toBe(true);
  });

  it('has no import circle anywhere', () => {
    expect(circles(graph)).toEqual([]);
  });

  it('keeps the ground floor on its own: core/uapi imports nothing else', () => {
    const hits = [...graph].flatMap(([f, deps]) =>
      f.startsWith('core/uapi/') ? deps.filter((d) => !d.startsWith('core/uapi/')).map((d) => `${f} -> ${d}`) : [],
    );
    expect(hits).toEqual([]);
  });

  it('the driver side (core, transports) sees only the bus, never the hardware or the tools', () => {
    for (const side of ['core/', 'transports/']) {
      for (const wing of ['emulator/', 'tools/', 'linux/']) expect(arrows(side, wing)).toEqual([]);
    }
    expect(arrows('core/', 'transports/')).toEqual([]);
  });

  it('the hardware never imports a tool, a transport or a kernel', () => {
    for (const wing of ['tools/', 'transports/', 'linux/']) expect(arrows('emulator/', wing)).toEqual([]);
  });

  it('device models never know their transport; the ring never knows the devices', () => {
    expect(arrows('emulator/devices/', 'emulator/mmio/')).toEqual([]);
    expect(arrows('emulator/devices/', 'emulator/ccw/')).toEqual([]);
    expect(arrows('emulator/vring/', 'emulator/devices/')).toEqual([]);
    expect(arrows('emulator/vring/', 'emulator/virtio/')).toEqual([]);
  });

  it('the Linux kernel wing uses the hardware and the driver-side contracts, never the tools', () => {
    expect(arrows('linux/', 'tools/')).toEqual([]);
  });

  it('a CLI module is imported only by the dispatcher and other CLI modules', () => {
    expect(arrows('tools/', 'tools/cli/', ['tools/cli/', 'tools/cli.ts'])).toEqual([]);
  });

  it('the circle check finds a circle when there is one', () => {
    const g = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['c.ts']],
      ['c.ts', ['a.ts']],
      ['d.ts', ['a.ts']],
    ]);
    expect(circles(g)).toEqual([['a.ts', 'b.ts', 'c.ts']]);
  });
});
