// Launching QEMU as the peer: qemu-system-aarch64 on the virt board with
// qtest on stdio and a tiny firmware that parks the CPU (wfi; b .), so the
// board runs but the guest does nothing.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { QtestClient } from '../qtest/client.js';

export const QEMU_BINARY = 'qemu-system-aarch64';

/** AArch64 `wfi` then `b .` (branch to itself), little-endian. */
const IDLE_FIRMWARE = Uint32Array.of(0xd503207f, 0x17ffffff);

let cachedVersion: string | null | undefined;

/** "QEMU emulator version 7.2.x ..." first line, or null when the binary is absent. */
export function qemuVersion(): string | null {
  if (cachedVersion !== undefined) return cachedVersion;
  const r = spawnSync(QEMU_BINARY, ['--version'], { encoding: 'utf8', timeout: 5000 });
  cachedVersion = r.status === 0 ? (r.stdout.split('\n')[0] ?? '').trim() : null;
  return cachedVersion;
}

/** Start QEMU with one virtio-rng-device (modern virtio-mmio) and a qtest client on its stdio. */
export async function launchQemu(): Promise<QtestClient> {
  const dir = mkdtempSync(join(tmpdir(), 'virtio-emu-bench-'));
  const firmware = join(dir, 'idle.bin');
  writeFileSync(firmware, new Uint8Array(IDLE_FIRMWARE.buffer));
  const child = spawn(
    QEMU_BINARY,
    [
      '-M', 'virt',
      '-accel', 'tcg',
      '-qtest', 'stdio',
      '-qtest-log', '/dev/null',
      '-global', 'virtio-mmio.force-legacy=false',
      '-device', 'virtio-rng-device',
      '-display', 'none',
      '-monitor', 'none',
      '-serial', 'none',
      '-bios', firmware,
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const client = new QtestClient(child, () => rmSync(dir, { recursive: true, force: true }));
  await client.ready();
  return client;
}

/** Start `virtio-emu qtest --device rng` (this package's CLI) as a child, spoken to over stdio. */
export async function launchSelf(): Promise<QtestClient> {
  const cli = fileURLToPath(new URL('../cli.js', import.meta.url));
  const child = spawn(process.execPath, [cli, 'qtest', '--device', 'rng'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const client = new QtestClient(child);
  await client.ready();
  return client;
}
