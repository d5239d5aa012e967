export * from './mmio.js';
export * from './status.js';
export * from './features.js';
export * from './errno.js';
export * from './ids.js';
export * from './ring.js';
export * from './ccw.js';
