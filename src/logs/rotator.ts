/**
 * The daemon's log rotator: every service's log files, checked on the daemon's minute tick (the
 * daemon owns the one timer and calls tick()), or on demand (`pmctl rotate`, rotateNow()).
 *
 * A tick looks only at the files that are due (issue 15: an idle daemon with hundreds of log
 * files wakes once a minute and does next to nothing then). A size-mode file is due at every
 * tick (its size says when). A time-mode file is due when its period ends, when the next of its
 * archives expires (retention), at the tick after it was first seen, after a failure (the
 * retry), after setFiles, and after the wall clock jumped; in between a tick stats nothing.
 * So a time-mode file deleted or replaced by someone is reported (missing/replaced) at its next
 * boundary, not within the minute.
 *
 * Time mode (`rotation_frequency` minutely/hourly/daily/weekly/monthly): the rotator
 * remembers for each file the period it last saw. When a tick finds the clock in another
 * period, the file's content moves to `<file>.<old period key>` (see period.ts for the
 * names), appended if that archive exists. The first time a file is seen (daemon start, new
 * service), its mtime's period is taken as the one it last saw, so a daemon that was down
 * across a boundary still rotates the old content under the old period's name. `none` never
 * rotates on its own; `pmctl rotate` then archives under the day's name.
 * Archives of every period format older than `rotation_max_age_ms` (by mtime) are deleted.
 *
 * Size mode: when the live file has reached `rotation_size` at a tick (or on rotateNow, when
 * it is not empty), its content moves to `<file>.rotating`, the backups shift (`.1` → `.2`
 * …, the ones beyond `rotation_backups` deleted) and `<file>.rotating` becomes `<file>.1`.
 * The staging name means a failed or interrupted rotation never shifts backups for nothing,
 * and a leftover from a crash is picked up by the next rotation. With `rotation_backups: 0`
 * the content is discarded (collapsed away without a copy).
 *
 * Nothing is thrown out of tick() or rotateNow(): every problem is a line of the report, and a
 * rotation that failed (ENOSPC, …) is retried at the next tick because the remembered period
 * (or the size) still calls for it.
 *
 * Safety (issue 11): every file operation goes through the log folder's verified fd
 * (safe-dir.ts), never through a path a service's user could redirect. A live file is rotated
 * only if it is a regular file with one link owned by root or the service's user and, when the
 * daemon opened it for the service, still that same file (rotate.ts). Runs are asynchronous
 * (big files move in a worker thread) and one at a time: a tick waits for a `pmctl rotate`.
 */
import fs from "node:fs";
import path from "node:path";
import type { LogsConfig } from "../config/types.ts";
import type { Clock } from "../util/clock.ts";
import { errorMessage } from "../util/errors.ts";
import { logger, type Logger } from "../util/log.ts";
import { errnoOf } from "./fsutil.ts";
import { openedIdentity, type LogOwner } from "./open.ts";
import { periodEnd, periodKey } from "./period.ts";
import { deleteExpiredArchives, shiftBackups } from "./retention.ts";
import { probeRotationMode, probeRotationModeIn, rotateInDir, type LiveExpectations, type RotationKind, type RotationResult } from "./rotate.ts";
import { allowedOwners, kindOf, LogDir } from "./safe-dir.ts";
import { plural } from "../util/plural.ts";

export interface ManagedLog {
  /** The service the file belongs to. */
  app: string;
  /** Absolute path of the live file. */
  path: string;
  config: LogsConfig;
  /** The service's user and group: the live file may be owned by root or that user. */
  owner?: LogOwner;
}

export interface RotatedEntry extends RotationResult {
  app: string;
  path: string;
  /** Where the content went; null when it was discarded (size mode with 0 backups). */
  archive: string | null;
}

export interface TickReport {
  /** Every rotation attempted, including those that moved nothing (see `note`). */
  rotated: RotatedEntry[];
  /** Archives deleted: too old (time mode) or beyond the backup count (size mode). */
  deleted: { app: string; path: string; reason: "max-age" | "backups" }[];
  /**
   * Live files that do not exist (deleted or moved by someone). `firstTime` is true on the
   * first tick that finds a file missing since it last existed, so the daemon can log it once
   * ("recreated on the service's next start").
   */
  missing: { app: string; path: string; firstTime: boolean }[];
  /**
   * Live files that are not the file the daemon opened for the service (someone put another
   * file at the path): not rotated. `firstTime` as for `missing`.
   */
  replaced: { app: string; path: string; firstTime: boolean }[];
  /** Failures (ENOSPC while archiving, permissions, refused files, …); retried at the next tick. */
  errors: { app: string; path: string; message: string; errno?: number }[];
}

interface FileState {
  /** Time mode: the period the file was last seen in. */
  period?: string;
  /** Frequency the period key was computed with. */
  frequency?: string;
  /** Last rotation mode seen (probed at first sight, updated by every rotation). */
  mode?: RotationKind;
  missing: boolean;
  /** The file existed at some tick: only a file that existed (or that this daemon opened) is "gone". */
  seen?: boolean;
  replaced: boolean;
  /** Wall time from which a tick must look at the file again (0: the next tick). */
  dueAt: number;
}

/** Wall and monotonic time that moved apart by more than this since the last run: the wall clock jumped. */
const CLOCK_JUMP_MS = 1000;
/** A run gives the event loop a turn after this much work (ms), so requests are answered meanwhile. */
const YIELD_AFTER_MS = 5;
/** probeModes names at most this many copy+truncate files in its warning. */
const PROBE_NAMED = 20;

export function emptyReport(): TickReport {
  return { rotated: [], deleted: [], missing: [], replaced: [], errors: [] };
}

/** The log folders one run has opened, each once (null: the folder does not exist). */
type RunDirs = Map<string, LogDir | null>;

export class LogRotator {
  private readonly clock: Clock;
  private readonly log: Logger;
  private files: ManagedLog[] = [];
  private readonly byPath = new Map<string, ManagedLog>();
  private readonly state = new Map<string, FileState>();
  /** The run in progress (runs go one at a time). */
  private running: Promise<unknown> = Promise.resolve();
  /** Runs queued or in progress. */
  private pending = 0;
  /** Counts setFiles calls: a run that a reload overtook does not plan with the old config. */
  private generation = 0;
  /** The earliest dueAt of every managed file: before it a tick has nothing to do. */
  private nextDueAt = 0;
  /** Wall and monotonic time at the end of the last run, to notice a wall clock that jumped since. */
  private plannedWall = 0;
  private plannedMono = 0;

  constructor(opts: { clock: Clock; log?: Logger }) {
    this.clock = opts.clock;
    this.log = opts.log ?? logger("logs");
  }

  /** The files to manage from now on (every service's stdout, stderr, stop-command logs). */
  setFiles(files: ManagedLog[]): void {
    const seen = new Set<string>();
    this.files = [];
    this.byPath.clear();
    for (const f of files) {
      if (seen.has(f.path)) continue; // the config forbids sharing; never rotate twice
      seen.add(f.path);
      this.files.push(f);
      this.byPath.set(f.path, f);
    }
    for (const p of [...this.state.keys()]) if (!seen.has(p)) this.state.delete(p);
    // A reload may change a file's mode, frequency or max age: every file is looked at again.
    this.generation++;
    for (const st of this.state.values()) st.dueAt = 0;
    this.nextDueAt = 0;
  }

  /** The periodic check: rotate what is due, delete what expired. Cheap when nothing is due. */
  tick(): Promise<TickReport> {
    if (!this.anythingDue() && this.pending === 0) return Promise.resolve(emptyReport());
    return this.queue(undefined, false);
  }

  private anythingDue(): boolean {
    const wall = this.clock.wallMs();
    const drift = (wall - this.plannedWall) - (this.clock.monotonicMs() - this.plannedMono);
    if (Math.abs(drift) > CLOCK_JUMP_MS) {
      // The wall clock was set (NTP step, an operator): every period end planned from the old time is wrong.
      for (const st of this.state.values()) st.dueAt = 0;
      this.nextDueAt = 0;
    }
    return wall >= this.nextDueAt;
  }

  /** Rotate now, whatever the schedule, the files of `apps` (all when omitted or empty). */
  rotateNow(apps?: string[]): Promise<TickReport> {
    return this.queue(apps && apps.length > 0 ? new Set(apps) : undefined, true);
  }

  /** The rotation mode last seen for `file` ("unknown" before the first tick finds it). */
  modeOf(file: string): RotationKind | "unknown" {
    return this.state.get(file)?.mode ?? "unknown";
  }

  /**
   * The rotation mode of `file` for status: the one last seen, else probed now (and logged
   * once, like a tick does) when it is a managed file that exists; "unknown" when it does not.
   */
  probeMode(file: string): RotationKind | "unknown" {
    const known = this.state.get(file)?.mode;
    if (known) return known;
    const f = this.byPath.get(file);
    if (!f) return "unknown";
    const mode = probeRotationMode(file, allowedOwners(f.owner?.uid));
    if (mode !== "unknown") this.noteMode(f, this.stateOf(file), mode);
    return mode;
  }

  /**
   * probeMode for every managed file not probed yet: the daemon says at start (and after a
   * reload) how the files are rotated, in one line per mode rather than one per file (10,000
   * lines at 5000 services: issue 15). Each folder is opened once for all its files.
   */
  probeModes(): void {
    const dirs: RunDirs = new Map();
    const copying: string[] = [];
    let collapsing = 0;
    try {
      for (const f of this.files) {
        if (this.state.get(f.path)?.mode) continue;
        const dir = this.probeDirOf(dirs, f.path);
        const mode = dir ? probeRotationModeIn(dir, path.basename(f.path), allowedOwners(f.owner?.uid)) : "unknown";
        if (mode === "unknown") continue;
        this.stateOf(f.path).mode = mode;
        if (mode === "collapse") collapsing++;
        else copying.push(f.path);
      }
    } finally {
      for (const d of dirs.values()) d?.close();
    }
    if (collapsing > 0) this.log.info(`${plural(collapsing, "log file")}: rotation by fallocate collapse (lossless)`);
    if (copying.length > 0) {
      const named = copying.slice(0, PROBE_NAMED).join(", ") + (copying.length > PROBE_NAMED ? `, and ${copying.length - PROBE_NAMED} more (pmctl status shows each)` : "");
      this.log.warn(
        `${plural(copying.length, "log file")} on a file system that does not support FALLOC_FL_COLLAPSE_RANGE; rotation by copy+truncate (lines written during a rotation can be lost): ${named}`,
      );
    }
  }

  /** dirOf for probeModes: a folder that cannot be opened safely is probed no further ("unknown"). */
  private probeDirOf(dirs: RunDirs, file: string): LogDir | null {
    try { return this.dirOf(dirs, file); } catch {
      dirs.set(path.dirname(file), null);
      return null;
    }
  }

  private queue(apps: Set<string> | undefined, force: boolean): Promise<TickReport> {
    this.pending++;
    const run = this.running.then(() => this.run(apps, force)).finally(() => { this.pending--; });
    this.running = run.catch(() => {});
    return run;
  }

  private async run(apps: Set<string> | undefined, force: boolean): Promise<TickReport> {
    const report = emptyReport();
    const now = this.clock.wallMs();
    const dirs: RunDirs = new Map();
    let yielded = performance.now();
    const generation = this.generation;
    try {
      for (const f of [...this.files]) {
        if (apps && !apps.has(f.app)) continue;
        const s = this.stateOf(f.path);
        if (!force && s.dueAt > now) continue;
        // Now and then let the daemon answer whatever came in: small rotations run on this
        // thread, and a thousand of them in one run would otherwise hold it for seconds.
        if (performance.now() - yielded > YIELD_AFTER_MS) {
          await new Promise((resolve) => setImmediate(resolve));
          yielded = performance.now();
        }
        const due = await this.checkFile(f, s, dirs, now, force, report);
        if (this.generation === generation) s.dueAt = due;
      }
    } finally {
      for (const d of dirs.values()) d?.close();
      this.plan();
    }
    return report;
  }

  /** Checks one file (rotation, retention); returns when it is due again. */
  private async checkFile(f: ManagedLog, s: FileState, dirs: RunDirs, now: number, force: boolean, report: TickReport): Promise<number> {
    const time = f.config.rotationMode === "time";
    let due = time ? periodEnd(f.config.rotationFrequency, now) ?? Infinity : 0;
    let dir: LogDir | null = null;
    try {
      dir = this.dirOf(dirs, f.path);
      await this.check(f, s, dir, now, force, report);
    } catch (e) {
      report.errors.push({ app: f.app, path: f.path, message: errorMessage(e), errno: errnoOf(e) });
      due = 0; // retried at the next tick
    }
    if (time && dir) {
      try {
        const kept = deleteExpiredArchives(dir, path.basename(f.path), f.config.rotationMaxAgeMs, now, allowedOwners(f.owner?.uid));
        for (const p of kept.deleted) report.deleted.push({ app: f.app, path: p, reason: "max-age" });
        due = Math.min(due, kept.nextExpiryMs);
      } catch (e) {
        report.errors.push({ app: f.app, path: f.path, message: `retention: ${errorMessage(e)}`, errno: errnoOf(e) });
        due = 0;
      }
    }
    return due;
  }

  /** After a run: when the next tick has work, and the clocks to notice a jump of the wall clock. */
  private plan(): void {
    let next = Infinity;
    for (const f of this.files) next = Math.min(next, this.state.get(f.path)?.dueAt ?? 0);
    this.nextDueAt = next;
    this.plannedWall = this.clock.wallMs();
    this.plannedMono = this.clock.monotonicMs();
  }

  private dirOf(dirs: RunDirs, file: string): LogDir | null {
    const folder = path.dirname(file);
    if (!dirs.has(folder)) dirs.set(folder, LogDir.openIfExists(folder));
    return dirs.get(folder)!;
  }

  private stateOf(file: string): FileState {
    let s = this.state.get(file);
    if (!s) {
      s = { missing: false, replaced: false, dueAt: 0 };
      this.state.set(file, s);
    }
    return s;
  }

  private async check(f: ManagedLog, s: FileState, dir: LogDir | null, now: number, force: boolean, report: TickReport): Promise<void> {
    const st = dir?.entry(path.basename(f.path)) ?? null;
    if (!dir || !st) {
      // A file never created (a disabled service, one not started yet) is missing but not gone.
      const existed = s.seen === true || openedIdentity(f.path) !== undefined;
      report.missing.push({ app: f.app, path: f.path, firstTime: !s.missing && existed });
      s.missing = true;
      s.period = undefined; // when it comes back, its mtime says which period it is in
      return;
    }
    s.missing = false;
    s.seen = true;
    if (st.isCharacterDevice()) return; // /dev/null and the like: nothing to rotate
    if (!st.isFile()) throw new Error(`${f.path} is ${kindOf(st)}, not a regular file; not rotated`);
    const identity = openedIdentity(f.path);
    if (identity && (identity.dev !== st.dev || identity.ino !== st.ino)) {
      report.replaced.push({ app: f.app, path: f.path, firstTime: !s.replaced });
      s.replaced = true;
      return;
    }
    s.replaced = false;
    if (s.mode === undefined) {
      const mode = probeRotationModeIn(dir, path.basename(f.path), allowedOwners(f.owner?.uid));
      if (mode !== "unknown") this.noteMode(f, s, mode);
    }
    if (f.config.rotationMode === "size") await this.checkSize(f, s, dir, st, force, report);
    else await this.checkTime(f, s, dir, st, now, force, report);
  }

  private async checkTime(f: ManagedLog, s: FileState, dir: LogDir, st: fs.Stats, now: number, force: boolean, report: TickReport): Promise<void> {
    const base = path.basename(f.path);
    const freq = f.config.rotationFrequency;
    if (freq === "none") {
      s.period = undefined;
      if (!force || st.size === 0) return;
      await this.rotateInto(f, s, dir, `${base}.${periodKey("daily", now)}`, report);
      return;
    }
    const current = periodKey(freq, now)!;
    if (s.period === undefined || s.frequency !== freq) {
      s.period = periodKey(freq, Math.min(st.mtimeMs, now))!;
      s.frequency = freq;
    }
    if (s.period === current && !force) return;
    if (st.size > 0) await this.rotateInto(f, s, dir, `${base}.${s.period}`, report); // throws: period kept, retried
    s.period = current;
  }

  private async checkSize(f: ManagedLog, s: FileState, dir: LogDir, st: fs.Stats, force: boolean, report: TickReport): Promise<void> {
    const base = path.basename(f.path);
    const limit = f.config.rotationSizeBytes;
    if (st.size === 0) return;
    if (!force && (limit === undefined || st.size < limit)) return;
    const keep = Math.max(0, Math.floor(f.config.rotationBackups));
    if (keep === 0) {
      await this.rotateInto(f, s, dir, null, report);
      for (const p of shiftBackups(dir, base, 0, allowedOwners(f.owner?.uid))) report.deleted.push({ app: f.app, path: p, reason: "backups" });
      return;
    }
    const staging = `${base}.rotating`;
    const entry = await this.rotateInto(f, s, dir, staging, report);
    const staged = dir.entry(staging);
    if (!staged?.isFile() || staged.size === 0) {
      if (staged?.isFile()) dir.unlink(staging);
      return; // nothing moved (less than a block): backups stay as they are
    }
    for (const p of shiftBackups(dir, base, keep, allowedOwners(f.owner?.uid))) report.deleted.push({ app: f.app, path: p, reason: "backups" });
    dir.rename(staging, `${base}.1`);
    entry.archive = dir.at(`${base}.1`);
  }

  private async rotateInto(f: ManagedLog, s: FileState, dir: LogDir, archiveName: string | null, report: TickReport): Promise<RotatedEntry> {
    const expect: LiveExpectations = { owners: allowedOwners(f.owner?.uid), identity: openedIdentity(f.path) };
    const result = await rotateInDir(dir, path.basename(f.path), archiveName, expect);
    this.noteMode(f, s, result.mode);
    const archive = archiveName === null ? null : dir.at(archiveName);
    const entry: RotatedEntry = { app: f.app, path: f.path, archive, ...result };
    report.rotated.push(entry);
    if (result.bytesMoved > 0) {
      this.log.debug(`${f.path}: ${result.bytesMoved} bytes rotated to ${archive ?? "nowhere (no backups kept)"} by ${result.mode}`);
    }
    return entry;
  }

  /** Logs once per file (and again if it changes) how the file is rotated. */
  private noteMode(f: ManagedLog, s: FileState, mode: RotationKind): void {
    if (s.mode === mode) return;
    s.mode = mode;
    if (mode === "collapse") {
      this.log.info(`${f.app}: ${f.path}: rotation by fallocate collapse (lossless)`);
    } else {
      this.log.warn(
        `${f.app}: ${f.path}: the file system does not support FALLOC_FL_COLLAPSE_RANGE; rotation by copy+truncate (lines written during a rotation can be lost)`,
      );
    }
  }
}
