/**
 * The small state file: what the kernel cannot tell a new daemon (operator intent, restart
 * history, last exit, start times). Written atomically: temp file, fsync, rename, fsync dir.
 * Writes are coalesced to one per event-loop turn; `flush()` writes now.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import type { Logger } from "../util/log.ts";
import { errorMessage } from "../util/errors.ts";
import type { LastExit, Phase } from "./unit.ts";
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
}

interface StateFile {
  version: 1;
  units: Record<string, PersistedUnit>;
}

export class StateStore {
  private units: Record<string, PersistedUnit> = {};
  private pending = false;

  constructor(readonly path: string, private readonly log: Logger) {}

  /** Loads the file; a missing file is an empty state, a corrupt one is logged and ignored. */
  load(): Record<string, PersistedUnit> {
    let text: string;
    try { text = readFileSync(this.path, "utf8"); } catch { return (this.units = {}); }
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
    setImmediate(() => this.flush());
  }

  flush(): void {
    this.pending = false;
    const body = JSON.stringify({ version: 1, units: this.units } satisfies StateFile);
    const tmp = `${this.path}.tmp-${process.pid}`;
    try {
      mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
      const fd = openSync(tmp, "w", 0o600);
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
