// The hibernation image: the kernel's memory at snapshot time. Guest RAM is
// saved as bytes; the kernel model's own state (devices, virtqueues, DMA
// allocator, PM lists) is saved by walking its object graph and copying
// every object's fields, so that restoring writes them back in place, as
// jumping into the image brings back the image kernel's memory.

import { isOutOfImage } from '../kernel.js';

type Saved =
  | { kind: 'object'; fields: [string, unknown][] }
  | { kind: 'array'; items: unknown[] }
  | { kind: 'map'; entries: [unknown, unknown][] }
  | { kind: 'set'; values: unknown[] }
  | { kind: 'bytes'; bytes: Uint8Array };

function skipped(o: object): boolean {
  if (isOutOfImage(o)) return true;
  if (typeof o === 'function') return true;
  if (ArrayBuffer.isView(o)) return o.buffer instanceof SharedArrayBuffer; // guest RAM: saved as bytes
  if (o instanceof SharedArrayBuffer || o instanceof ArrayBuffer) return true;
  if (o instanceof Promise || o instanceof WeakMap || o instanceof WeakSet) return true;
  return false;
}

export class KernelImage {
  private readonly saved = new Map<object, Saved>();
  private readonly ram: Uint8Array | null;
  private readonly ramCopy: Uint8Array | null;

  private constructor(ram: Uint8Array | null) {
    this.ram = ram;
    this.ramCopy = ram ? ram.slice() : null;
  }

  /** Save guest RAM and everything reachable from roots. */
  static capture(roots: object[], ram: Uint8Array | null = null): KernelImage {
    const img = new KernelImage(ram);
    const stack: object[] = [...roots];
    while (stack.length) {
      const o = stack.pop()!;
      if (img.saved.has(o) || skipped(o)) continue;
      const s = save(o);
      img.saved.set(o, s);
      for (const v of children(s)) if (v !== null && typeof v === 'object') stack.push(v);
    }
    return img;
  }

  /** Number of objects saved (for reports and tests). */
  get objects(): number {
    return this.saved.size;
  }

  /** Jump into the image: every saved object and guest RAM as they were. */
  restore(): void {
    if (this.ram && this.ramCopy) this.ram.set(this.ramCopy);
    for (const [o, s] of this.saved) load(o, s);
  }
}

function save(o: object): Saved {
  if (Array.isArray(o)) return { kind: 'array', items: [...o] };
  if (o instanceof Map) return { kind: 'map', entries: [...o.entries()] };
  if (o instanceof Set) return { kind: 'set', values: [...o.values()] };
  if (ArrayBuffer.isView(o)) return { kind: 'bytes', bytes: new Uint8Array(o.buffer, o.byteOffset, o.byteLength).slice() };
  const rec = o as Record<string, unknown>;
  return { kind: 'object', fields: Object.keys(o).map((k) => [k, rec[k]]) };
}

function children(s: Saved): unknown[] {
  switch (s.kind) {
    case 'object':
      return s.fields.map(([, v]) => v);
    case 'array':
      return s.items;
    case 'map':
      return s.entries.flat();
    case 'set':
      return s.values;
    case 'bytes':
      return [];
  }
}

function load(o: object, s: Saved): void {
  switch (s.kind) {
    case 'object': {
      const rec = o as Record<string, unknown>;
      for (const k of Object.keys(o)) if (!s.fields.some(([f]) => f === k)) delete rec[k];
      for (const [k, v] of s.fields) rec[k] = v;
      return;
    }
    case 'array': {
      const a = o as unknown[];
      a.length = 0;
      a.push(...s.items);
      return;
    }
    case 'map': {
      const m = o as Map<unknown, unknown>;
      m.clear();
      for (const [k, v] of s.entries) m.set(k, v);
      return;
    }
    case 'set': {
      const st = o as Set<unknown>;
      st.clear();
      for (const v of s.values) st.add(v);
      return;
    }
    case 'bytes': {
      const v = o as ArrayBufferView;
      new Uint8Array(v.buffer, v.byteOffset, v.byteLength).set(s.bytes);
      return;
    }
  }
}
