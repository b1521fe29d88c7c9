import { afterEach, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { LogsConfig } from "../src/config/types.ts";
import { ManualClock } from "../src/util/clock.ts";
import { PmError } from "../src/util/errors.ts";
import type { Logger } from "../src/util/log.ts";
import { moveLogBytes } from "../src/logs/move.ts";
import {
  LogRotator,
  isoWeek,
  msUntilNextMinute,
  openLogFd,
  periodKey,
  rotateLogFile,
  type ManagedLog,
} from "../src/logs/index.ts";

const dirs: string[] = [];
function tmpDir(root = os.tmpdir()): string {
  const d = fs.mkdtempSync(path.join(root, "pm-logs-"));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** `count` numbered lines starting at `from`, each newline-terminated. */
function lines(from: number, count: number, width = 0): string {
  let s = "";
  for (let i = from; i < from + count; i++) s += `line ${String(i).padStart(width, "0")}\n`;
  return s;
}

function isTmpfs(dir: string): boolean {
  try {
    const mounts = fs.readFileSync("/proc/mounts", "utf8").split("\n").map((l) => l.split(" "));
    return mounts.some((m) => m[1] === dir && m[2] === "tmpfs");
  } catch {
    return false;
  }
}

/** ext4/xfs collapse; where the temp folder cannot, the tests that need it are skipped. */
function collapseWorksInTmp(): boolean {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "pm-probe-"));
  const f = path.join(d, "probe");
  fs.writeFileSync(f, "x".repeat(10000));
  try {
    return rotateLogFile(f, null).mode === "collapse";
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
}

function capture(): Logger & { lines: string[] } {
  const out: string[] = [];
  return {
    lines: out,
    debug: () => {},
    info: (m) => out.push(`info ${m}`),
    warn: (m) => out.push(`warn ${m}`),
    error: (m) => out.push(`error ${m}`),
  };
}

function logsConfig(over: Partial<LogsConfig>): LogsConfig {
  return {
    stdout: "/nonexistent/stdout.log",
    stderr: "/nonexistent/stderr.log",
    hints: [],
    rotationMode: "time",
    rotationFrequency: "daily",
    rotationMaxAgeMs: 30 * 86_400_000,
    rotationBackups: 10,
    ...over,
  };
}

const sh = "/bin/sh";
const COLLAPSE = collapseWorksInTmp();

describe("rotateLogFile", () => {
  test.skipIf(!COLLAPSE)("collapse moves the block-aligned prefix; archive + live is byte-exact", () => {
    const d = tmpDir();
    const live = path.join(d, "stdout.log");
    const content = lines(0, 1500); // ~15 KB
    fs.writeFileSync(live, content);
    const r = rotateLogFile(live, path.join(d, "stdout.log.a"));
    expect(r.mode).toBe("collapse");
    expect(r.bytesMoved).toBe(Math.floor((content.length - 1) / 4096) * 4096);
    const archive = fs.readFileSync(path.join(d, "stdout.log.a"), "utf8");
    expect(archive.length).toBe(r.bytesMoved);
    expect(archive + fs.readFileSync(live, "utf8")).toBe(content);
  });

  test.skipIf(!COLLAPSE)("a file of exactly k blocks keeps its last block; under one block nothing moves", () => {
    const d = tmpDir();
    const live = path.join(d, "out.log");
    fs.writeFileSync(live, "a".repeat(8192));
    expect(rotateLogFile(live, path.join(d, "out.log.1")).bytesMoved).toBe(4096);
    expect(fs.statSync(live).size).toBe(4096);
    const small = rotateLogFile(live, path.join(d, "out.log.2"));
    expect(small.bytesMoved).toBe(0);
    expect(small.note).toContain("less than one");
    expect(fs.existsSync(path.join(d, "out.log.2"))).toBe(false); // no empty archive made
    fs.writeFileSync(live, "");
    expect(rotateLogFile(live, path.join(d, "out.log.2")).note).toBe("empty");
  });

  test.skipIf(!COLLAPSE)("appends to an existing archive", () => {
    const d = tmpDir();
    const live = path.join(d, "out.log");
    const archive = path.join(d, "out.log.x");
    fs.writeFileSync(archive, "before\n");
    const content = lines(0, 1000);
    fs.writeFileSync(live, content);
    rotateLogFile(live, archive);
    expect(fs.readFileSync(archive, "utf8") + fs.readFileSync(live, "utf8")).toBe("before\n" + content);
  });

  test.skipIf(!COLLAPSE)("a service writing as fast as it can while rotation runs 50+ times loses no line", async () => {
    const d = tmpDir();
    const live = path.join(d, "stdout.log");
    const N = 300_000;
    fs.closeSync(openLogFd(live));
    // `>>` opens O_APPEND, as the daemon does; every echo is one write(2).
    const writer = Bun.spawn([sh, "-c", `i=0; while [ $i -lt ${N} ]; do echo $i; i=$((i+1)); done >> '${live}'`], {
      stdout: "ignore",
      stderr: "inherit",
    });
    let done = false;
    writer.exited.then(() => { done = true; });
    const archives: string[] = [];
    let moved = 0;
    for (let i = 0; !done || archives.length < 50; i++) {
      const archive = path.join(d, `stdout.log.${String(i).padStart(5, "0")}`);
      const r = rotateLogFile(live, archive);
      expect(r.mode).toBe("collapse");
      if (r.bytesMoved > 0) {
        archives.push(archive);
        if (!done) moved++;
      }
      await Bun.sleep(2); // pace the loop; the writer runs on regardless
    }
    expect(await writer.exited).toBe(0);
    expect(moved).toBeGreaterThanOrEqual(50); // rotations that happened while it wrote
    let all = "";
    for (const a of archives) all += fs.readFileSync(a, "latin1");
    all += fs.readFileSync(live, "latin1");
    const got = all.split("\n");
    expect(got.pop()).toBe("");
    expect(got.length).toBe(N);
    for (let i = 0; i < N; i++) if (got[i] !== String(i)) throw new Error(`line ${i} is ${JSON.stringify(got[i])}`);
  }, 60_000);

  test("ENOSPC while copying: the live file is untouched and the outcome says so with errno 28", () => {
    // The byte mover on its own: rotateLogFile no longer writes to a device (see the next test);
    // test/chaos/disk-full.test.ts runs the whole rotation on a full file system.
    const d = tmpDir();
    const live = path.join(d, "out.log");
    const content = lines(0, 2000);
    fs.writeFileSync(live, content);
    const liveFd = fs.openSync(live, "r+");
    const full = fs.openSync("/dev/full", "w"); // every write: ENOSPC
    try {
      const o = moveLogBytes({ liveFd, livePath: live, archivePath: "/dev/full", archiveFd: full, archiveOldLength: 0, mode: "collapse", n: 8192, blksize: 4096, kernelCopy: true });
      expect(o.ok).toBe(false);
      if (o.ok) return;
      expect(o.errno).toBe(28);
      expect(o.message).toContain("no space left");
    } finally { fs.closeSync(liveFd); fs.closeSync(full); }
    expect(fs.readFileSync(live, "utf8")).toBe(content);
  });

  test("an archive that is not a regular file is refused with a PmError LOGS; the live file is untouched", () => {
    const d = tmpDir();
    const live = path.join(d, "out.log");
    const content = lines(0, 2000);
    fs.writeFileSync(live, content);
    let err: unknown;
    try { rotateLogFile(live, "/dev/full"); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(PmError);
    expect((err as PmError).code).toBe("LOGS");
    expect((err as PmError).message).toContain("/dev/full is a device, not a regular file");
    expect(fs.readFileSync(live, "utf8")).toBe(content);
    expect(fs.existsSync("/dev/full")).toBe(true); // an archive we did not create is never removed
  });

  test.skipIf(!isTmpfs("/dev/shm"))("tmpfs: falls back to copy+truncate and says so", async () => {
    const d = tmpDir("/dev/shm");
    const live = path.join(d, "stdout.log");
    const content = lines(0, 1000);
    fs.writeFileSync(live, content);
    const r = rotateLogFile(live, path.join(d, "stdout.log.1"));
    expect(r.mode).toBe("copy-truncate");
    expect(r.bytesMoved).toBe(content.length);
    expect(fs.readFileSync(path.join(d, "stdout.log.1"), "utf8")).toBe(content);
    expect(fs.statSync(live).size).toBe(0);
    // Under load it reports the mode on every rotation; the count is what it is (lossy window).
    const N = 100_000;
    const writer = Bun.spawn([sh, "-c", `i=0; while [ $i -lt ${N} ]; do echo $i; i=$((i+1)); done >> '${live}'`]);
    let done = false;
    writer.exited.then(() => { done = true; });
    const archives: string[] = [];
    for (let i = 0; !done; i++) {
      const archive = path.join(d, `stdout.log.r${String(i).padStart(5, "0")}`);
      expect(rotateLogFile(live, archive).mode).toBe("copy-truncate");
      archives.push(archive);
      await Bun.sleep(2);
    }
    let all = "";
    for (const a of archives) if (fs.existsSync(a)) all += fs.readFileSync(a, "latin1");
    all += fs.readFileSync(live, "latin1");
    const seen = new Set(all.split("\n").filter((l) => /^\d+$/.test(l)));
    expect(seen.size).toBeGreaterThan(0);
    expect(seen.size).toBeLessThanOrEqual(N);
  }, 60_000);
});

describe("periods", () => {
  test("keys for each frequency, in local time", () => {
    const t = new Date(2026, 10, 26, 14, 5, 30).getTime();
    expect(periodKey("minutely", t)).toBe("2026-11-26T14-05");
    expect(periodKey("hourly", t)).toBe("2026-11-26T14");
    expect(periodKey("daily", t)).toBe("2026-11-26");
    expect(periodKey("weekly", t)).toBe("2026-W48");
    expect(periodKey("monthly", t)).toBe("2026-11");
    expect(periodKey("none", t)).toBeNull();
  });

  test("ISO weeks at year ends", () => {
    expect(isoWeek(2026, 0, 1)).toEqual({ year: 2026, week: 1 }); // a Thursday
    expect(isoWeek(2025, 11, 29)).toEqual({ year: 2026, week: 1 }); // Monday of that week
    expect(isoWeek(2027, 0, 1)).toEqual({ year: 2026, week: 53 });
    expect(isoWeek(2027, 0, 4)).toEqual({ year: 2027, week: 1 });
    expect(isoWeek(2024, 11, 30)).toEqual({ year: 2025, week: 1 });
  });

  test("msUntilNextMinute", async () => {
    const m = new Date(2026, 10, 26, 14, 5, 0).getTime();
    expect(msUntilNextMinute(m)).toBe(60_000);
    expect(msUntilNextMinute(m + 1)).toBe(59_999);
    expect(msUntilNextMinute(m + 59_999)).toBe(1);
  });
});

describe.skipIf(!COLLAPSE)("LogRotator, time mode", () => {
  const start = new Date(2026, 10, 26, 14, 5, 30).getTime(); // Thursday
  const cases: { freq: LogsConfig["rotationFrequency"]; before: number; after: number; name: string }[] = [
    { freq: "minutely", before: new Date(2026, 10, 26, 14, 5, 59).getTime(), after: new Date(2026, 10, 26, 14, 6, 0).getTime(), name: "2026-11-26T14-05" },
    { freq: "hourly", before: new Date(2026, 10, 26, 14, 59).getTime(), after: new Date(2026, 10, 26, 15, 0).getTime(), name: "2026-11-26T14" },
    { freq: "daily", before: new Date(2026, 10, 26, 23, 59).getTime(), after: new Date(2026, 10, 27, 0, 0).getTime(), name: "2026-11-26" },
    { freq: "weekly", before: new Date(2026, 10, 29, 23, 59).getTime(), after: new Date(2026, 10, 30, 0, 0).getTime(), name: "2026-W48" },
    { freq: "monthly", before: new Date(2026, 10, 30, 23, 59).getTime(), after: new Date(2026, 11, 1, 0, 0).getTime(), name: "2026-11" },
  ];
  for (const c of cases) {
    test(`${c.freq}: rotates at the boundary into stdout.log.${c.name}`, async () => {
      const d = tmpDir();
      const live = path.join(d, "stdout.log");
      const content = lines(0, 1000);
      fs.writeFileSync(live, content);
      fs.utimesSync(live, start / 1000, start / 1000);
      const clock = new ManualClock(0, start);
      const rot = new LogRotator({ clock, log: capture() });
      rot.setFiles([{ app: "web", path: live, config: logsConfig({ rotationFrequency: c.freq }) }]);
      expect((await rot.tick()).rotated).toEqual([]);
      clock.wall = c.before;
      expect((await rot.tick()).rotated).toEqual([]);
      clock.wall = c.after;
      const report = (await rot.tick());
      const archive = `${live}.${c.name}`;
      expect(report.rotated.map((r) => [r.app, r.archive, r.mode])).toEqual([["web", archive, "collapse"]]);
      expect(fs.readFileSync(archive, "utf8") + fs.readFileSync(live, "utf8")).toBe(content);
      expect((await rot.tick()).rotated).toEqual([]); // once per boundary
      expect(rot.modeOf(live)).toBe("collapse");
    });
  }

  test("a daemon restarted after a boundary rotates under the period of the file's mtime", async () => {
    const d = tmpDir();
    const live = path.join(d, "stdout.log");
    const content = lines(0, 1000);
    fs.writeFileSync(live, content);
    const yesterday = new Date(2026, 10, 25, 22, 0).getTime();
    fs.utimesSync(live, yesterday / 1000, yesterday / 1000);
    const rot = new LogRotator({ clock: new ManualClock(0, start), log: capture() });
    rot.setFiles([{ app: "web", path: live, config: logsConfig({}) }]);
    expect((await rot.tick()).rotated.map((r) => r.archive)).toEqual([`${live}.2026-11-25`]);
  });

  test("rotateNow archives under the current period, appending; none rotates only on demand", async () => {
    const d = tmpDir();
    const live = path.join(d, "stdout.log");
    const other = path.join(d, "other.log");
    fs.writeFileSync(live, lines(0, 1000));
    fs.writeFileSync(other, lines(0, 1000));
    for (const f of [live, other]) fs.utimesSync(f, start / 1000, start / 1000);
    const clock = new ManualClock(0, start);
    const rot = new LogRotator({ clock, log: capture() });
    rot.setFiles([
      // (archives carry real mtimes, the clock is far ahead: keep retention out of the way)
      { app: "web", path: live, config: logsConfig({ rotationFrequency: "hourly", rotationMaxAgeMs: 0 }) },
      { app: "db", path: other, config: logsConfig({ rotationFrequency: "none" }) },
    ]);
    clock.wall = new Date(2027, 0, 1).getTime();
    expect((await rot.tick()).rotated.map((r) => r.path)).toEqual([live]); // none never rotates by itself
    fs.appendFileSync(live, lines(1000, 1000));
    const now = (await rot.rotateNow(["web"]));
    expect(now.rotated.map((r) => r.archive)).toEqual([`${live}.2027-01-01T00`]);
    fs.appendFileSync(live, lines(2000, 1000));
    (await rot.rotateNow(["web"]));
    expect(fs.readFileSync(`${live}.2026-11-26T14`, "utf8") + fs.readFileSync(`${live}.2027-01-01T00`, "utf8") + fs.readFileSync(live, "utf8"))
      .toBe(lines(0, 3000));
    expect((await rot.rotateNow()).rotated.map((r) => r.archive)).toContain(`${other}.2027-01-01`);
  });

  test("retention deletes archives older than max age by mtime, of any period format", async () => {
    const d = tmpDir();
    const live = path.join(d, "stdout.log");
    fs.writeFileSync(live, "x\n");
    const day = 86_400_000;
    const old = ["stdout.log.2026-10-01", "stdout.log.2026-W40", "stdout.log.2026-10", "stdout.log.2026-10-02T03", "stdout.log.2026-10-02T03-04"];
    const keep = ["stdout.log.2026-11-20", "stdout.log.bak", "other.log.2026-01-01", "stdout.log.3"];
    for (const n of [...old, ...keep]) {
      fs.writeFileSync(path.join(d, n), "archived\n");
      // Only the recent archive is young; the other kept ones are old but not archives of stdout.log.
      const t = (n === "stdout.log.2026-11-20" ? start - 6 * day : start - 40 * day) / 1000;
      fs.utimesSync(path.join(d, n), t, t);
    }
    const rot = new LogRotator({ clock: new ManualClock(0, start), log: capture() });
    rot.setFiles([{ app: "web", path: live, config: logsConfig({ rotationMaxAgeMs: 30 * day }) }]);
    const report = (await rot.tick());
    expect(report.deleted.map((x) => path.basename(x.path)).sort()).toEqual([...old].sort());
    expect(report.deleted.every((x) => x.reason === "max-age" && x.app === "web")).toBe(true);
    for (const n of keep) expect(fs.existsSync(path.join(d, n))).toBe(true);
    for (const n of old) expect(fs.existsSync(path.join(d, n))).toBe(false);
  });

  test("a refused archive (a symlink) is reported, the period kept, and the rotation retried at the next tick", async () => {
    const d = tmpDir();
    const live = path.join(d, "stdout.log");
    const content = lines(0, 1000);
    fs.writeFileSync(live, content);
    fs.utimesSync(live, start / 1000, start / 1000);
    const archive = `${live}.2026-11-26`;
    fs.symlinkSync("/dev/full", archive); // never followed: ELOOP
    const clock = new ManualClock(0, start);
    const rot = new LogRotator({ clock, log: capture() });
    rot.setFiles([{ app: "web", path: live, config: logsConfig({}) }]);
    clock.wall = new Date(2026, 10, 27, 0, 0).getTime();
    const bad = (await rot.tick());
    expect(bad.rotated).toEqual([]);
    expect(bad.errors.map((e) => [e.app, e.path, e.errno])).toEqual([["web", live, 40]]);
    expect(bad.errors[0]!.message).toContain(`${archive} is a symbolic link`);
    expect(fs.readFileSync(live, "utf8")).toBe(content);
    fs.unlinkSync(archive);
    clock.wall += 60_000;
    const good = (await rot.tick());
    expect(good.errors).toEqual([]);
    expect(good.rotated.map((r) => r.archive)).toEqual([archive]);
    expect(fs.readFileSync(archive, "utf8") + fs.readFileSync(live, "utf8")).toBe(content);
  });

  test("a deleted log file is reported missing at its next boundary (first time flagged) and nothing throws", async () => {
    const d = tmpDir();
    const live = path.join(d, "stdout.log");
    fs.writeFileSync(live, "x\n");
    const clock = new ManualClock(0, start);
    const rot = new LogRotator({ clock, log: capture() });
    rot.setFiles([{ app: "web", path: live, config: logsConfig({}) }]);
    expect((await rot.tick()).missing).toEqual([]);
    fs.unlinkSync(live);
    clock.advance(86_400_000); // daily: the file is looked at again when the day turns
    expect((await rot.tick()).missing).toEqual([{ app: "web", path: live, firstTime: true }]);
    clock.advance(86_400_000);
    expect((await rot.tick()).missing).toEqual([{ app: "web", path: live, firstTime: false }]);
    expect((await rot.rotateNow()).missing.length).toBe(1);
    fs.writeFileSync(live, "back\n");
    clock.advance(86_400_000);
    expect((await rot.tick()).missing).toEqual([]);
  });

  test("the rotation mode is logged once per file", async () => {
    const d = tmpDir();
    const live = path.join(d, "stdout.log");
    fs.writeFileSync(live, lines(0, 1000));
    const log = capture();
    const clock = new ManualClock(0, start);
    const rot = new LogRotator({ clock, log });
    rot.setFiles([{ app: "web", path: live, config: logsConfig({ rotationFrequency: "minutely" }) }]);
    expect(rot.modeOf(live)).toBe("unknown");
    for (let i = 0; i < 5; i++) {
      fs.appendFileSync(live, lines(0, 1000));
      (await rot.tick());
      clock.advance(60_000);
    }
    expect(log.lines.filter((l) => l.includes(live))).toEqual([`info web: ${live}: rotation by fallocate collapse (lossless)`]);
  });
});

describe.skipIf(!COLLAPSE)("LogRotator, size mode", () => {
  function sizeRotator(live: string, over: Partial<LogsConfig>) {
    const rot = new LogRotator({ clock: new ManualClock(), log: capture() });
    const files: ManagedLog[] = [{ app: "api", path: live, config: logsConfig({ rotationMode: "size", rotationSizeBytes: 8192, ...over }) }];
    rot.setFiles(files);
    return rot;
  }

  test("rotates at the size, shifts backups, deletes beyond the count", async () => {
    const d = tmpDir();
    const live = path.join(d, "stdout.log");
    const rot = sizeRotator(live, { rotationBackups: 3 });
    fs.writeFileSync(live, lines(0, 500, 6)); // 6000 bytes: under the size
    expect((await rot.tick()).rotated).toEqual([]);
    const rounds: string[] = [];
    let all = fs.readFileSync(live, "utf8");
    for (let round = 0; round < 5; round++) {
      const more = lines(10_000 * (round + 1), 1000, 6);
      fs.appendFileSync(live, more);
      all += more;
      const report = (await rot.tick());
      expect(report.rotated.map((r) => r.archive)).toEqual([`${live}.1`]);
      rounds.push(fs.readFileSync(`${live}.1`, "utf8"));
      if (round >= 3) expect(report.deleted.map((x) => [x.path, x.reason])).toEqual([[`${live}.3`, "backups"]]);
      else expect(report.deleted).toEqual([]);
    }
    expect(fs.existsSync(`${live}.4`)).toBe(false);
    expect(fs.existsSync(`${live}.rotating`)).toBe(false);
    expect(fs.readFileSync(`${live}.1`, "utf8")).toBe(rounds[4]!);
    expect(fs.readFileSync(`${live}.2`, "utf8")).toBe(rounds[3]!);
    expect(fs.readFileSync(`${live}.3`, "utf8")).toBe(rounds[2]!);
    // What is kept is byte-exact with the end of what was written.
    const kept = rounds[2]! + rounds[3]! + rounds[4]! + fs.readFileSync(live, "utf8");
    expect(all.endsWith(kept)).toBe(true);
  });

  test("rotateNow rotates whatever the size; with 0 backups the content is discarded", async () => {
    const d = tmpDir();
    const live = path.join(d, "stdout.log");
    const rot = sizeRotator(live, { rotationBackups: 0, rotationSizeBytes: 1 << 30 });
    fs.writeFileSync(`${live}.1`, "stale backup\n");
    fs.writeFileSync(live, lines(0, 1000));
    expect((await rot.tick()).rotated).toEqual([]);
    const r = (await rot.rotateNow(["api"]));
    expect(r.rotated.map((x) => [x.archive, x.bytesMoved > 0])).toEqual([[null, true]]);
    expect(r.deleted.map((x) => x.path)).toEqual([`${live}.1`]);
    expect(fs.readdirSync(d)).toEqual(["stdout.log"]);
    expect((await rot.rotateNow(["other-app"])).rotated).toEqual([]);
  });

  test("a file under one block is not shifted into an empty backup", async () => {
    const d = tmpDir();
    const live = path.join(d, "stdout.log");
    const rot = sizeRotator(live, { rotationSizeBytes: 100 });
    fs.writeFileSync(`${live}.1`, "previous\n");
    fs.writeFileSync(live, lines(0, 20));
    const r = (await rot.tick());
    expect(r.rotated[0]!.bytesMoved).toBe(0);
    expect(fs.readFileSync(`${live}.1`, "utf8")).toBe("previous\n");
    expect(fs.existsSync(`${live}.2`)).toBe(false);
  });
});

describe.skipIf(!isTmpfs("/dev/shm"))("LogRotator on tmpfs", () => {
  test("reports and logs copy+truncate", async () => {
    const d = tmpDir("/dev/shm");
    const live = path.join(d, "stdout.log");
    fs.writeFileSync(live, "small but rotated\n");
    const log = capture();
    const rot = new LogRotator({ clock: new ManualClock(), log });
    rot.setFiles([{ app: "web", path: live, config: logsConfig({ rotationMode: "size", rotationSizeBytes: 10, rotationBackups: 2 }) }]);
    const r = (await rot.tick());
    expect(r.rotated.map((x) => [x.mode, x.archive])).toEqual([["copy-truncate", `${live}.1`]]);
    expect(fs.readFileSync(`${live}.1`, "utf8")).toBe("small but rotated\n");
    expect(rot.modeOf(live)).toBe("copy-truncate");
    expect(log.lines.filter((l) => l.startsWith("warn")).length).toBe(1);
    expect(log.lines[0]).toContain("copy+truncate");
  });
});
