/**
 * The rotator's minute tick looks only at the files that are due (issue 15: an idle daemon with
 * hundreds of log files does next to nothing on its tick). A time-mode file is due at the end of
 * its period and when the next of its archives expires; a size-mode file at every tick.
 */
import { afterEach, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { LogsConfig, RotationFrequency } from "../src/config/types.ts";
import { LogRotator, periodEnd, periodKey } from "../src/logs/index.ts";
import { ManualClock } from "../src/util/clock.ts";
import type { Logger } from "../src/util/log.ts";

const dirs: string[] = [];
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "pm-due-"));
  dirs.push(d);
  return d;
}
afterEach(() => { for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true }); });

const quiet: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };
const MIN = 60_000;
const DAY = 86_400_000;

function logsConfig(over: Partial<LogsConfig>): LogsConfig {
  return {
    stdout: "/nonexistent/stdout.log", stderr: "/nonexistent/stderr.log", hints: [],
    rotationMode: "time", rotationFrequency: "daily", rotationMaxAgeMs: 30 * DAY, rotationBackups: 10, ...over,
  };
}

/** A rotator over one file `stdout.log` (content "x"), ticked once at `start`. */
async function oneFile(start: number, over: Partial<LogsConfig> = {}) {
  const d = tmpDir();
  const live = path.join(d, "stdout.log");
  fs.writeFileSync(live, "x\n");
  fs.utimesSync(live, start / 1000, start / 1000);
  const clock = new ManualClock(0, start);
  const rot = new LogRotator({ clock, log: quiet });
  rot.setFiles([{ app: "web", path: live, config: logsConfig(over) }]);
  expect((await rot.tick()).errors).toEqual([]);
  return { d, live, clock, rot };
}

describe("periodEnd", () => {
  const freqs: RotationFrequency[] = ["minutely", "hourly", "daily", "weekly", "monthly"];
  const times = [
    new Date(2026, 10, 26, 14, 5, 30).getTime(), new Date(2026, 11, 31, 23, 59, 59, 999).getTime(),
    new Date(2027, 0, 1).getTime(), new Date(2028, 1, 29, 12).getTime(), new Date(2026, 10, 29, 23, 59).getTime(),
  ];
  test("is the first instant whose period key differs, and never in the past", () => {
    for (const f of freqs) {
      for (const t of times) {
        const end = periodEnd(f, t)!;
        expect(end).toBeGreaterThan(t);
        expect(periodKey(f, end - 1)).toBe(periodKey(f, t)!);
        expect(periodKey(f, end)).not.toBe(periodKey(f, t)!);
      }
    }
    expect(periodEnd("none", times[0]!)).toBeNull();
  });

  test("across daylight saving time changes (Europe/Berlin)", () => {
    const saved = process.env.TZ;
    process.env.TZ = "Europe/Berlin";
    try {
      // 2026-03-29 02:00 → 03:00, 2026-10-25 03:00 → 02:00
      for (const t of [Date.UTC(2026, 2, 28, 23, 30), Date.UTC(2026, 2, 29, 0, 30), Date.UTC(2026, 9, 24, 23, 30), Date.UTC(2026, 9, 25, 0, 30), Date.UTC(2026, 9, 25, 1, 30)]) {
        for (const f of freqs) {
          const end = periodEnd(f, t)!;
          expect(end).toBeGreaterThan(t);
          expect(periodKey(f, end)).not.toBe(periodKey(f, t)!);
        }
      }
      expect(periodEnd("daily", Date.UTC(2026, 2, 28, 23, 30))).toBe(Date.UTC(2026, 2, 29, 22)); // the short day ends at 24:00 CEST
    } finally {
      if (saved === undefined) delete process.env.TZ; else process.env.TZ = saved;
    }
  });
});

describe("LogRotator: only what is due", () => {
  const start = new Date(2026, 10, 26, 14, 5, 30).getTime();

  for (const withSizeFile of [false, true]) {
    test(`between its boundaries a time-mode file is not looked at; at the boundary it is${withSizeFile ? " (beside a size-mode file, due every tick)" : ""}`, async () => {
      const { d, live, clock, rot } = await oneFile(start);
      const sized = path.join(d, "sized.log");
      if (withSizeFile) {
        fs.writeFileSync(sized, "z\n");
        rot.setFiles([{ app: "web", path: live, config: logsConfig({}) }, { app: "api", path: sized, config: logsConfig({ rotationMode: "size", rotationSizeBytes: 1 << 30 }) }]);
        expect((await rot.tick()).errors).toEqual([]);
      }
      fs.unlinkSync(live); // would be reported by any tick that looked
      for (let i = 0; i < 5; i++) {
        clock.advance(MIN);
        expect(await rot.tick()).toEqual({ rotated: [], deleted: [], missing: [], replaced: [], errors: [] });
      }
      if (withSizeFile) fs.unlinkSync(sized);
      clock.advance(MIN);
      expect((await rot.tick()).missing.map((m) => m.path)).toEqual(withSizeFile ? [sized] : []);
      clock.wall = new Date(2026, 10, 27, 0, 0, 0, 5).getTime();
      clock.mono += clock.wall - start; // the clocks agree: no jump, the boundary alone makes it due
      expect((await rot.tick()).missing.filter((m) => m.firstTime).map((m) => m.path)).toEqual([live]);
    });
  }

  test("an archive is deleted when it expires, not at the next boundary", async () => {
    const d = tmpDir();
    const live = path.join(d, "stdout.log");
    const archive = `${live}.2026-10-27`;
    fs.writeFileSync(live, "x\n");
    fs.writeFileSync(archive, "old\n");
    const expires = start + 10 * MIN; // 30 days after its mtime
    fs.utimesSync(archive, (expires - 30 * DAY) / 1000, (expires - 30 * DAY) / 1000);
    const clock = new ManualClock(0, start);
    const rot = new LogRotator({ clock, log: quiet });
    rot.setFiles([{ app: "web", path: live, config: logsConfig({}) }]);
    expect((await rot.tick()).deleted).toEqual([]);
    clock.advance(9 * MIN);
    expect((await rot.tick()).deleted).toEqual([]);
    clock.advance(2 * MIN);
    expect((await rot.tick()).deleted).toEqual([{ app: "web", path: archive, reason: "max-age" }]);
    expect(fs.existsSync(archive)).toBe(false);
  });

  test("a size-mode file is looked at every tick", async () => {
    const { live, clock, rot } = await oneFile(start, { rotationMode: "size", rotationSizeBytes: 8192, rotationBackups: 2 });
    fs.appendFileSync(live, "y".repeat(3 * 8192));
    clock.advance(MIN);
    const r = await rot.tick();
    expect(r.errors).toEqual([]);
    expect(r.rotated.map((x) => x.path)).toEqual([live]);
  });

  for (const withSizeFile of [false, true]) {
    test(`a wall clock that jumped makes every file due${withSizeFile ? " (beside a size-mode file)" : ""}`, async () => {
      const { d, live, clock, rot } = await oneFile(start);
      if (withSizeFile) {
        const sized = path.join(d, "sized.log");
        fs.writeFileSync(sized, "z\n");
        rot.setFiles([{ app: "web", path: live, config: logsConfig({}) }, { app: "api", path: sized, config: logsConfig({ rotationMode: "size", rotationSizeBytes: 1 << 30 }) }]);
        expect((await rot.tick()).errors).toEqual([]);
      }
      fs.unlinkSync(live);
      clock.advance(MIN);
      expect((await rot.tick()).missing).toEqual([]);
      clock.jumpWall(-2 * 3_600_000);
      expect((await rot.tick()).missing).toEqual([{ app: "web", path: live, firstTime: true }]);
    });
  }

  test("a reload (setFiles) during a run is not overwritten by the run's plan from the old config", async () => {
    const d = tmpDir();
    const live = path.join(d, "stdout.log");
    fs.writeFileSync(live, "x".repeat(3 * 8192) + "\n");
    const clock = new ManualClock(0, start);
    const rot = new LogRotator({ clock, log: quiet });
    rot.setFiles([{ app: "web", path: live, config: logsConfig({}) }]);
    const hooked = rot as unknown as { checkFile: (...a: unknown[]) => Promise<number> };
    const checkFile = hooked.checkFile.bind(rot);
    let reloaded = false;
    hooked.checkFile = (...a: unknown[]) => { // the reload lands while the run checks the file (daily: due at midnight)
      if (!reloaded) { reloaded = true; rot.setFiles([{ app: "web", path: live, config: logsConfig({ rotationMode: "size", rotationSizeBytes: 8192 }) }]); }
      return checkFile(...a);
    };
    expect((await rot.tick()).rotated).toEqual([]);
    expect(reloaded).toBe(true);
    clock.advance(MIN);
    expect((await rot.tick()).rotated.map((r) => r.path)).toEqual([live]); // size mode now: due at every tick
  });

  test("probing the rotation mode keeps the file's mtime: a restarted daemon still rotates the old period's content", async () => {
    const d = tmpDir();
    const live = path.join(d, "stdout.log");
    fs.writeFileSync(live, "x".repeat(3 * 8192) + "\n");
    const yesterday = new Date(2026, 10, 25, 22, 0).getTime();
    fs.utimesSync(live, yesterday / 1000, yesterday / 1000);
    const rot = new LogRotator({ clock: new ManualClock(0, start), log: quiet });
    rot.setFiles([{ app: "web", path: live, config: logsConfig({}) }]);
    rot.probeModes(); // as the daemon does at start, before its first tick
    expect(fs.statSync(live).mtimeMs).toBe(yesterday);
    expect((await rot.tick()).rotated.map((r) => r.archive)).toEqual([`${live}.2026-11-25`]);
  });

  test("new files (setFiles) are looked at at the next tick", async () => {
    const { d, clock, rot } = await oneFile(start);
    const other = path.join(d, "other.log"); // not there: reported missing once looked at
    rot.setFiles([{ app: "web", path: path.join(d, "stdout.log"), config: logsConfig({}) }, { app: "db", path: other, config: logsConfig({}) }]);
    clock.advance(MIN);
    // Never created (a disabled service's file): missing, but not "gone", so the daemon does not warn.
    expect((await rot.tick()).missing).toEqual([{ app: "db", path: other, firstTime: false }]);
    fs.writeFileSync(other, "y\n");
    clock.advance(86_400_000);
    expect((await rot.tick()).missing).toEqual([]);
    fs.unlinkSync(other);
    clock.advance(86_400_000);
    expect((await rot.tick()).missing).toEqual([{ app: "db", path: other, firstTime: true }]);
  });
});
