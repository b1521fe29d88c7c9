/**
 * The injected event-loop timers of ScheduleTimer, driven by hand together with a ManualClock:
 * timers are due on the monotonic clock, and `advance` moves both clocks to each due time in
 * order, firing what is due. This is the test's clock, not a mock of the code under test.
 */
import type { ScheduleTimerHost } from "../../src/schedule/cron.ts";
import type { ManualClock } from "../../src/util/clock.ts";

export class FakeTimers implements ScheduleTimerHost {
  private seq = 0;
  readonly pending = new Map<number, { due: number; fn: () => void }>();
  /** Timer callbacks run so far. */
  wakes = 0;
  maxPending = 0;
  /** Every delay asked for, in order. */
  readonly sleeps: number[] = [];
  /** Reset before each timer callback; a test's onFire may count into it. */
  firesThisWake = 0;

  constructor(private readonly clock: ManualClock, private readonly onWakeDone?: (firesThisWake: number) => void) {}

  setTimer(ms: number, fn: () => void): unknown {
    const id = ++this.seq;
    this.pending.set(id, { due: this.clock.mono + ms, fn });
    this.maxPending = Math.max(this.maxPending, this.pending.size);
    this.sleeps.push(ms);
    return id;
  }

  clearTimer(h: unknown): void {
    this.pending.delete(h as number);
  }

  /** Run time forward by `ms` on both clocks, firing due timers in order. */
  advance(ms: number): void {
    const end = this.clock.mono + ms;
    for (;;) {
      let next: [number, { due: number; fn: () => void }] | undefined;
      for (const e of this.pending) if (!next || e[1].due < next[1].due) next = e;
      if (!next || next[1].due > end) break;
      this.clock.advance(next[1].due - this.clock.mono);
      this.pending.delete(next[0]);
      this.wakes++;
      this.firesThisWake = 0;
      next[1].fn();
      this.onWakeDone?.(this.firesThisWake);
    }
    this.clock.advance(end - this.clock.mono);
  }
}
