// HI-20..HI-24: a user's disk image is never written by anything but the
// guest's own writes: the run's I/O check only reads it (or writes the
// scratch range it was given), a missing image is an error unless create=
// asks for one, odd sizes are refused, and a write acknowledged after FLUSH
// survives SIGKILL of the process.
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { executePlan } from '../../tools/run/execute.js';
import { buildPlan, defaultSettings } from '../../tools/run/plan.js';
import { preflightDevice } from '../../tools/scenario/preflight.js';

const BIN = new URL('../../../bin/virtio-emu.js', import.meta.url).pathname;
const DIST = new URL('../../', import.meta.url).href;
const dir = mkdtempSync(join(tmpdir(), 'vemu-disk-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');

function image(name: string, bytes: number): string {
  const p = join(dir, name);
  writeFileSync(p, randomBytes(bytes));
  return p;
}

function cli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => resolve({ code, out, err }));
  });
}

async function runBlk(options: Record<string, string | number | boolean>, cycles = 3): Promise<{ ok: boolean; warnings: string[] }> {
  const s = { ...defaultSettings(), devices: [{ type: 'blk' as const, transport: 'mmio' as const, options }], pm: 'suspend' as const, cycles };
  return executePlan(buildPlan(s));
}

describe('HI-20: the I/O check never writes a file-backed disk', () => {
  it('a run with sleep cycles reads the image only: same bytes, same mtime', async () => {
    const p = image('check.img', 1 << 20);
    const before = sha(p);
    const mtime = statSync(p).mtimeMs;
    const r = await runBlk({ file: p });
    expect(r.warnings).toEqual([]);
    expect(r.ok).toBe(true);
    expect(sha(p)).toBe(before);
    expect(statSync(p).mtimeMs).toBe(mtime);
  });

  it('scratch=SECTOR+COUNT lets the check write there, and nowhere else', async () => {
    const p = image('scratch.img', 1 << 20);
    const orig = readFileSync(p);
    const r = await runBlk({ file: p, scratch: '16+8' }, 1);
    expect(r.ok).toBe(true);
    const now = readFileSync(p);
    expect(now.subarray(0, 16 * 512).equals(orig.subarray(0, 16 * 512))).toBe(true);
    expect(now.subarray(24 * 512).equals(orig.subarray(24 * 512))).toBe(true);
    expect(now.subarray(16 * 512, 24 * 512).equals(orig.subarray(16 * 512, 24 * 512))).toBe(false);
    expect(preflightDevice({ type: 'blk', transport: 'mmio', options: { file: p, scratch: '2047+2' } }).error).toMatch(/scratch 2047\+2 goes past the end of the disk \(2048 sectors\)/);
  });

  it('SIGKILL in the middle of a long run leaves the image as it was', async () => {
    const p = image('kill.img', 1 << 20);
    const before = sha(p);
    const trace = join(dir, 'kill.trace');
    const child = spawn(process.execPath, [BIN, 'run', '--device', `blk,file=${p}`, '--pm', 'suspend', '--cycles', '1000000', '--json', '--trace', trace], { stdio: 'ignore' });
    // Progress without a clock: the trace grows as cycles run.
    while (!existsSync(trace) || statSync(trace).size < 256 * 1024) await new Promise((r) => setTimeout(r, 20));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(sha(p)).toBe(before);
  });
});

describe('HI-21: images are opened, never created or resized, unless asked', () => {
  it('a missing image is a usage error, and nothing is created', async () => {
    const p = join(dir, 'missing.img');
    const r = await cli(['run', '--device', `blk,file=${p}`]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/cannot open '.*missing\.img': no such file or directory \(give create=SIZE to make a new image\)\n$/);
    expect(r.err.trimEnd().split('\n')).toHaveLength(1);
    expect(existsSync(p)).toBe(false);
  });

  it('create=SIZE makes a missing image, reuses one of that size, and refuses one of another size', async () => {
    const p = join(dir, 'made.img');
    expect((await cli(['run', '--device', `blk,file=${p},create=1M`])).code).toBe(0);
    expect(statSync(p).size).toBe(1 << 20);
    expect((await cli(['run', '--device', `blk,file=${p},create=1M`])).code).toBe(0);
    const r = await cli(['run', '--device', `blk,file=${p},create=2M`]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/exists with 1048576 bytes, not the 2097152 of create=/);
    expect(statSync(p).size).toBe(1 << 20);
  });

  it('HI-22: a size that is not whole sectors, an empty image, size= past the end and a FIFO are refused, the file untouched', async () => {
    const odd = image('odd.img', 1000);
    const before = sha(odd);
    const r = await cli(['run', '--device', `blk,file=${odd}`]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/is 1000 bytes, not a whole number of 512-byte sectors/);
    expect(sha(odd)).toBe(before);
    // size= picks a prefix of whole sectors explicitly.
    expect(preflightDevice({ type: 'blk', transport: 'mmio', options: { file: odd, size: 512, ro: true } })).toEqual({ error: null, capacity: 1 });

    const empty = join(dir, 'empty.img');
    writeFileSync(empty, '');
    expect(preflightDevice({ type: 'blk', transport: 'mmio', options: { file: empty } }).error).toMatch(/is empty \(0 bytes\)/);

    const small = image('small.img', 4096);
    expect(preflightDevice({ type: 'blk', transport: 'mmio', options: { file: small, size: '1M' } }).error).toMatch(/larger than image .* never extended/);
    expect(statSync(small).size).toBe(4096);

    const fifo = join(dir, 'fifo.img');
    execFileSync('mkfifo', [fifo]);
    expect(preflightDevice({ type: 'blk', transport: 'mmio', options: { file: fifo } }).error).toMatch(/is not a regular file/);
    expect(preflightDevice({ type: 'blk', transport: 'mmio', options: { file: fifo, ro: true } }).error).toMatch(/is not a regular file/);
  });
});

describe('HI-23: durability', () => {
  it('a write acknowledged after FLUSH is in the image after the process is SIGKILLed', async () => {
    const p = join(dir, 'durable.img');
    writeFileSync(p, Buffer.alloc(1 << 20));
    const script = join(dir, 'writer.mjs');
    writeFileSync(
      script,
      `import { VirtioSystem } from '${DIST}tools/system.js';
import { virtblkFlush, virtblkWrite } from '${DIST}core/drivers/blk.js';
const sys = await VirtioSystem.create({ devices: [{ type: 'blk', options: { file: ${JSON.stringify(p)} } }] });
const data = new Uint8Array(8 * 512).map((_, i) => (i * 7 + 3) & 0xff);
if (virtblkWrite(sys.device(0), 100, data) !== data.length) process.exit(3);
if (virtblkFlush(sys.device(0)) !== 0) process.exit(4);
process.stdout.write('flushed\\n');
setInterval(() => {}, 1000);
`,
    );
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('flushed') && resolve());
      child.once('exit', (code) => reject(new Error(`writer exited with ${code}`)));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const got = readFileSync(p).subarray(100 * 512, 108 * 512);
    expect([...got]).toEqual(Array.from({ length: 8 * 512 }, (_, i) => (i * 7 + 3) & 0xff));
  });
});
