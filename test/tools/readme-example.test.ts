// The README's embedding example, run as written, with the output it shows,
// and type-checked as strict TypeScript against the built package.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const TSC = `${root}node_modules/typescript/bin/tsc`;

function embeddingExample(): { code: string; shown: string[] } {
  const readme = readFileSync(`${root}README.md`, 'utf8');
  const section = readme.slice(readme.indexOf('## Embedding API'));
  const code = /```ts\n([\s\S]*?)```/.exec(section)![1]!;
  const shown = /It prints[^\n]*\n\n```\n([\s\S]*?)```/.exec(section)![1]!.trim().split('\n');
  return { code, shown };
}

/** tsc --noEmit --strict over one file that imports 'virtio-mmio-emu' (the package itself, by its exports and types). */
async function typecheck(code: string): Promise<{ ok: boolean; out: string }> {
  // Inside the package, so the bare specifier resolves to the package itself.
  const dir = mkdtempSync(join(root, 'dist', 'readme-tsc-'));
  const file = join(dir, 'example.ts');
  writeFileSync(file, code);
  // A project of its own: what a user's strict project would say, not the repository's settings.
  const compilerOptions = { strict: true, noEmit: true, target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', types: ['node'], skipLibCheck: true };
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['example.ts'] }));
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [TSC, '-p', join(dir, 'tsconfig.json')], { timeout: 120_000, cwd: root });
    return { ok: true, out: stdout };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

it('the embedding example in README.md runs and prints what the README says', async () => {
  const { code, shown } = embeddingExample();
  // Inside the package, so the bare specifier resolves to the package itself.
  const file = `${root}dist/readme-example.mjs`;
  writeFileSync(file, code);
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [file], { timeout: 30_000 });
    const got = stdout.trim().split('\n');
    expect(got).toHaveLength(shown.length);
    got.forEach((line, i) => {
      // the clock reading is the only value that varies
      if (shown[i]!.startsWith('clock read')) expect(line).toMatch(/^clock read in restore\(\): \[ \d+n \]$/);
      else expect(line).toBe(shown[i]);
    });
  } finally {
    rmSync(file, { force: true });
  }
});

describe('the embedding example under strict TypeScript', () => {
  it('compiles against the built package', async () => {
    const r = await typecheck(embeddingExample().code);
    expect(r.out).toBe('');
    expect(r.ok).toBe(true);
  }, 120_000);

  it("does not compile with a device type that does not exist ('nvme')", async () => {
    const { code } = embeddingExample();
    expect(code).toContain("devices: ['rng', 'rtc']");
    const r = await typecheck(code.replace("devices: ['rng', 'rtc']", "devices: ['rng', 'nvme']"));
    expect(r.ok).toBe(false);
    expect(r.out).toMatch(/example\.ts\(\d+,\d+\): error TS\d+:/);
    expect(r.out).toMatch(/Type '"nvme"' is not assignable to type 'MachineDeviceEntry'/);
  }, 120_000);
});

it('the scenario block in README.md is scenarios/default.json, and its pm step example passes added to it', async () => {
  const readme = readFileSync(`${root}README.md`, 'utf8');
  const section = readme.slice(readme.indexOf('### Scenario files'));
  const [shown, step] = [...section.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]!);
  expect(shown).toBe(readFileSync(`${root}scenarios/default.json`, 'utf8'));
  const scenario = JSON.parse(shown!) as { steps: unknown[] };
  scenario.steps.push(JSON.parse(step!));
  const file = `${root}dist/readme-scenario.json`;
  writeFileSync(file, JSON.stringify(scenario));
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [`${root}dist/tools/cli.js`, 'run', '--scenario', file, '--json'], {
      timeout: 60_000,
    });
    const r = JSON.parse(stdout) as { ok: boolean; pm: { kind: string; result: string; failedStep?: string }[] };
    expect(r.ok).toBe(true);
    expect(r.pm.map((c) => [c.kind, c.result, c.failedStep ?? null])).toEqual([
      ['suspend', '0', null],
      ['hibernate', '0', null],
      ['hibernate', '-EBUSY', 'freeze_noirq'],
    ]);
  } finally {
    rmSync(file, { force: true });
  }
}, 60_000);
