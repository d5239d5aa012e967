// The README's embedding example, run as written, with the output it shows.
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));

it('the embedding example in README.md runs and prints what the README says', async () => {
  const readme = readFileSync(`${root}README.md`, 'utf8');
  const section = readme.slice(readme.indexOf('## Embedding API'));
  const code = /```js\n([\s\S]*?)```/.exec(section)![1]!;
  const shown = /It prints[^\n]*\n\n```\n([\s\S]*?)```/.exec(section)![1]!.trim().split('\n');
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
