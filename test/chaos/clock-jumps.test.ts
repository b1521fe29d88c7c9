/**
 * Chaos 8: the wall clock stepped forward and back by seconds, hours and days, through the
 * injected clock. Random (seeded) sequences of steps check the documented behaviour:
 *
 * - Restart tolerance (policy.ts): the window is on the wall clock. A backward step forgets
 *   restarts that now lie in the future, a forward step ages them out early: both err towards
 *   restarting, but a jump buys at most `max_restarts` more restarts, never a burst; a
 *   suppressed service stays suppressed whatever the clock does, until a manual start. Backoff
 *   delays are timers on the monotonic clock and do not change with the wall clock.
 * - Schedules (cron.ts, ScheduleTimer): never more than one fire per wake (no burst after a
 *   forward jump), a fire only within `maxSleep + 1 s` of its planned time, no repeated fire
 *   after a step back of at most 3 h, and a schedule that keeps firing after any jump.
 */
import { describe, expect, test } from "bun:test";
import type { RestartPolicyConfig } from "../../src/config/types.ts";
import { CronSchedule, ScheduleTimer } from "../../src/schedule/cron.ts";
import { initialUnitState, transition, type Effect, type UnitContext, type UnitEvent, type UnitState } from "../../src/supervisor/unit.ts";
import { ManualClock } from "../../src/util/clock.ts";
import { FakeTimers } from "../helpers/fake-timers.ts";
import { LONG, seededRandom } from "./chaos-helpers.ts";

const SEC = 1000;
const MIN = 60 * SEC;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const ROUNDS = LONG ? 20_000 : 2_000;

/** A wall-clock step of the kinds NTP, an operator or a VM resume make: seconds, hours or days, either way. */
function randomJump(rnd: ReturnType<typeof seededRandom>): number {
  const sign = rnd.next() < 0.5 ? -1 : 1;
  const scale = rnd.pick([SEC, MIN, HOUR, DAY]);
  return sign * rnd.int(1, scale === DAY ? 5 : 50) * scale;
}

describe("chaos: wall clock jumps and the restart tolerance window", () => {
  const policy: RestartPolicyConfig = { policy: "always", restartBackoffMs: 500, maxRestarts: 4, toleranceWindowMs: MIN };

  /** Drives one unit through crash loops with random wall-clock jumps; checks the invariants at every step. */
  test(`crash loops under random wall-clock jumps: bounded restarts, monotonic backoff, sticky suppression (${ROUNDS} steps)`, () => {
    const rnd = seededRandom();
    const clock = new ManualClock(0, Date.UTC(2026, 0, 1));
    const ctx = (): UnitContext => ({ enabled: true, scheduled: false, stopGraceMs: 1000, restartPolicy: policy, nowWallMs: clock.wallMs() });
    let s: UnitState = initialUnitState();
    const feed = (ev: UnitEvent): Effect[] => { const t = transition(s, ev, ctx()); s = t.state; return t.effects; };
    const where = () => `seed ${rnd.seed}, wall ${new Date(clock.wall).toISOString()}, state ${JSON.stringify(s)}`;

    let restartsSinceJump = 0;
    let jumpedSinceSuppressed = false;
    let suppressions = 0;
    expect(feed({ type: "boot", populated: false }).some((e) => e.type === "spawn")).toBe(true);
    for (let step = 0; step < ROUNDS; step++) {
      if (s.phase === "starting") feed({ type: "spawned", pid: 1000 + step });
      expect(s.phase, where()).toBe("running");
      clock.advance(rnd.int(1, 2000)); // the run lasts up to 2 s: always inside the 1 min window
      if (rnd.next() < 0.2) { clock.jumpWall(randomJump(rnd)); restartsSinceJump = 0; jumpedSinceSuppressed = true; }
      const effects = feed({ type: "exited", exit: { code: 1, signal: null, known: true } });

      // The history never holds more than max_restarts entries, all inside the window of "now".
      const now = clock.wallMs();
      expect(s.history.restartsWallMs.length, where()).toBeLessThanOrEqual(policy.maxRestarts);
      for (const t of s.history.restartsWallMs) expect(t >= now - policy.toleranceWindowMs && t <= now, where()).toBe(true);

      if (s.phase === "backoff") {
        restartsSinceJump++;
        // A jump buys at most max_restarts restarts before suppression: never a burst.
        expect(restartsSinceJump, where()).toBeLessThanOrEqual(policy.maxRestarts);
        // Backoff is a monotonic timer of exactly restart_backoff_ms, whatever the wall clock did.
        expect(effects.find((e) => e.type === "armTimer"), where()).toEqual({ type: "armTimer", ms: policy.restartBackoffMs });
        clock.advance(policy.restartBackoffMs);
        if (rnd.next() < 0.1) { clock.jumpWall(randomJump(rnd)); restartsSinceJump = 0; jumpedSinceSuppressed = true; }
        feed({ type: "timer" });
        continue;
      }
      expect(s.phase, where()).toBe("suppressed");
      suppressions++;
      // Without a jump since the manual start, the loop got exactly max_restarts restarts.
      if (!jumpedSinceSuppressed && suppressions > 1) expect(restartsSinceJump, where()).toBe(policy.maxRestarts);
      // Suppressed stays suppressed: stray timers, schedule ticks and clock jumps change nothing.
      for (let i = 0; i < 3; i++) {
        clock.jumpWall(randomJump(rnd));
        clock.advance(rnd.int(1, 10) * MIN);
        feed({ type: "timer" });
        feed({ type: "cronTick" });
        expect(s.phase, where()).toBe("suppressed");
      }
      // Only a manual start clears it, with a fresh history.
      jumpedSinceSuppressed = false;
      feed({ type: "start" });
      expect(s.phase, where()).toBe("starting");
      expect(s.history.restartsWallMs).toEqual([]);
      expect(s.restarts).toBe(0);
      restartsSinceJump = 0;
    }
    expect(suppressions).toBeGreaterThan(10); // the loop really went through many suppressions
  }, LONG ? 120_000 : 30_000);

  test("uptime and run length never go negative after a step back", () => {
    const clock = new ManualClock(0, Date.UTC(2026, 0, 1));
    const ctx = (): UnitContext => ({ enabled: true, scheduled: false, stopGraceMs: 1000, restartPolicy: { ...policy, restartBackoffMaxMs: 8000 }, nowWallMs: clock.wallMs() });
    let s = transition(initialUnitState(), { type: "boot", populated: false }, ctx()).state;
    s = transition(s, { type: "spawned", pid: 1 }, ctx()).state;
    clock.jumpWall(-3 * DAY); // the run "ends before it started"
    const t = transition(s, { type: "exited", exit: { code: 1, signal: null, known: true } }, ctx());
    expect(t.state.phase).toBe("backoff");
    expect(t.effects).toContainEqual({ type: "armTimer", ms: 500 }); // a run of length 0, not -3 days: base backoff
  });
});


describe("chaos: wall clock jumps and schedules", () => {
  for (const [pattern, periodMs] of [["*/5 * * * *", 5 * MIN], ["0 3 * * *", DAY], ["*/20 * * * * *", 20 * SEC]] as const) {
    test(`'${pattern}' under random jumps: no bursts, fires on time, no repeats after small steps back, keeps firing (${ROUNDS / 4} steps)`, () => {
      const rnd = seededRandom();
      const maxSleepMs = MIN;
      const repeatGuardMs = 3 * HOUR;
      const clock = new ManualClock(0, Date.UTC(2026, 0, 1, 0, 0, 7));
      const fires: { planned: number; wall: number; mono: number }[] = [];
      let burst = 0;
      const timers = new FakeTimers(clock, (n) => { burst = Math.max(burst, n); });
      const timer = new ScheduleTimer(new CronSchedule(pattern, "UTC"), clock, timers, (planned) => {
        timers.firesThisWake++;
        fires.push({ planned, wall: clock.wallMs(), mono: clock.monotonicMs() });
      }, { maxSleepMs, repeatGuardMs });
      timer.start();
      const where = () => `seed ${rnd.seed}, pattern ${pattern}, wall ${new Date(clock.wall).toISOString()}`;

      let bigStepBackSinceFire = false;
      let lastJumpMono = 0;
      // How long the schedule may stay quiet after the last jump: one period and one long sleep,
      // plus, after a step back within the guard, the time until the last fire comes round again.
      const baseQuiet = periodMs + maxSleepMs + SEC;
      let quietMs = baseQuiet;
      for (let step = 0; step < ROUNDS / 4; step++) {
        const firesBefore = fires.length;
        if (rnd.next() < 0.3) {
          const jump = randomJump(rnd);
          clock.jumpWall(jump);
          lastJumpMono = clock.monotonicMs();
          // How far the last fire now lies ahead of the clock: past the guard, the schedule starts
          // over and may repeat a time (near the boundary, within one long sleep, either way).
          const ahead = (fires.at(-1)?.planned ?? -Infinity) - clock.wallMs();
          if (ahead > repeatGuardMs - maxSleepMs - SEC) bigStepBackSinceFire = true;
          // The guard is checked at the next wake, up to one long sleep later, when the step back
          // may have shrunk under it: near the boundary either reading is right.
          quietMs = baseQuiet + (ahead > 0 && ahead <= repeatGuardMs + maxSleepMs + SEC ? ahead : 0);
        }
        timers.advance(rnd.int(1, Math.min(periodMs, 2 * HOUR)));
        expect(timers.pending.size, where()).toBeLessThanOrEqual(1);
        for (const f of fires.slice(firesBefore)) {
          // On time: never before its planned time, never later than one long sleep (+1 s) after it.
          expect(f.wall - f.planned, `${where()}: fired at ${new Date(f.wall).toISOString()} for ${new Date(f.planned).toISOString()}`).toBeGreaterThanOrEqual(0);
          expect(f.wall - f.planned, where()).toBeLessThan(maxSleepMs + SEC);
          const prev = fires[fires.indexOf(f) - 1];
          // No repeat: planned times only go forward, unless the clock went back by more than the guard.
          if (prev && !bigStepBackSinceFire) expect(f.planned, where()).toBeGreaterThan(prev.planned);
          bigStepBackSinceFire = false;
        }
        // Keeps firing: once the allowed quiet time after the last jump is over, fires come every period.
        const sinceJump = clock.monotonicMs() - lastJumpMono;
        if (sinceJump > quietMs) {
          const last = fires.at(-1);
          const sinceFire = last === undefined ? Infinity : clock.monotonicMs() - Math.max(last.mono, lastJumpMono + quietMs - baseQuiet);
          expect(sinceFire, `${where()}: quiet for too long after the jump ${sinceJump} ms ago`).toBeLessThanOrEqual(baseQuiet);
        }
      }
      expect(burst, where()).toBeLessThanOrEqual(1); // never two fires from one wake
      expect(fires.length).toBeGreaterThan(10);
      timer.stop();
      expect(timers.pending.size).toBe(0);
    }, LONG ? 120_000 : 30_000);
  }
});
