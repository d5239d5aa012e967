// A bad command line or input file: the CLI prints the message on one line
// and exits 2. Thrown by whatever checks user input (option parsers, the
// scenario validator), not only by the CLI.
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
