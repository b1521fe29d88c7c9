/**
 * Time sources. Timeouts and backoff use the monotonic clock (immune to NTP steps);
 * cron uses the wall clock. Pure code takes a Clock so tests can drive time by hand.
 */
export interface Clock {
  /** Milliseconds on a clock that never jumps; its zero is arbitrary. */
  monotonicMs(): number;
  /** Milliseconds since the epoch; may jump. */
  wallMs(): number;
}

export const systemClock: Clock = {
  monotonicMs: () => performance.now(),
  wallMs: () => Date.now(),
};

/** A clock tests move by hand. */
export class ManualClock implements Clock {
  constructor(public mono = 0, public wall = Date.UTC(2026, 0, 1)) {}
  monotonicMs() { return this.mono; }
  wallMs() { return this.wall; }
  advance(ms: number) { this.mono += ms; this.wall += ms; }
  jumpWall(ms: number) { this.wall += ms; }
}
