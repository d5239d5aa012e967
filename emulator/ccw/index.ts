// The channel subsystem (virtio-ccw, device side):
// - css.ts: the board region, one subchannel per slot, and the ccw.* options;
// - subchannel.ts: the register window standing in for SSCH/TSCH/DIAG 0x500;
// - channel-program.ts: ORB and CCW chain execution, ending status;
// - virtio-proxy.ts: the virtio channel commands over the device core;
// - indicators.ts: classic indicator bits in guest memory.
export * from './css.js';
export * from './subchannel.js';
export * from './channel-program.js';
export * from './virtio-proxy.js';
export * from './indicators.js';
