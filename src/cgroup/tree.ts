/**
 * The only code that touches the cgroup file system (with the rest of src/cgroup/): the master
 * cgroup, the daemon's leaf, one cgroup per service, their processes, kill, limits (limits.ts
 * writes them) and stats.
 */
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { PmError, errorMessage } from "../util/errors.ts";
import { LiveFiles } from "./live-files.ts";
import { OOM_KILL, readMemoryStats, readPidsRecursive, readText, readWords, removeTree, USAGE_USEC } from "./read.ts";
import { defaultCgroupRoot, startedInRootWarning, type CgroupRootChoice } from "./mount.ts";
import { cgroupDirName, DAEMON_LEAF, HELPER_PREFIXES, helperCgroupDirName, serviceNameOf, type HelperKind } from "./names.ts";
import { CgroupControllers, type LimitReport } from "./limits.ts";

export interface CgroupStats {
  cpuUsageUsec: number | null;
  memoryCurrent: number | null;
  memoryPeak: number | null;
  oomKills: number | null;
}

function ioError(action: string, path: string, e: unknown): PmError {
  return new PmError("CGROUP_IO", `${action} ${path}: ${errorMessage(e)}`, { cause: e });
}

export class CgroupTree {
  readonly root: string;
  readonly masterPath: string;
  readonly daemonLeafPath: string;
  /** Why `root` is where it is, for the boot log. */
  readonly rootChoice: string;
  private readonly choice: CgroupRootChoice;
  /** cgroup.procs and cpu.stat of each service kept open, re-read with pread (issue 15). */
  private readonly live = new LiveFiles();
  /** Whether memory.* exist in a service cgroup; kept until the cgroup is removed or controllers change. */
  private readonly hasMemoryFiles = new Map<string, boolean>();
  /** Service cgroups this daemon made and never wrote cgroup.kill to (runCgroup may keep them). */
  private readonly reusable = new Set<string>();
  /** cpu.stat usage_usec when the run in a kept cgroup began: stats() reports the run's own. */
  private readonly cpuAtRunStart = new Map<string, number>();
  /** Enabling controllers and writing limit files (limits.ts). */
  private readonly controllers: CgroupControllers;

  constructor(opts: { root?: string; name: string }) {
    const choice = opts.root === undefined ? defaultCgroupRoot(opts.name, DAEMON_LEAF) : { path: opts.root, why: "cgroup_root", startedHere: false };
    this.choice = choice;
    this.root = choice.path;
    this.rootChoice = choice.why;
    this.masterPath = join(this.root, opts.name);
    this.daemonLeafPath = join(this.masterPath, DAEMON_LEAF);
    // memory.* appear in existing children when the controller is enabled
    this.controllers = new CgroupControllers(this.root, this.masterPath, () => this.hasMemoryFiles.clear());
  }

  /** Creates the master cgroup and its daemon leaf; a clear error when that is not allowed. */
  ensureMaster(): void {
    if (!existsSync(join(this.root, "cgroup.procs"))) {
      throw new PmError("CGROUP_UNAVAILABLE", `${this.root} is not a cgroup2 hierarchy (no cgroup.procs there); set cgroup_root to the cgroup2 mount`);
    }
    try {
      mkdirSync(this.daemonLeafPath, { recursive: true });
    } catch (e) {
      throw new PmError("CGROUP_UNAVAILABLE",
        `cannot create ${this.daemonLeafPath}: ${errorMessage(e)}; run as root, or delegate a cgroup subtree to this user (systemd: Delegate=yes) and point cgroup_root at it`, { cause: e });
    }
  }

  /** startedInRootWarning (mount.ts) for this tree, as its root's cgroup.subtree_control is now. */
  startedInRootWarning(): string | null {
    return startedInRootWarning(this.choice, readWords(join(this.root, "cgroup.subtree_control")));
  }

  /** Moves a process (the daemon) into the daemon leaf, so the master may enable controllers. */
  moveIntoDaemonLeaf(pid: number): void {
    try { writeFileSync(join(this.daemonLeafPath, "cgroup.procs"), String(pid)); }
    catch (e) { throw new PmError("CGROUP_UNAVAILABLE", `cannot move pid ${pid} into ${this.daemonLeafPath}: ${errorMessage(e)}`, { cause: e }); }
  }

  /** Service names → cgroup paths: every exit and start asks several times (issue 15). */
  private readonly paths = new Map<string, string>();

  servicePath(service: string): string {
    let path = this.paths.get(service);
    if (path === undefined) this.paths.set(service, (path = join(this.masterPath, cgroupDirName(service))));
    return path;
  }

  /**
   * While withListing runs: the names in the master folder, from one readdir. A service cgroup
   * not among them does not exist (only this daemon makes them, and adds what it makes), so the
   * boot asks the kernel nothing about it: no failed access, open, rmdir or thrown error per
   * service (issue 15: ~6 calls and 3 exceptions a service at 5000).
   */
  private listed: Set<string> | null = null;

  /**
   * Runs `work` (the daemon's boot, synchronous: sweepHelperCgroups, then the supervisor's) with
   * the master folder listed once (see `listed`); listServices and sweepHelperCgroups use it too.
   */
  withListing<T>(work: () => T): T {
    if (this.listed) return work();
    try { this.listed = new Set(readdirSync(this.masterPath)); } catch { return work(); }
    try { return work(); } finally { this.listed = null; }
  }

  /** The names in the master folder: the listing while withListing runs (kept up to date), else read now; [] when unreadable. */
  private masterEntries(): string[] {
    if (this.listed) return [...this.listed];
    try { return readdirSync(this.masterPath); } catch { return []; }
  }

  /** True when the listing says the cgroup folder `path` does not exist (false: not known, or it does). */
  private knownAbsent(path: string): boolean {
    return this.listed !== null && dirname(path) === this.masterPath && !this.listed.has(basename(path));
  }

  private made(path: string): void {
    this.listed?.add(basename(path));
    // memory.* exist in a new cgroup exactly when the master's subtree_control enables memory.
    if (!this.hasMemoryFiles.has(path)) this.hasMemoryFiles.set(path, this.controllers.ofServices().has("memory"));
  }

  /** Whether the service's cgroup exists (populated or not). */
  hasService(service: string): boolean {
    const path = this.servicePath(service);
    return !this.knownAbsent(path) && existsSync(path);
  }

  createService(service: string): string {
    const path = this.servicePath(service);
    try { mkdirSync(path, { recursive: true }); } catch (e) { throw ioError("cannot create", path, e); }
    this.listed?.add(basename(path));
    return path;
  }

  /**
   * The cgroup for a new run. The empty cgroup of this daemon's last run is kept as it is when
   * nothing of that run can show in the next one; removing it and making it again cost the
   * restart ~0.1 ms of the daemon's time and ~0.3 ms more until the child ran (the kernel tears
   * the old cgroup down while the clone wants the same lock; issue 15, restart after kill -9).
   * Kept only when all of these hold, else it is made anew (freshService):
   * - this daemon made it and never wrote its cgroup.kill: on the kernels we run on (6.x), a
   *   cgroup that ever received cgroup.kill goes on killing every process later spawned into it
   *   with CLONE_INTO_CGROUP (its kill sequence number no longer matches the parent's). A kill
   *   written by someone else is caught right after the spawn (start-run.ts), which then calls
   *   retire() and starts the run again in a fresh cgroup;
   * - cgroup.events says `populated 0` (no process in it or below) and not `frozen 1`;
   * - no memory.* files: memory.peak and the OOM count cannot be reset, and status reports them
   *   per run. CPU usage can: the counter at the start of the run is subtracted (stats()).
   * Limits stay written (every change of them is applied to the live cgroup).
   */
  runCgroup(service: string): { path: string; kept: boolean } {
    const path = this.servicePath(service);
    if (this.reusable.has(path) && !this.memoryFilesIn(path)) {
      const events = this.live.read(path, "cgroup.events");
      if (events !== null && /^populated 0$/m.test(events) && !/^frozen 1$/m.test(events)) {
        const m = USAGE_USEC.exec(this.live.read(path, "cpu.stat") ?? "");
        this.cpuAtRunStart.set(path, m ? Number(m[1]) : 0);
        return { path, kept: true };
      }
    }
    return { path: this.freshService(service), kept: false };
  }

  /** cpu.stat usage_usec at the start of the run in a kept cgroup (undefined: a fresh cgroup, from 0). */
  cpuAtStart(service: string): number | undefined {
    return this.cpuAtRunStart.get(this.servicePath(service));
  }

  /**
   * An adopted run's start counter, as the daemon that started it saved it: the cgroup it kept
   * also counts its earlier runs. Ignored when above the counter now (not the same cgroup).
   */
  adoptCpuAtStart(service: string, usec: number | undefined): void {
    if (usec === undefined || !Number.isFinite(usec) || usec <= 0) return;
    const path = this.servicePath(service);
    const m = USAGE_USEC.exec(this.live.read(path, "cpu.stat") ?? "");
    if (m && Number(m[1]) >= usec) this.cpuAtRunStart.set(path, usec);
  }

  /** The service's cgroup may have received cgroup.kill: the next run gets a fresh one. */
  retire(service: string, waitEmptyMs = 0): void {
    this.reusable.delete(this.servicePath(service));
    // A child killed by the kernel is gone from /proc's view (a zombie) a moment before it has
    // left its cgroup (on 6.x the unlink waits for its last context switch); until then the
    // cgroup cannot be removed, and freshService would hand out this one again. Checked every
    // millisecond, at most `waitEmptyMs`: this is the rare retry after someone's cgroup.kill.
    for (let waited = 0; waited < waitEmptyMs && this.populated(service, false); waited++) Bun.sleepSync(1);
  }

  /**
   * A clean cgroup for a new run: an empty existing one is removed and made again (see
   * runCgroup for why a cgroup that received cgroup.kill must not be used again). Costs about
   * 0.05 ms. One still populated or with children is used as it is.
   */
  freshService(service: string): string {
    const path = this.servicePath(service);
    // The new cgroup's files are new: drop the kept fds. Whether memory.* exist stays known: it
    // depends on the master's subtree_control, which only enableControllers changes.
    this.live.forget(path);
    this.reusable.delete(path);
    this.cpuAtRunStart.delete(path);
    let gone = true;
    if (!this.knownAbsent(path)) {
      try { rmdirSync(path); } catch (e) { gone = (e as NodeJS.ErrnoException).code === "ENOENT"; }
    }
    if (gone) {
      try { mkdirSync(path); this.reusable.add(path); this.made(path); return path; } catch { /* master missing, or made meanwhile */ }
    }
    return this.createService(service);
  }

  /** Removes a service's cgroup if it is empty; false when it still holds processes. */
  removeService(service: string): boolean {
    const path = this.servicePath(service);
    this.forget(path);
    const removed = removeTree(path);
    if (removed) this.listed?.delete(basename(path));
    return removed;
  }

  /** Drops what is kept open or known about a cgroup folder that is about to go. */
  private forget(path: string): void {
    this.live.forget(path);
    this.hasMemoryFiles.delete(path);
    this.reusable.delete(path);
    this.cpuAtRunStart.delete(path);
  }

  /** fds kept open for services (a test checks removal closes them). */
  get openFileCount(): number { return this.live.openCount; }

  /** Names of services that have a cgroup under the master (populated or not). */
  listServices(): string[] {
    const names: string[] = [];
    for (const e of this.masterEntries()) {
      if (e.includes(".") && !e.startsWith("_")) continue; // interface files like cgroup.procs
      const name = serviceNameOf(e);
      if (name === null) continue;
      try { if (statSync(join(this.masterPath, e)).isDirectory()) names.push(name); } catch { /* vanished */ }
    }
    return names;
  }

  /**
   * Every PID in the service's cgroup and any cgroups below it. `keep: false` (a run just
   * started): a file not kept open yet is read by path and not kept. Every fd the daemon holds
   * is copied by each later spawn's clone (dup_fd, issue 15: 3 fds a service at boot), so the
   * files are kept from the first status or exit on, where they are read again.
   */
  pids(service: string, keep = true): number[] {
    const path = this.servicePath(service);
    return readPidsRecursive(path, this.live.read(path, "cgroup.procs", keep));
  }

  /** The kernel's word on whether any process is left (cgroup.events `populated`); `keep` as for pids. */
  populated(service: string, keep = true): boolean {
    const path = this.servicePath(service);
    if (this.knownAbsent(path)) return false;
    const events = this.live.read(path, "cgroup.events", keep);
    if (events === null) return false;
    return /^populated 1$/m.test(events);
  }

  /**
   * A fresh, empty cgroup for one run of the service's stop_command or reload_command, beside the
   * service's own (inside it, the command would keep the service's cgroup populated; in the
   * daemon's, whatever it forks would escape every limit and outlive it). Throws when one from an
   * earlier run still holds processes (they are killed; the next run gets a fresh one).
   */
  freshHelperCgroup(kind: HelperKind, service: string): string {
    const path = join(this.masterPath, helperCgroupDirName(kind, service));
    if (existsSync(path)) {
      try { rmdirSync(path); } catch (e) {
        void this.emptyAndRemove(path);
        throw ioError(`an earlier ${kind} command's cgroup is still busy:`, path, e);
      }
    }
    try { mkdirSync(path); } catch (e) { throw ioError("cannot create", path, e); }
    return path;
  }

  /** The command is over: kills whatever it left in its cgroup and removes the cgroup. */
  endHelperCgroup(kind: HelperKind, service: string): Promise<boolean> {
    return this.emptyAndRemove(join(this.masterPath, helperCgroupDirName(kind, service)));
  }

  /** At boot: helper cgroups a previous daemon left (it died mid-stop) are emptied and removed. */
  sweepHelperCgroups(): void {
    for (const e of this.masterEntries()) if (HELPER_PREFIXES.some((p) => e.startsWith(p))) void this.emptyAndRemove(join(this.masterPath, e));
  }

  /**
   * cgroup.kill, then rmdir once the kernel says it is empty (cgroup.kill is asynchronous),
   * looking again every 10 ms for up to 10 s. False when it could not be removed.
   */
  private async emptyAndRemove(path: string): Promise<boolean> {
    if (!existsSync(path)) return true;
    this.killAt(path);
    for (let i = 0; i < 1000; i++) {
      try { rmdirSync(path); return true; } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return true;
        if ((e as NodeJS.ErrnoException).code !== "EBUSY") return false;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    return false;
  }

  /** SIGKILLs every process in the subtree, forks included (cgroup.kill, Linux ≥ 5.14). */
  kill(service: string): void {
    const path = this.servicePath(service);
    this.reusable.delete(path); // before the write: see runCgroup
    this.killAt(path);
  }

  private killAt(path: string): void {
    const killFile = join(path, "cgroup.kill");
    if (existsSync(killFile)) {
      try { writeFileSync(killFile, "1"); return; } catch (e) { if (!existsSync(path)) return; throw ioError("cannot write", killFile, e); }
    }
    // Older kernels: freeze so nothing forks, kill what is there, thaw so the signals land.
    const freeze = join(path, "cgroup.freeze");
    try { writeFileSync(freeze, "1"); } catch { /* not supported */ }
    for (const pid of readPidsRecursive(path, readText(join(path, "cgroup.procs")))) { try { process.kill(pid, "SIGKILL"); } catch { /* gone */ } }
    try { writeFileSync(freeze, "0"); } catch { /* not supported */ }
  }

  /** Sends a signal to every PID in the service's cgroup; returns how many were signalled. */
  signal(service: string, signal: NodeJS.Signals | number): number {
    let n = 0;
    for (const pid of this.pids(service)) {
      try { process.kill(pid, signal); n++; } catch { /* exited meanwhile */ }
    }
    return n;
  }

  /** Enables the needed controllers from the root down (limits.ts); returns the master's subtree_control. */
  enableControllers(wanted: string[], opts: { for: "master" | "services" } = { for: "services" }): Set<string> {
    return this.controllers.enable(wanted, opts);
  }

  /** Writes limit files into `path`, reporting those not in force (limits.ts). */
  writeLimits(path: string, limits: Record<string, string>): LimitReport {
    return this.controllers.writeLimits(path, limits);
  }

  /** `want`: memory.peak and memory.events are read only when asked for (the status table shows neither). */
  stats(service: string, want: { peak?: boolean; ooms?: boolean } = {}): CgroupStats {
    const path = this.servicePath(service);
    const cpu = this.live.read(path, "cpu.stat");
    const m = cpu === null ? null : USAGE_USEC.exec(cpu);
    // In a kept cgroup the counter also holds the earlier runs' time (runCgroup).
    const cpuUsageUsec = m ? Math.max(0, Number(m[1]) - (this.cpuAtRunStart.get(path) ?? 0)) : null;
    if (cpu === null || !this.memoryFilesIn(path)) return { cpuUsageUsec, memoryCurrent: null, memoryPeak: null, oomKills: null };
    return { cpuUsageUsec, ...readMemoryStats(path, { peak: want.peak ?? true, ooms: want.ooms ?? true }) };
  }

  /**
   * Whether memory.* exist in the (existing) cgroup. Without the memory controller none do: one
   * check per cgroup, not three failed reads per status, each a thrown error (issue 6).
   */
  private memoryFilesIn(path: string): boolean {
    let has = this.hasMemoryFiles.get(path);
    if (has === undefined) this.hasMemoryFiles.set(path, (has = existsSync(join(path, "memory.current"))));
    return has;
  }

  /**
   * OOM kills so far (memory.events `oom_kill`), null without the memory controller. One read:
   * the exit and spawn paths need only this, and reading cpu.stat makes the kernel flush
   * the cgroup's rstat, which cost up to 3 ms right after an exit (issue 6, restart latency).
   */
  oomKills(service: string): number | null {
    const path = this.servicePath(service);
    // Known absent (no memory controller): no failed open, no thrown error on the exit and
    // spawn paths of every restart (issue 15, restart after kill -9).
    if (this.hasMemoryFiles.get(path) === false) return null;
    const t = readText(join(path, "memory.events"));
    if (t === null) {
      if (this.hasMemoryFiles.get(path) === undefined && existsSync(path)) this.hasMemoryFiles.set(path, existsSync(join(path, "memory.current")));
      return null;
    }
    const m = OOM_KILL.exec(t);
    return m ? Number(m[1]) : null;
  }

}
