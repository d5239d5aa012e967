// `virtio-emu qtest` driven as QEMU's libqos drives a virtio-mmio device on
// the arm `virt` machine: the command sequence of tests/qtest/libqos/
// virtio-mmio.c, virtio.c and arm-virt-machine.c (the device in slot 31 at
// 0x0a003e00, a "page size" of 0x200 for GuestPageSize, QueueAlign and
// QueuePFN, the legacy register layout), with the checks libqos asserts.
// libqos programs queues through QueuePFN, so the device is mmio-legacy.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { REG, MAGIC_VALUE } from '../../core/uapi/mmio.js';
import { VIRTIO_ID_BLOCK, VIRTIO_ID_RNG } from '../../core/uapi/ids.js';
import { QtestClient } from '../../tools/qtest/client.js';

const CLI = fileURLToPath(new URL('../../tools/cli.js', import.meta.url));

// arm-virt-machine.c
const VIRTIO_MMIO_BASE_ADDR = 0x0a00_3e00;
const ARM_VIRT_RAM_ADDR = 0x4000_0000;
const ARM_PAGE_SIZE = 4096;
/** qvirtio_mmio_init_device(..., VIRTIO_MMIO_SIZE): libqos passes the window size as the page size. */
const PAGE_SIZE = 0x200;
// libqos virtio.h / virtio_config.h / virtio_ring.h
const QVIRTIO_F_BAD_FEATURE = 0x4000_0000;
const VIRTIO_RING_F_INDIRECT_DESC = 28;
const VIRTIO_RING_F_EVENT_IDX = 29;
const VRING_DESC_F_WRITE = 2;
const VRING_USED_F_NO_NOTIFY = 1;
const S_ACKNOWLEDGE = 1;
const S_DRIVER = 2;
const S_DRIVER_OK = 4;
/** qvirtio_wait_used_elem's timeout (QVIRTIO_*_TIMEOUT_US in the tests): a hang guard, not a timing. */
const TIMEOUT_US = 30_000_000;

const hex = (n: number | bigint): string => `0x${n.toString(16)}`;

/** The libqtest calls libqos makes, each one command line and the check libqtest makes of its reply. */
class Qts {
  /** Every command sent, in order. */
  readonly sent: string[] = [];
  constructor(private readonly c: QtestClient) {}

  private async cmd(line: string): Promise<string> {
    this.sent.push(line);
    const r = await this.c.command(line);
    if (!r.startsWith('OK')) throw new Error(`'${line}' answered '${r}'`);
    return r;
  }

  private async value(line: string): Promise<bigint> {
    return BigInt((await this.cmd(line)).split(' ')[1]!);
  }

  async readw(addr: number): Promise<number> {
    return Number(await this.value(`readw ${hex(addr)}`));
  }
  async readl(addr: number): Promise<number> {
    return Number(await this.value(`readl ${hex(addr)}`));
  }
  async readq(addr: number): Promise<bigint> {
    return this.value(`readq ${hex(addr)}`);
  }
  async writew(addr: number, v: number): Promise<void> {
    await this.cmd(`writew ${hex(addr)} ${hex(v & 0xffff)}`);
  }
  async writel(addr: number, v: number): Promise<void> {
    await this.cmd(`writel ${hex(addr)} ${hex(v >>> 0)}`);
  }
  async writeq(addr: number, v: number | bigint): Promise<void> {
    await this.cmd(`writeq ${hex(addr)} ${hex(BigInt(v))}`);
  }
  async memread(addr: number, size: number): Promise<Buffer> {
    return Buffer.from((await this.cmd(`read ${hex(addr)} ${hex(size)}`)).slice('OK 0x'.length), 'hex');
  }
  /** qtest_clock_step: "clock_step %"PRIi64, the reply's clock. */
  async clockStep(ns: number): Promise<bigint> {
    return this.value(`clock_step ${ns}`);
  }
  async endianness(): Promise<string> {
    return (await this.cmd('endianness')).slice(3);
  }
}

/** libqos malloc.c's allocator as arm-virt-machine.c sets it up: page-aligned blocks from the start of RAM. */
class GuestAlloc {
  private next = ARM_VIRT_RAM_ADDR;
  alloc(size: number): number {
    const at = this.next;
    this.next += Math.ceil(size / ARM_PAGE_SIZE) * ARM_PAGE_SIZE;
    return at;
  }
}

interface Vq {
  index: number;
  size: number;
  desc: number;
  avail: number;
  used: number;
  freeHead: number;
  lastUsedIdx: number;
  event: boolean;
}

/** qvring_size() */
function qvringSize(num: number, align: number): number {
  return ((16 * num + 2 * (3 + num) + align - 1) & ~(align - 1)) + 2 * 3 + 8 * num;
}

/** A QVirtioMMIODevice: virtio-mmio.c and the transport-independent parts of virtio.c. */
class LibqosVirtioMmio {
  version = 0;
  deviceType = 0;
  features = 0;

  constructor(
    readonly qts: Qts,
    readonly addr: number,
  ) {}

  private reg(off: number): number {
    return this.addr + off;
  }

  /** qvirtio_mmio_init_device() */
  async init(): Promise<void> {
    expect(await this.qts.readl(this.reg(REG.MagicValue))).toBe(MAGIC_VALUE);
    this.version = await this.qts.readl(this.reg(REG.Version));
    expect([1, 2]).toContain(this.version);
    this.deviceType = await this.qts.readl(this.reg(REG.DeviceID));
    await this.qts.writel(this.reg(REG.GuestPageSize), PAGE_SIZE);
  }

  private async getStatus(): Promise<number> {
    return (await this.qts.readl(this.reg(REG.Status))) & 0xff;
  }
  private async setStatus(s: number): Promise<void> {
    await this.qts.writel(this.reg(REG.Status), s);
  }

  /** qvirtio_start_device(): reset, ACKNOWLEDGE, DRIVER, each read back. */
  async start(): Promise<void> {
    await this.setStatus(0);
    expect(await this.getStatus()).toBe(0);
    await this.setStatus((await this.getStatus()) | S_ACKNOWLEDGE);
    expect(await this.getStatus()).toBe(S_ACKNOWLEDGE);
    await this.setStatus((await this.getStatus()) | S_DRIVER);
    expect(await this.getStatus()).toBe(S_ACKNOWLEDGE | S_DRIVER);
  }

  /** qvirtio_mmio_get_features() */
  async getFeatures(): Promise<number> {
    await this.qts.writel(this.reg(REG.DeviceFeaturesSel), 0);
    const lo = await this.qts.readl(this.reg(REG.DeviceFeatures));
    expect(this.version).toBe(1); // the high word is read for version 2 only; this test is legacy
    return lo;
  }

  /** qvirtio_set_features(): no FEATURES_OK step without VIRTIO_F_VERSION_1 (legacy). */
  async setFeatures(features: number): Promise<void> {
    expect(features & QVIRTIO_F_BAD_FEATURE).toBe(0);
    this.features = features;
    await this.qts.writel(this.reg(REG.DriverFeaturesSel), 0);
    await this.qts.writel(this.reg(REG.DriverFeatures), features);
  }

  /** qvirtio_mmio_virtqueue_setup() with qvring_init() */
  async virtqueueSetup(alloc: GuestAlloc, index: number): Promise<Vq> {
    await this.qts.writel(this.reg(REG.QueueSel), index);
    expect(await this.qts.readl(this.reg(REG.QueuePFN))).toBe(0);
    await this.qts.writel(this.reg(REG.QueueAlign), PAGE_SIZE);
    const size = (await this.qts.readl(this.reg(REG.QueueNumMax))) & 0xffff;
    await this.qts.writel(this.reg(REG.QueueNum), size);
    expect(size).not.toBe(0);
    expect(size & (size - 1)).toBe(0);
    const desc = alloc.alloc(qvringSize(size, PAGE_SIZE));
    const avail = desc + size * 16;
    const used = (avail + 2 * (3 + size) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
    const vq: Vq = { index, size, desc, avail, used, freeHead: 0, lastUsedIdx: 0, event: (this.features & (1 << VIRTIO_RING_F_EVENT_IDX)) !== 0 };
    for (let i = 0; i < size - 1; i++) {
      await this.qts.writeq(desc + 16 * i, 0);
      await this.qts.writew(desc + 16 * i + 14, i + 1);
    }
    await this.qts.writew(avail, 0);
    await this.qts.writew(avail + 2, 0);
    await this.qts.writew(avail + 4 + 2 * size, 0);
    await this.qts.writew(used, 0);
    await this.qts.writew(used + 2, 0);
    await this.qts.writew(used + 2 + 8 * size, 0);
    await this.qts.writel(this.reg(REG.QueuePFN), desc / PAGE_SIZE);
    return vq;
  }

  /** qvirtio_set_driver_ok() */
  async setDriverOk(): Promise<void> {
    await this.setStatus((await this.getStatus()) | S_DRIVER_OK);
    expect(await this.getStatus()).toBe(S_DRIVER_OK | S_DRIVER | S_ACKNOWLEDGE);
  }

  /** qvirtqueue_add() */
  async add(vq: Vq, data: number, len: number, write: boolean): Promise<number> {
    const d = vq.desc + 16 * vq.freeHead;
    await this.qts.writeq(d, data);
    await this.qts.writel(d + 8, len);
    await this.qts.writew(d + 12, write ? VRING_DESC_F_WRITE : 0);
    return vq.freeHead++;
  }

  /** qvirtqueue_kick(): libqos reads the avail flags and the used ring's avail_event slot after publishing. */
  async kick(vq: Vq, freeHead: number): Promise<void> {
    const idx = await this.qts.readw(vq.avail + 2);
    await this.qts.writew(vq.avail + 4 + 2 * (idx % vq.size), freeHead);
    await this.qts.writew(vq.avail + 2, idx + 1);
    const flags = await this.qts.readw(vq.avail);
    const availEvent = await this.qts.readw(vq.used + 4 + 8 * vq.size);
    if ((flags & VRING_USED_F_NO_NOTIFY) === 0 && (!vq.event || ((idx - availEvent) & 0xffff) < 1)) {
      await this.qts.writel(this.reg(REG.QueueNotify), vq.index);
    }
  }

  /** qvirtio_mmio_get_queue_isr_status() */
  private async queueIsr(): Promise<boolean> {
    const isr = (await this.qts.readl(this.reg(REG.InterruptStatus))) & 1;
    if (isr === 0) return false;
    await this.qts.writel(this.reg(REG.InterruptACK), 1);
    return true;
  }

  /** qvirtqueue_get_buf(): libqos reads the used element's len with a 16-bit read. */
  private async getBuf(vq: Vq): Promise<{ id: number; len: number } | null> {
    const idx = await this.qts.readw(vq.used + 2);
    if (idx === vq.lastUsedIdx) return null;
    const elem = vq.used + 4 + (vq.lastUsedIdx % vq.size) * 8;
    const id = await this.qts.readl(elem);
    const len = await this.qts.readw(elem + 4);
    vq.lastUsedIdx++;
    return { id, len };
  }

  /** qvirtio_wait_used_elem(): step the clock 100 ns, look at the ISR and the used ring, until the element is there. */
  async waitUsedElem(vq: Vq, descIdx: number): Promise<number> {
    const start = performance.now();
    for (;;) {
      await this.qts.clockStep(100);
      if (await this.queueIsr()) {
        const got = await this.getBuf(vq);
        if (got) {
          expect(got.id).toBe(descIdx);
          return got.len;
        }
      }
      expect((performance.now() - start) * 1000).toBeLessThanOrEqual(TIMEOUT_US);
    }
  }
}

const clients: QtestClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

/** `virtio-emu qtest` on stdio with one device in libqos's slot, and libqtest's opening command. */
async function machine(device: string): Promise<Qts> {
  const child = spawn(process.execPath, [CLI, 'qtest', '--device', `${device},slot=31`], { stdio: ['pipe', 'pipe', 'pipe'] });
  const client = new QtestClient(child);
  clients.push(client);
  await client.ready();
  const qts = new Qts(client);
  expect(await qts.endianness()).toBe('little');
  return qts;
}

describe("libqos's virtio-mmio driver against virtio-emu qtest", () => {
  it('sets up a virtio-rng device through QueuePFN and reads entropy from it, stepping the clock while it waits', async () => {
    const qts = await machine('rng,transport=mmio-legacy');
    const alloc = new GuestAlloc();
    const dev = new LibqosVirtioMmio(qts, VIRTIO_MMIO_BASE_ADDR);
    await dev.init();
    expect([dev.version, dev.deviceType]).toEqual([1, VIRTIO_ID_RNG]);
    await dev.start();
    const offered = await dev.getFeatures();
    // What libqos tests take away before accepting the rest.
    await dev.setFeatures(offered & ~(QVIRTIO_F_BAD_FEATURE | (1 << VIRTIO_RING_F_INDIRECT_DESC) | (1 << VIRTIO_RING_F_EVENT_IDX)));
    const vq = await dev.virtqueueSetup(alloc, 0);
    await dev.setDriverOk();

    for (let round = 0; round < 3; round++) {
      const buf = alloc.alloc(16);
      const head = await dev.add(vq, buf, 16, true);
      await dev.kick(vq, head);
      expect(await dev.waitUsedElem(vq, head)).toBe(16);
      const data = await qts.memread(buf, 16);
      // Entropy: 16 bytes that are not the zeroed RAM they were written into.
      expect(data.length).toBe(16);
      expect(data.equals(Buffer.alloc(16))).toBe(false);
    }
    // The sequence used only what libqos sends: a QueueNotify per request, the clock stepped while waiting.
    expect(new Set(qts.sent.map((l) => l.split(' ')[0]))).toEqual(new Set(['endianness', 'readl', 'writel', 'readw', 'writew', 'writeq', 'clock_step', 'read']));
    expect(qts.sent.filter((l) => l === `writel ${hex(VIRTIO_MMIO_BASE_ADDR + REG.QueueNotify)} 0x0`)).toHaveLength(3);
    expect(qts.sent.filter((l) => l === 'clock_step 100').length).toBeGreaterThanOrEqual(3);
    expect(qts.sent).toContain(`writel ${hex(VIRTIO_MMIO_BASE_ADDR + REG.QueuePFN)} ${hex(ARM_VIRT_RAM_ADDR / PAGE_SIZE)}`);
  }, 120_000);

  it("the same steps on the default Version 2 device do not set a queue: QueuePFN is a legacy register (use transport=mmio-legacy)", async () => {
    const qts = await machine('rng');
    const dev = new LibqosVirtioMmio(qts, VIRTIO_MMIO_BASE_ADDR);
    await dev.init();
    expect(dev.version).toBe(2);
    await dev.start();
    await qts.writel(VIRTIO_MMIO_BASE_ADDR + REG.QueueSel, 0);
    await qts.writel(VIRTIO_MMIO_BASE_ADDR + REG.QueuePFN, ARM_VIRT_RAM_ADDR / PAGE_SIZE);
    expect(await qts.readl(VIRTIO_MMIO_BASE_ADDR + REG.QueueReady)).toBe(0);
  }, 60_000);

  it('config_readq of a 64-bit config field answers both words (virtio-blk capacity)', async () => {
    const qts = await machine('blk,size=1M,transport=mmio-legacy');
    const dev = new LibqosVirtioMmio(qts, VIRTIO_MMIO_BASE_ADDR);
    await dev.init();
    expect(dev.deviceType).toBe(VIRTIO_ID_BLOCK);
    // qvirtio_mmio_config_readq: the legacy device's config space starts at 0x100.
    expect(await qts.readq(VIRTIO_MMIO_BASE_ADDR + REG.Config)).toBe(2048n);
    expect(await qts.readl(VIRTIO_MMIO_BASE_ADDR + REG.Config)).toBe(2048);
    expect(await qts.readl(VIRTIO_MMIO_BASE_ADDR + REG.Config + 4)).toBe(0);
  }, 60_000);
});

describe('qtest clock commands', () => {
  it('clock_step and clock_set answer the clock in ns as QEMU does; the clock only moves when told', async () => {
    const child = spawn(process.execPath, [CLI, 'qtest', '--device', 'rng'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const c = new QtestClient(child);
    clients.push(c);
    await c.ready();
    expect(await c.command('clock_step 100')).toBe('OK 100');
    expect(await c.command('clock_step 0x100')).toBe('OK 356');
    expect(await c.command('clock_set 1000')).toBe('OK 1000');
    expect(await c.command('clock_set 10')).toBe('FAIL 1000');
    expect(await c.command('clock_step 0')).toBe('FAIL could not advance time');
    expect(await c.command('clock_step')).toBe('FAIL cannot advance clock to the next deadline because there is no pending deadline');
    expect(await c.command('clock_step -1')).toBe("FAIL bad ns '-1'");
    expect(await c.command('clock_step 9223372036854775808')).toBe("FAIL ns '9223372036854775808' out of range (at most 9223372036854775807)");
    expect(await c.command('clock_step 9223372036854775807')).toMatch(/^FAIL clock: 1000 \+ 9223372036854775807 ns is past the clock's end/);
    expect(await c.command('clock_set 99999999999999999999999')).toMatch(/^FAIL ns '9+' out of range/);
    expect(await c.command('clock_set')).toBe('FAIL missing ns');
    // Nothing moved it meanwhile.
    expect(await c.command('clock_step 1')).toBe('OK 1001');
  }, 60_000);
});
