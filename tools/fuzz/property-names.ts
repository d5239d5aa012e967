// The fuzz properties by name, without loading them: `virtio-emu fuzz
// --help` and option checks need the names, and fast-check (an optional
// dependency) is loaded only when a campaign runs.
export const FUZZ_PROPERTY_NAMES = ['mmio-registers', 'rings', 'packed-rings', 'status-features', 'ccw-programs', 'worker-registers', 'qtest-lines', 'trace-reader'] as const;

export type FuzzPropertyName = (typeof FUZZ_PROPERTY_NAMES)[number];
