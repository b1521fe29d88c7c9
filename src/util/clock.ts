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

/**
 * The daemon's one idle tick: 5 ms after every whole minute of the wall clock (so just after
 * every hourly/daily/... boundary too). The log rotation check runs on it, and schedules wake on
 * it to re-plan, so an idle daemon wakes once a minute however many services it has (issue 15).
 */
export const MINUTE_TICK_OFFSET_MS = 5;

/** Milliseconds from `wallMs` to the next minute tick, in (0, 60000 + offset]. */
export function msUntilMinuteTick(wallMs: number): number {
  const into = ((wallMs % 60_000) + 60_000) % 60_000;
  const untilTick = MINUTE_TICK_OFFSET_MS - into;
  return untilTick > 0 ? untilTick : untilTick + 60_000;
}
