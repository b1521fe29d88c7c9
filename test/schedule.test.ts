import { describe, expect, test } from "bun:test";
import { CronSchedule, ScheduleTimer } from "../src/schedule/cron.ts";
import { ManualClock, msUntilMinuteTick } from "../src/util/clock.ts";
import { FakeTimers } from "./helpers/fake-timers.ts";
import { PmError } from "../src/util/errors.ts";

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const at = (s: string) => Date.parse(s);
const SEC = 1000;
const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;


function setup(pattern: string, startIso: string, tz?: string, maxSleepMs?: number) {
  const clock = new ManualClock(1_000_000, at(startIso));
  const timers = new FakeTimers(clock);
  const fires: { planned: number; wallAtFire: number }[] = [];
  const jumps: number[] = [];
  const timer = new ScheduleTimer(new CronSchedule(pattern, tz), clock, timers, (w) => fires.push({ planned: w, wallAtFire: clock.wall }), {
    maxSleepMs,
    onClockJump: (d) => jumps.push(d),
  });
  return { clock, timers, fires, jumps, timer };
}

describe("CronSchedule", () => {
  test("5 fields: seconds are 0; strictly after the given time", () => {
    const s = new CronSchedule("0 * * * *", "UTC");
    expect(iso(s.nextAfter(at("2026-01-01T00:00:00Z")))).toBe("2026-01-01T01:00:00.000Z");
    expect(iso(s.nextAfter(at("2026-01-01T00:59:59.999Z")))).toBe("2026-01-01T01:00:00.000Z");
    const daily = new CronSchedule("30 4 * * *", "UTC");
    expect(iso(daily.nextAfter(at("2026-01-01T04:30:00Z")))).toBe("2026-01-02T04:30:00.000Z");
  });

  test("6 fields: seconds first", () => {
    const s = new CronSchedule("15 30 4 * * *", "UTC");
    expect(iso(s.nextAfter(at("2026-01-01T00:00:00Z")))).toBe("2026-01-01T04:30:15.000Z");
    const every = new CronSchedule("* * * * * *", "UTC");
    expect(iso(every.nextAfter(at("2026-01-01T00:00:00.500Z")))).toBe("2026-01-01T00:00:01.000Z");
    expect(iso(every.nextAfter(at("2026-01-01T00:00:01.000Z")))).toBe("2026-01-01T00:00:02.000Z");
  });

  test("day-of-month and day-of-week combine with OR (Vixie)", () => {
    const s = new CronSchedule("0 0 13 * 5", "UTC"); // the 13th, and every Friday
    const out: string[] = [];
    let t = at("2026-01-01T00:00:00Z");
    for (let i = 0; i < 4; i++) {
      t = s.nextAfter(t)!;
      out.push(iso(t)!.slice(0, 10));
    }
    expect(out).toEqual(["2026-01-02", "2026-01-09", "2026-01-13", "2026-01-16"]);
  });

  test("timezone: local times are read in the zone", () => {
    const s = new CronSchedule("0 9 * * *", "America/New_York");
    expect(iso(s.nextAfter(at("2026-01-01T00:00:00Z")))).toBe("2026-01-01T14:00:00.000Z");
  });

  test("DST Europe/Berlin spring forward: 02:30 does not exist, runs once at 03:00 CEST", () => {
    const s = new CronSchedule("30 2 * * *", "Europe/Berlin");
    let t = at("2026-03-27T12:00:00Z");
    const out: string[] = [];
    for (let i = 0; i < 4; i++) out.push(iso((t = s.nextAfter(t)!))!);
    expect(out).toEqual([
      "2026-03-28T01:30:00.000Z", // 02:30 CET
      "2026-03-29T01:00:00.000Z", // 03:00 CEST: first valid time after the gap
      "2026-03-30T00:30:00.000Z", // 02:30 CEST
      "2026-03-31T00:30:00.000Z",
    ]);
  });

  test("DST Europe/Berlin fall back: 02:30 occurs twice, runs once at the first", () => {
    const s = new CronSchedule("30 2 * * *", "Europe/Berlin");
    let t = at("2026-10-24T12:00:00Z");
    const out: string[] = [];
    for (let i = 0; i < 3; i++) out.push(iso((t = s.nextAfter(t)!))!);
    expect(out).toEqual([
      "2026-10-25T00:30:00.000Z", // 02:30 CEST; the 02:30 CET an hour later does not run
      "2026-10-26T01:30:00.000Z", // 02:30 CET
      "2026-10-27T01:30:00.000Z",
    ]);
  });

  test("DST: interval jobs follow real time (repeated half hours at fall back run twice)", () => {
    const s = new CronSchedule("*/30 * * * *", "Europe/Berlin");
    let t = at("2026-10-25T00:00:00Z"); // 02:00 CEST
    const out: string[] = [];
    for (let i = 0; i < 4; i++) out.push(iso((t = s.nextAfter(t)!))!);
    expect(out).toEqual(["2026-10-25T00:30:00.000Z", "2026-10-25T01:00:00.000Z", "2026-10-25T01:30:00.000Z", "2026-10-25T02:00:00.000Z"]);
  });

  test("invalid pattern: PmError CONFIG_INVALID naming the pattern", () => {
    for (const [p, why] of [
      ["bad", "1 field; expected 5"],
      ["61 * * * *", "Invalid value for minute: 61"],
      ["* * * *", "4 fields; expected 5"],
      ["0 0 0 * * * *", "7 fields; expected 5"],
      ["0 0 * * MON-XYZ", "invalid schedule"],
    ] as const) {
      let err: unknown;
      try {
        new CronSchedule(p);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(PmError);
      expect((err as PmError).code).toBe("CONFIG_INVALID");
      expect((err as PmError).message).toContain(`schedule "${p}"`);
      expect((err as PmError).message).toContain(why);
    }
  });

  test("nicknames such as @daily are accepted", () => {
    expect(iso(new CronSchedule("@daily", "UTC").nextAfter(at("2026-01-01T10:00:00Z")))).toBe("2026-01-02T00:00:00.000Z");
  });

  test("a pattern that never matches is invalid", () => {
    expect(() => new CronSchedule("0 0 30 2 *")).toThrow(/never matches/);
  });

  test("invalid timezone: PmError CONFIG_INVALID naming the timezone", () => {
    let err: unknown;
    try {
      new CronSchedule("0 * * * *", "Mars/Olympus_Mons");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PmError);
    expect((err as PmError).code).toBe("CONFIG_INVALID");
    expect((err as PmError).message).toBe(
      'invalid timezone "Mars/Olympus_Mons" in schedule "0 * * * *" (timezone Mars/Olympus_Mons): expected an IANA name such as "Europe/Berlin" or "UTC"',
    );
  });
});

describe("ScheduleTimer", () => {
  test("every-second schedule fires once per second at the planned time", () => {
    const { timers, fires, timer } = setup("* * * * * *", "2026-01-01T00:00:00.250Z");
    timer.start();
    expect(iso(timer.nextFireWallMs())).toBe("2026-01-01T00:00:01.000Z");
    timers.advance(10 * SEC);
    expect(fires.map((f) => iso(f.planned))).toEqual(
      Array.from({ length: 10 }, (_, i) => `2026-01-01T00:00:${String(i + 1).padStart(2, "0")}.000Z`),
    );
    for (const f of fires) expect(f.wallAtFire).toBe(f.planned);
    expect(timers.maxPending).toBe(1);
  });

  test("idle: one wake per maxSleep at most, fires exactly on time", () => {
    const { timers, fires, timer } = setup("0 12 * * *", "2026-01-01T00:00:00Z", "UTC");
    timer.start();
    timers.advance(24 * HOUR);
    expect(fires.map((f) => iso(f.planned))).toEqual(["2026-01-01T12:00:00.000Z"]);
    expect(fires[0]!.wallAtFire).toBe(fires[0]!.planned);
    expect(Math.max(...timers.sleeps)).toBe(MIN);
    expect(timers.wakes).toBe(24 * 60);
    expect(timers.maxPending).toBe(1);
  });

  test("idle wakes keep the planned time: the next fire is computed only after a fire or a clock jump", () => {
    const { clock, timers, fires, timer } = setup("0 12 * * *", "2026-01-01T00:00:00Z", "UTC");
    const schedule = (timer as unknown as { schedule: CronSchedule }).schedule;
    let computed = 0;
    const nextAfter = schedule.nextAfter.bind(schedule);
    schedule.nextAfter = (w: number) => { computed++; return nextAfter(w); };
    timer.start();
    timers.advance(24 * HOUR);
    expect(fires.length).toBe(1);
    expect(computed).toBe(2); // at start, and after the fire at 12:00
    clock.jumpWall(-HOUR);
    timers.advance(MIN);
    expect(computed).toBe(3);
  });

  test("maxSleepMs option bounds each sleep", () => {
    const { timers, timer } = setup("0 12 * * *", "2026-01-01T00:00:00Z", "UTC", 5 * MIN);
    timer.start();
    timers.advance(HOUR);
    expect(timers.wakes).toBe(12);
    expect(Math.max(...timers.sleeps)).toBe(5 * MIN);
  });

  test("stop clears the timer; nothing fires afterwards", () => {
    const { timers, fires, timer } = setup("* * * * * *", "2026-01-01T00:00:00Z");
    timer.start();
    timers.advance(3 * SEC);
    timer.stop();
    expect(timers.pending.size).toBe(0);
    expect(timer.nextFireWallMs()).toBeNull();
    timers.advance(10 * SEC);
    expect(fires.length).toBe(3);
  });

  test("onFire may stop the timer", () => {
    const clock = new ManualClock(0, at("2026-01-01T00:00:00Z"));
    const timers = new FakeTimers(clock);
    let n = 0;
    const t: ScheduleTimer = new ScheduleTimer(new CronSchedule("* * * * * *"), clock, timers, () => {
      n++;
      t.stop();
    });
    t.start();
    timers.advance(10 * SEC);
    expect(n).toBe(1);
    expect(timers.pending.size).toBe(0);
  });

  test("wall clock jumps +3 days: no burst, next fire planned from the new time", () => {
    const { clock, timers, fires, jumps, timer } = setup("0 * * * *", "2026-01-01T00:00:00Z", "UTC");
    timer.start();
    timers.advance(90 * MIN); // fires 01:00
    expect(fires.map((f) => iso(f.planned))).toEqual(["2026-01-01T01:00:00.000Z"]);
    clock.jumpWall(3 * DAY); // now 2026-01-04T01:30
    timers.advance(MIN); // the next wake notices
    expect(jumps.length).toBe(1);
    expect(jumps[0]).toBe(3 * DAY);
    expect(fires.length).toBe(1); // 72 missed hours: none of them fired
    expect(iso(timer.nextFireWallMs())).toBe("2026-01-04T02:00:00.000Z");
    timers.advance(30 * MIN);
    expect(fires.map((f) => iso(f.planned))).toEqual(["2026-01-01T01:00:00.000Z", "2026-01-04T02:00:00.000Z"]);
  });

  test("a small forward jump over the planned time fires it once, late", () => {
    const { clock, timers, fires, timer } = setup("* * * * * *", "2026-01-01T00:00:00Z");
    timer.start();
    timers.advance(500);
    clock.jumpWall(30 * SEC); // skips 30 fire times
    timers.advance(500); // the timer due at 00:00:01 mono-wise wakes at wall 00:00:31
    expect(fires.map((f) => [iso(f.planned), iso(f.wallAtFire)])).toEqual([["2026-01-01T00:00:01.000Z", "2026-01-01T00:00:31.000Z"]]);
    expect(iso(timer.nextFireWallMs())).toBe("2026-01-01T00:00:32.000Z");
    timers.advance(3 * SEC);
    expect(fires.length).toBe(4);
  });

  test("wall clock jumps −3 days: re-planned within one maxSleep, not after 3 days", () => {
    const { clock, timers, fires, jumps, timer } = setup("0 12 * * *", "2026-01-01T00:00:00Z", "UTC");
    timer.start();
    timers.advance(3 * DAY + 11 * HOUR); // fires Jan 1, 2, 3 at 12:00; now Jan 4 11:00
    expect(fires.length).toBe(3);
    clock.jumpWall(-3 * DAY); // now Jan 1 11:00
    timers.advance(MIN);
    expect(jumps).toEqual([-3 * DAY]);
    expect(iso(timer.nextFireWallMs())).toBe("2026-01-01T12:00:00.000Z");
    timers.advance(HOUR);
    expect(fires.map((f) => iso(f.planned)).at(-1)).toBe("2026-01-01T12:00:00.000Z");
    expect(fires.length).toBe(4);
  });

  test("a small backward step does not repeat a fire", () => {
    const { clock, timers, fires, timer } = setup("0 12 * * *", "2026-01-01T11:59:00Z", "UTC");
    timer.start();
    timers.advance(2 * MIN); // fires 12:00, now 12:01
    expect(fires.length).toBe(1);
    clock.jumpWall(-10 * MIN); // 11:51
    timers.advance(30 * MIN);
    expect(fires.length).toBe(1);
    expect(iso(timer.nextFireWallMs())).toBe("2026-01-02T12:00:00.000Z");
    timers.advance(DAY);
    expect(fires.map((f) => iso(f.planned))).toEqual(["2026-01-01T12:00:00.000Z", "2026-01-02T12:00:00.000Z"]);
  });

  test("DST Europe/Berlin: fires once a day across spring forward and fall back", () => {
    for (const [start, expected] of [
      ["2026-03-27T12:00:00Z", ["2026-03-28T01:30:00.000Z", "2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z"]],
      ["2026-10-24T12:00:00Z", ["2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z", "2026-10-27T01:30:00.000Z"]],
    ] as const) {
      const { timers, fires, timer } = setup("30 2 * * *", start, "Europe/Berlin");
      timer.start();
      timers.advance(3 * DAY);
      expect(fires.map((f) => iso(f.planned))).toEqual([...expected]);
      // at most one fire per local (Berlin) day
      const days = fires.map((f) => new Date(f.planned).toLocaleDateString("en-CA", { timeZone: "Europe/Berlin" }));
      expect(new Set(days).size).toBe(days.length);
    }
  });
});

describe("schedules wake on the daemon's minute tick (issue 15: one idle wake-up a minute)", () => {
  test("msUntilMinuteTick: 5 ms after each whole minute", () => {
    const m = at("2026-01-01T00:00:00Z");
    expect(msUntilMinuteTick(m)).toBe(5);
    expect(msUntilMinuteTick(m + 4)).toBe(1);
    expect(msUntilMinuteTick(m + 5)).toBe(MIN);
    expect(msUntilMinuteTick(m + 30 * SEC)).toBe(30 * SEC + 5);
    expect(msUntilMinuteTick(m - 1)).toBe(6);
  });

  test("many schedules armed at scattered times re-plan together on the tick and still fire on time", () => {
    const clock = new ManualClock(1_000_000, at("2026-01-01T00:00:13.700Z"));
    const timers = new FakeTimers(clock);
    const wakeWalls = new Set<number>();
    const host = {
      setTimer: (ms: number, fn: () => void) => timers.setTimer(ms, () => { wakeWalls.add(clock.wall); fn(); }),
      clearTimer: (h: unknown) => timers.clearTimer(h),
    };
    const fires: { planned: number; wallAtFire: number }[] = [];
    const patterns = ["7 12 * * *", "31 6 * * *", "*/20 * * * *", "15 0 * * * *"];
    for (const p of patterns) {
      clock.advance(17_123); // each armed at its own odd moment
      new ScheduleTimer(new CronSchedule(p, "UTC"), clock, host, (w) => fires.push({ planned: w, wallAtFire: clock.wall }), { alignToMinuteTick: true }).start();
    }
    timers.advance(13 * HOUR);
    const firedAt = new Set(fires.map((f) => f.planned));
    // Every wake is a fire time or a minute tick: none at the moments the timers were armed.
    for (const w of wakeWalls) expect(firedAt.has(w) || w % MIN === 5).toBe(true);
    for (const f of fires) expect(f.wallAtFire).toBe(f.planned);
    expect(fires.filter((f) => iso(f.planned) === "2026-01-01T12:07:00.000Z").length).toBe(1);
    expect(fires.filter((f) => iso(f.planned) === "2026-01-01T06:31:00.000Z").length).toBe(1);
    // 13 h: at most one tick a minute besides the fires (4 patterns would scatter ~4 a minute).
    expect(wakeWalls.size).toBeLessThanOrEqual(13 * 60 + 1 + firedAt.size);
  });
});
