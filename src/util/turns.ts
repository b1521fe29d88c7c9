/**
 * Spreading bursts of work over event-loop turns, so that I/O (the control socket) is polled
 * between two pieces of it: setImmediate callbacks scheduled from a setImmediate callback run in
 * the next turn, after the loop polled for I/O.
 */
export class OnePerTurn {
  private readonly waiting: (() => void)[] = [];
  /** One caller went through and its turn is not over yet (a release is scheduled). */
  private busy = false;

  /**
   * Resolves in an event-loop turn of its own: one caller per turn, in the order they came. A
   * caller that finds nobody before it goes at once: a lone exit waits for no turn (issue 15,
   * restart after kill -9); the next one waits for the next turn.
   */
  next(): Promise<void> {
    if (!this.busy) {
      this.busy = true;
      setImmediate(this.release);
      return Promise.resolve();
    }
    return new Promise((resolve) => { this.waiting.push(resolve); });
  }

  private readonly release = () => {
    const next = this.waiting.shift();
    if (!next) { this.busy = false; return; }
    next();
    setImmediate(this.release);
  };
}
