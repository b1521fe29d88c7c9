/**
 * The small state file: what the kernel cannot tell a new daemon (operator intent, restart
 * history, last exit, start times). Written atomically: temp file, fsync, rename, fsync dir.
 * Writes are coalesced: the first change after a quiet spell is written in the next event-loop
 * turn, later ones at most every FLUSH_GAP_MS; `flush()` writes now, `flushPending()` writes now
 * if a change waits (the daemon calls it before each reply, so what pmctl was told is on disk).
 * One write per turn cost `stop all` of 100 services 0.5 to 2.5 s: its exits are handled one per
 * turn, and each write is a JSON.stringify of every unit, an fsync and a rename (issue 6).
 */
import { closeSync, constants, fstatSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { Logger } from "../util/log.ts";
import { PmError, errorMessage } from "../util/errors.ts";
import { selfTrusted, untrustedFolderReason } from "../util/file-trust.ts";
import { initialUnitState, type LastExit, type Phase, type UnitState } from "./unit.ts";
import type { RestartHistory } from "./policy.ts";

export interface PersistedUnit {
  operatorStopped: boolean;
  /** Only the phases that must survive a restart are kept: `suppressed` (else re-derived). */
  phase: Phase;
  history: RestartHistory;
  restarts: number;
  lastExit: LastExit | null;
  startedAtWallMs: number | null;
  suppressedReason: string | null;
  /** How its definition said to stop it, for when the definition is gone (removal.ts). */
  stop?: StopSettings;
  /** Set by `update` before it stops a service it removes (removal.ts). */
  removing?: boolean;
  /** A restart was under way (stop, then start): a new daemon finishes it. */
  startAfterStop?: boolean;
  /** The main process (PID and /proc/PID/stat start time), found again on adoption. */
  mainPid?: number | null;
  mainStartTime?: string | null;
  /** cpu.stat usage_usec of its cgroup when the run began (a kept cgroup counts earlier runs too). */
  cpuAtStartUsec?: number;
}

export interface StopSettings { stopSignal: string; stopGraceMs: number }

/** What of a unit's state goes into its entry (the rest of PersistedUnit is the runner's). */
export function persistedState(s: UnitState): Omit<PersistedUnit, "stop" | "removing" | "cpuAtStartUsec"> {
  return {
    operatorStopped: s.operatorStopped, phase: s.phase, history: s.history, restarts: s.restarts,
    lastExit: s.lastExit, startedAtWallMs: s.startedAtWallMs, suppressedReason: s.suppressedReason,
    startAfterStop: s.startAfterStop || undefined,
    mainPid: s.mainPid, mainStartTime: s.mainStartTime,
  };
}

/**
 * The state a new daemon boots a unit from (its `boot` event then says what runs now). The saved
 * main process is not restored: the boot event carries it (findSavedMain: found again in the
 * cgroup, or gone), and with an empty cgroup a gone one tells a run that ended while no daemon
 * watched (its last exit is then unknown, not the one before it).
 */
export function restoredState(saved: PersistedUnit | undefined): UnitState {
  const state = initialUnitState();
  if (!saved) return state;
  return {
    ...state,
    operatorStopped: saved.operatorStopped, history: saved.history, restarts: saved.restarts,
    lastExit: saved.lastExit, startedAtWallMs: saved.startedAtWallMs, suppressedReason: saved.suppressedReason,
    phase: saved.phase === "suppressed" ? "suppressed" : "stopped",
    startAfterStop: saved.startAfterStop === true, // a restart the previous daemon had begun
    // The saved main process is not the unit's until the boot event finds it again in the
    // cgroup (findSavedMain): a held or stopped service must not show a dead, maybe reused, PID.
  };
}

interface StateFile {
  version: 1;
  units: Record<string, PersistedUnit>;
}

export class StateStore {
  private units: Record<string, PersistedUnit> = {};
  private pending = false;
  private lastFlushMs = -Infinity;

  constructor(readonly path: string, private readonly log: Logger) {}

  /**
   * Makes the state file's folder (0700) if missing and checks that nobody but root (or the
   * daemon's uid) can create files in it: there, others could plant a state file, hold names
   * the daemon writes, or link them elsewhere. A root daemon refuses such a folder.
   */
  prepareFolder(): void {
    const dir = dirname(this.path);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const why = untrustedFolderReason(dir, selfTrusted());
    if (why === null) return;
    const message = `state_file: ${why}: others could plant or redirect the state file; use a folder only root can write (e.g. /var/lib/processmaster)`;
    if (process.getuid?.() === 0) throw new PmError("CONFIG_INVALID", message);
    this.log.warn(message);
  }

  /** Loads the file; a missing file is an empty state, a corrupt one is logged and ignored. */
  load(): Record<string, PersistedUnit> {
    this.removeStaleTemporaries();
    let text: string;
    try { text = readOwnFile(this.path); } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") this.log.warn(`state file ${this.path} is not used (${errorMessage(e)}); starting with empty state`);
      return (this.units = {});
    }
    try {
      const parsed = JSON.parse(text) as StateFile;
      if (parsed?.version !== 1 || typeof parsed.units !== "object" || parsed.units === null) throw new Error("unexpected shape");
      this.units = parsed.units;
    } catch (e) {
      this.log.warn(`state file ${this.path} is unreadable (${errorMessage(e)}); starting with empty state`);
      this.units = {};
    }
    return this.units;
  }

  /** A daemon killed in the middle of a write leaves its `<file>.tmp-PID` behind; remove those of dead PIDs. */
  private removeStaleTemporaries() {
    const prefix = `${basename(this.path)}.tmp-`;
    let names: string[];
    try { names = readdirSync(dirname(this.path)); } catch { return; }
    for (const name of names) {
      if (!name.startsWith(prefix)) continue;
      const pid = Number(name.slice(prefix.length));
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processExists(pid)) continue; // another writer, alive
      try { unlinkSync(join(dirname(this.path), name)); } catch { /* gone meanwhile */ }
    }
  }

  get(name: string): PersistedUnit | undefined { return this.units[name]; }

  set(name: string, unit: PersistedUnit): void {
    this.units[name] = unit;
    this.schedule();
  }

  delete(name: string): void {
    delete this.units[name];
    this.schedule();
  }

  private schedule() {
    if (this.pending) return;
    this.pending = true;
    const wait = this.lastFlushMs + FLUSH_GAP_MS - performance.now();
    if (wait > 0) { setTimeout(() => this.flushPending(), wait); return; }
    setImmediate(() => this.flushPending());
  }

  flushPending(): void {
    if (this.pending) this.flush();
  }

  flush(): void {
    this.pending = false;
    this.lastFlushMs = performance.now();
    const body = JSON.stringify({ version: 1, units: this.units } satisfies StateFile);
    const tmp = `${this.path}.tmp-${process.pid}`;
    try {
      mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
      const fd = createExclusive(tmp);
      try {
        // A nearly full disk takes part of a write without an error; renaming that would
        // replace the good file with a truncated one. Loop until all is written (or ENOSPC).
        const bytes = Buffer.from(body);
        for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off, bytes.length - off);
        fsyncSync(fd);
      } finally { closeSync(fd); }
      renameSync(tmp, this.path);
      const dirFd = openSync(dirname(this.path), "r");
      try { fsyncSync(dirFd); } finally { closeSync(dirFd); }
    } catch (e) {
      try { unlinkSync(tmp); } catch { /* not created, or already renamed */ }
      this.log.error(`cannot write state file ${this.path}: ${errorMessage(e)}`);
    }
  }
}

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = constants;

/**
 * The state file's text, only when it is a regular file (no symlink followed) that this
 * process's uid owns and nobody else can write: a file someone else planted is not obeyed.
 */
function readOwnFile(path: string): string {
  const fd = openSync(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error("not a regular file");
    if (st.uid !== process.getuid?.()) throw new Error(`owned by uid ${st.uid}, not by the daemon's uid ${process.getuid?.()}`);
    if (st.mode & 0o022) throw new Error(`writable by others (mode ${(st.mode & 0o7777).toString(8)})`);
    return readFileSync(fd, "utf8");
  } finally { closeSync(fd); }
}

/**
 * Creates the temporary file anew (O_EXCL, no symlink followed): whatever has its name (a
 * leftover, or a link planted to make us overwrite another file) is unlinked, never written.
 */
function createExclusive(path: string): number {
  const open = () => openSync(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  try { return open(); } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    unlinkSync(path);
    return open();
  }
}

/** The least time between two state writes while changes keep coming. */
const FLUSH_GAP_MS = 50;

function processExists(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === "EPERM"; }
}
