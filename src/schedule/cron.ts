/**
 * Cron schedules (croner) and a timer that follows one with an injectable clock.
 *
 * Patterns: 5 fields `min hour dom month dow` (seconds 0) or 6 fields with seconds first;
 * 7 fields (years) are rejected; croner's nicknames (`@daily`, `@hourly`, …) are accepted. Day-of-month and day-of-week combine with OR, as in Vixie cron
 * (`0 0 13 * 5` runs on the 13th and on every Friday). Times are read in `timezone` (an IANA
 * name such as `Europe/Berlin`), else in the daemon's local time zone.
 *
 * DST (croner, Vixie-like): a job whose second, minute and hour fields have no `*` and no step
 * (`30 2 * * *`, `0 30 2,14 * * *`) is a fixed-time job: a local time skipped by spring-forward
 * runs once at the first valid time after the gap (03:00), a time that occurs twice at
 * fall-back runs once, at its first occurrence. Other jobs (`*\/30 * * * *`) run on real
 * wall-clock matches: skipped times don't run, repeated times run twice.
 *
 * Wall-clock jumps: see ScheduleTimer.
 */
import { Cron } from "croner";
import { msUntilMinuteTick, type Clock } from "../util/clock.ts";
import { errorMessage, PmError } from "../util/errors.ts";
import { plural } from "../util/plural.ts";

/** A fixed instant used to validate patterns without reading the clock. */
const VALIDATE_FROM = new Date(Date.UTC(2000, 0, 1));

/** A parsed, validated cron pattern; computes next fire times. Pure: no timers. */
export class CronSchedule {
  readonly pattern: string;
  readonly timezone: string | undefined;
  private readonly cron: Cron;

  /** Throws PmError("CONFIG_INVALID") on a bad pattern, a bad timezone, or a pattern that never matches. */
  constructor(pattern: string, timezone?: string) {
    this.pattern = pattern;
    this.timezone = timezone;
    const where = `schedule "${pattern}"${timezone !== undefined ? ` (timezone ${timezone})` : ""}`;
    const fields = pattern.trim().split(/\s+/).filter((f) => f !== "");
    const nickname = fields.length === 1 && fields[0]!.startsWith("@"); // @daily, @hourly, … (croner)
    if (!nickname && fields.length !== 5 && fields.length !== 6) {
      throw new PmError(
        "CONFIG_INVALID",
        `invalid ${where}: ${plural(fields.length, "field")}; expected 5 ("min hour day-of-month month day-of-week") or 6 (seconds first)`,
      );
    }
    try {
      this.cron = new Cron(pattern.trim(), {
        timezone,
        paused: true,
        mode: "5-or-6-parts",
        domAndDow: false,
        fixedTimeRule: "no-wildcard",
      });
    } catch (e) {
      throw new PmError(
        "CONFIG_INVALID",
        `invalid ${where}: ${cleanMessage(e)}`,
        { cause: e },
      );
    }
    // croner only checks the timezone when it computes a time.
    let first: Date | null;
    try {
      first = this.cron.nextRun(VALIDATE_FROM);
    } catch (e) {
      const msg = timezone !== undefined
        ? `invalid timezone "${timezone}" in ${where}: expected an IANA name such as "Europe/Berlin" or "UTC"`
        : `invalid ${where}: ${cleanMessage(e)}`;
      throw new PmError("CONFIG_INVALID", msg, { cause: e });
    }
    if (first === null) throw new PmError("CONFIG_INVALID", `invalid ${where}: the pattern never matches a date`);
  }

  /** The next fire time strictly after `wallMs`, in wall-clock ms; null if there is none. */
  nextAfter(wallMs: number): number | null {
    const d = this.cron.nextRun(new Date(wallMs));
    return d === null ? null : d.getTime();
  }
}

function cleanMessage(e: unknown): string {
  return errorMessage(e).replace(/^Cron(Pattern|Date)?:\s*/, "");
}

/** The timers of the event loop (setTimeout/clearTimeout), injected so tests drive time by hand. */
export interface ScheduleTimerHost {
  setTimer(ms: number, fn: () => void): unknown;
  clearTimer(h: unknown): void;
}

export const systemTimerHost: ScheduleTimerHost = {
  setTimer: (ms, fn) => setTimeout(fn, ms),
  clearTimer: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export interface ScheduleTimerOptions {
  /** Longest single sleep, so wall-clock jumps are noticed (default 60000: one wake a minute when idle). */
  maxSleepMs?: number;
  /**
   * After the wall clock goes back by at most this much, times that already fired are not fired
   * again (Vixie cron does the same for steps under 3 h). Default 3 h.
   */
  repeatGuardMs?: number;
  /** Told when a wake-up finds wall and monotonic clocks disagree by more than 1 s (for logging). */
  onClockJump?: (driftMs: number) => void;
  /**
   * Sleeps that only re-plan (the next fire is further away) end on the daemon's minute tick
   * (util/clock.ts), not `maxSleepMs` after the arming: every schedule then wakes together with
   * the log rotation check, one wake-up a minute for the whole daemon instead of one per
   * schedule at scattered times (issue 15). Fires still happen at their exact time.
   */
  alignToMinuteTick?: boolean;
}

/** A tick-aligned sleep may pass `maxSleepMs` by the tick's offset (60 s + 5 ms at most). */
const MINUTE_TICK_SLACK_MS = 1000;

/** Wall and monotonic elapsed times that differ by more than this mean the wall clock jumped. */
export const JUMP_THRESHOLD_MS = 1000;

/**
 * Arms one timer at a time for the next fire of `schedule`; on a fire it calls
 * `onFire(scheduledWallMs)` and re-arms (before calling, so `onFire` may call stop()).
 *
 * - It never sleeps longer than `maxSleepMs`, so an idle schedule costs one wake a minute.
 * - A wake that finds the clock ran true and the fire still ahead keeps the planned time (no
 *   re-computation). When wall and monotonic clocks disagree by more than 1 s since the timer
 *   was armed, the wall clock jumped (`onClockJump`) and it re-plans from the current wall time.
 * - No bursts: a wake fires at most once, and only if the planned time was passed by less than
 *   `maxSleepMs + 1 s`; after a larger forward jump (or a suspend) missed times are skipped.
 * - After a backward jump the next time is computed from the new wall time, so a clock set back
 *   3 days is noticed within one `maxSleepMs`; a step back of at most `repeatGuardMs` does not
 *   fire times that already fired.
 */
export class ScheduleTimer {
  private readonly maxSleepMs: number;
  private readonly repeatGuardMs: number;
  private readonly onClockJump: ((driftMs: number) => void) | undefined;
  private readonly alignToMinuteTick: boolean;
  private running = false;
  private handle: unknown = null;
  private next: number | null = null;
  private lastFired: number | null = null;
  private armedWall = 0;
  private armedMono = 0;

  constructor(
    private readonly schedule: CronSchedule,
    private readonly clock: Clock,
    private readonly host: ScheduleTimerHost,
    private readonly onFire: (wallMs: number) => void,
    opts: ScheduleTimerOptions = {},
  ) {
    this.maxSleepMs = opts.maxSleepMs ?? 60_000;
    if (!(this.maxSleepMs > 0)) throw new PmError("INTERNAL", `ScheduleTimer: maxSleepMs must be > 0, got ${this.maxSleepMs}`);
    this.repeatGuardMs = opts.repeatGuardMs ?? 3 * 3_600_000;
    this.onClockJump = opts.onClockJump;
    this.alignToMinuteTick = opts.alignToMinuteTick ?? false;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.plan(this.clock.wallMs());
  }

  stop(): void {
    this.running = false;
    this.next = null;
    if (this.handle !== null) {
      this.host.clearTimer(this.handle);
      this.handle = null;
    }
  }

  /** The planned next fire (wall ms), or null when stopped or when the schedule never fires again. */
  nextFireWallMs(): number | null {
    return this.running ? this.next : null;
  }

  private plan(wall: number): void {
    let from = wall;
    if (this.lastFired !== null && this.lastFired > wall) {
      // The wall clock went back. A small step must not repeat a fire that already happened;
      // after a big one the schedule starts over from the new time.
      if (this.lastFired - wall <= this.repeatGuardMs) from = this.lastFired;
      else this.lastFired = null;
    }
    this.next = this.schedule.nextAfter(from);
    this.arm(wall);
  }

  /** Arms the one timer: for the planned fire, or sooner to re-check the clock. */
  private arm(wall: number): void {
    this.armedWall = wall;
    this.armedMono = this.clock.monotonicMs();
    if (this.handle !== null) {
      this.host.clearTimer(this.handle);
      this.handle = null;
    }
    if (this.next === null) return;
    const untilFire = Math.max(this.next - wall, 0);
    const cap = this.alignToMinuteTick ? Math.min(msUntilMinuteTick(wall), this.maxSleepMs + MINUTE_TICK_SLACK_MS) : this.maxSleepMs;
    const delay = Math.min(untilFire, cap);
    this.handle = this.host.setTimer(delay, () => this.wake());
  }

  private wake(): void {
    this.handle = null;
    if (!this.running) return;
    const wall = this.clock.wallMs();
    const drift = (wall - this.armedWall) - (this.clock.monotonicMs() - this.armedMono);
    const jumped = Math.abs(drift) > JUMP_THRESHOLD_MS;
    if (jumped) this.onClockJump?.(drift);
    // The common idle wake: the clock ran true and the fire is still ahead, so the time planned
    // stands. Only re-arm: computing the next time (croner) on every minute tick allocates, and
    // an idle daemon's allocations wake the GC's helper threads (issue 15).
    if (!jumped && this.next !== null && wall < this.next) {
      this.arm(wall);
      return;
    }
    let fireAt: number | null = null;
    if (this.next !== null && wall >= this.next && wall - this.next < this.maxSleepMs + JUMP_THRESHOLD_MS) {
      fireAt = this.next;
      this.lastFired = fireAt;
    }
    this.plan(wall);
    if (fireAt !== null) this.onFire(fireAt);
  }
}
