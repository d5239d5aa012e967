// The build's own checks (these run whether or not the module is built).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const BUILD = fileURLToPath(new URL('../../linux/build/build.js', import.meta.url));

describe('npm run build:linux', () => {
  it('names the package to install, in one line with exit 2, when the tarball is missing', () => {
    const r = spawnSync(process.execPath, [BUILD], { env: { ...process.env, LINUX_TARBALL: '/nonexistent/linux-source-6.12.tar.xz' }, encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('/nonexistent/linux-source-6.12.tar.xz not found');
    expect(lines[0]).toContain('apt-get install -y clang lld linux-source-6.12');
  });

  it('refuses an unknown option or a bad RAM size with exit 2', () => {
    for (const args of [['--bogus'], ['--ram-mib', '3'], ['--ram-mib', 'x']]) {
      const r = spawnSync(process.execPath, [BUILD, ...args], { encoding: 'utf8' });
      expect(r.status).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});
