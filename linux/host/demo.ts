// node dist/linux/host/demo.js [mmio|mmio-legacy]: boot Linux's virtio-rng
// stack on a machine with one rng and print what it found and read.
import { bootLinuxSystem } from './system.js';
import { BUILD_COMMAND, linuxBuildInfo, linuxBuilt } from './module.js';

if (!linuxBuilt()) {
  console.error(`the Linux module is not built: run \`${BUILD_COMMAND}\``);
  process.exit(2);
}
const transport = process.argv[2] === 'mmio-legacy' ? 'mmio-legacy' : 'mmio';
const sys = await bootLinuxSystem({ devices: ['rng'], slots: 4, transport });
try {
  console.log(`${linuxBuildInfo()?.linux ?? 'Linux'} on virtio-${transport}`);
  for (const d of sys.kernel.devices()) {
    console.log(
      `slot ${d.slot}: ${d.transport} (${d.transportDriver}) ${d.dev} device ${d.deviceId} driver ${d.driver} ` +
        `status 0x${d.status.toString(16)} features 0x${d.features.toString(16).padStart(16, '0')} hwrng ${d.rng}`,
    );
  }
  console.log(`rng: ${Buffer.from(sys.kernel.rngRead(0, 32)).toString('hex')}`);
  console.log(`sysfs status: ${sys.kernel.sysfs(0, 'status').trim()}, modalias: ${sys.kernel.sysfs(0, 'modalias').trim()}`);
  console.log(`log: ${sys.kernel.log.length ? sys.kernel.log.map((m) => `${m.dev}: ${m.msg}`).join('; ') : '(empty)'}; warnings: ${sys.kernel.warnings.length}`);
} finally {
  await sys.close();
}
