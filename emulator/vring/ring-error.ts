// A malformed ring or chain. Thrown inside the vring code and caught by the
// device core, which turns it into DEVICE_NEEDS_RESET and parks the queue;
// it never leaves the board.
export class RingError extends Error {
  constructor(readonly queue: number, reason: string) {
    super(`queue ${queue}: ${reason}`);
    this.name = 'RingError';
  }
}
