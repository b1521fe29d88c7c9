/**
 * Spreading bursts of work over event-loop turns, so that I/O (the control socket) is polled
 * between two pieces of it: setImmediate callbacks scheduled from a setImmediate callback run in
 * the next turn, after the loop polled for I/O.
 */
export class OnePerTurn {
  private readonly waiting: (() => void)[] = [];

  /** Resolves in an event-loop turn of its own: one caller per turn, in the order they came. */
  next(): Promise<void> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      if (this.waiting.length === 1) setImmediate(this.release);
    });
  }

  private readonly release = () => {
    this.waiting.shift()?.();
    if (this.waiting.length > 0) setImmediate(this.release);
  };
}
