// The bus a system's kernel holds: register accesses go to whichever
// machine the kernel runs on now. A restore puts a successor machine under
// a running kernel (same guest RAM, same interrupt controller, a new device
// worker), and the kernel's transports, which keep their Bus, never notice.
import type { AccessWidth, Bus, GuestMemory, IrqChip } from '../core/bus.js';
import type { Machine } from '../emulator/machine.js';

export class MachineBus implements Bus {
  constructor(public machine: Machine) {}

  /** The platform's: the same object on every successor machine. */
  get mem(): GuestMemory {
    return this.machine.mem;
  }

  get irq(): IrqChip {
    return this.machine.irq;
  }

  read(addr: number, width: AccessWidth): number {
    return this.machine.bus.read(addr, width);
  }

  write(addr: number, width: AccessWidth, value: number): void {
    this.machine.bus.write(addr, width, value);
  }

  writePosted(addr: number, width: AccessWidth, value: number): void {
    const bus = this.machine.bus;
    if (bus.writePosted) bus.writePosted(addr, width, value);
    else bus.write(addr, width, value);
  }
}
