// What the package ships and says of itself: the tarball's file list (no
// tests, no source maps, no extracted Linux sources, the licence and the
// changelog), the public entry points, the version, and the fuzz command's
// optional dependency. CI also installs the packed tarball into an empty
// package and runs its bin (.ci/run).
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FUZZ_TARGETS } from '../../tools/fuzz/campaign.js';
import { FUZZ_PROPERTY_NAMES } from '../../tools/fuzz/property-names.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = fileURLToPath(new URL('../../../bin/virtio-emu.js', import.meta.url));
const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as {
  version: string;
  exports: Record<string, unknown>;
  dependencies: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
};

describe('the npm package', () => {
  it('packs the built code, the bin, the scenarios, README, CHANGELOG and LICENSE, and nothing of the tests', () => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
    const files = (JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
    for (const f of ['package.json', 'README.md', 'CHANGELOG.md', 'LICENSE', 'bin/virtio-emu.js', 'scenarios/default.json', 'dist/tools/api.js', 'dist/tools/api.d.ts', 'dist/tools/cli.js', 'dist/emulator/worker.js', 'dist/emulator/board.js']) {
      expect(files).toContain(f);
    }
    expect(files.filter((f) => f.startsWith('dist/test/') || f.endsWith('.map') || f.startsWith('dist/linux/src/'))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
  });

  it('exports the public entry point and package.json only', () => {
    expect(Object.keys(pkg.exports).sort()).toEqual(['.', './package.json']);
  });

  it('--version prints the package version', () => {
    const r = spawnSync(process.execPath, [BIN, '--version'], { encoding: 'utf8' });
    expect({ code: r.status, out: r.stdout, err: r.stderr }).toEqual({ code: 0, out: `virtio-emu ${pkg.version}\n`, err: '' });
  });

  it('fast-check is an optional peer, needed only by virtio-emu fuzz; the help lists every property without loading it', () => {
    expect(pkg.dependencies['fast-check']).toBeUndefined();
    expect(pkg.peerDependenciesMeta?.['fast-check']?.optional).toBe(true);
    expect(FUZZ_TARGETS.map((t) => t.name)).toEqual([...FUZZ_PROPERTY_NAMES]);
    const r = spawnSync(process.execPath, [BIN, 'fuzz', '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    for (const name of FUZZ_PROPERTY_NAMES) expect(r.stdout).toContain(name);
  });
});
