/**
 * The set of units and the runner that executes their effects. Events for all units go through
 * one queue, so a transition never runs inside another. A service is running exactly while its
 * cgroup is populated; `track()` waits for that to end without polling (proc.exited for our own
 * child, pidfds in a worker for everything else, cgroup.events as the final word; run-end.ts).
 */
import type { Subprocess } from "bun";
import type { Config, ServiceConfig } from "../config/types.ts";
import { diffConfigs } from "../config/load.ts";
import type { CgroupTree, LimitReport } from "../cgroup/index.ts";
import type { PidWatcher } from "../linux/pidwatch.ts";
import type { ScheduleTimer } from "../schedule/cron.ts";
import type { Clock } from "../util/clock.ts";
import { PmError, errorMessage } from "../util/errors.ts";
import { logger, printable, type Logger } from "../util/log.ts";
import { transition, type Effect, type UnitEvent, type UnitState } from "./unit.ts";
import { startRun, type StartedRun } from "./start-run.ts";
import { sendStop } from "./signals.ts";
import { findSavedMain } from "./main-process.ts";
import { trackRun, watchMain, type RunEndDeps } from "./run-end.ts";
import { persistedState, restoredState, type StateStore } from "./state-store.ts";
import { finishRemoval, shouldFinishRemoval } from "./removal.ts";
import { OnePerTurn } from "../util/turns.ts";
import { applyUnitLimits } from "./unit-limits.ts";
import { armUnitSchedule } from "./unit-schedule.ts";

export interface Unit {
  readonly name: string;
  config: ServiceConfig;
  state: UnitState;
  timer: ReturnType<typeof setTimeout> | null;
  /** Our own child from this daemon's spawn, for its real exit status. */
  proc: Subprocess | null;
  tracking: boolean;
  schedule: ScheduleTimer | null;
  /** Called after every transition of this unit (request waiters). */
  readonly listeners: Set<() => void>;
  oomKillsAtStart: number | null;
  limits: LimitReport | null;
  /** Limit files last written to the cgroup; null until the first write (then anything may be there). */
  writtenLimits: Record<string, string> | null;
  log: Logger;
}

export interface UpdateReport {
  added: string[];
  removed: string[];
  changed: string[];
  unchanged: string[];
  resourcesOnly: string[];
}

export interface SupervisorDeps {
  config: Config;
  cgroups: CgroupTree;
  watcher: PidWatcher;
  store: StateStore;
  clock: Clock;
  /** Sees every transition before its effects run (start-gate.ts: readiness and health). */
  observer?: (unit: Unit, before: UnitState, event: UnitEvent) => void;
  /** May hold a unit's first start (boot, added by update) until its dependencies are up; `go` starts it. */
  holdStart?: (unit: Unit, go: () => void) => boolean;
}

export class Supervisor {
  readonly units = new Map<string, Unit>();
  config: Config;
  private readonly queue: { unit: Unit; event: UnitEvent }[] = [];
  /** Units `update` is removing: the mark goes into their state entry (see removal.ts). */
  private readonly removing = new Set<string>();
  private draining = false;
  private readonly log = logger("supervisor");
  /** What run-end.ts needs to report how a run ends. */
  private readonly runEnd: RunEndDeps;

  constructor(private readonly deps: SupervisorDeps) {
    this.config = deps.config;
    this.runEnd = { cgroups: deps.cgroups, watcher: deps.watcher, exitTurns: new OnePerTurn(), dispatch: (unit, event) => this.dispatch(unit, event) };
  }

  /** Adopts populated cgroups and starts what should run. */
  boot(): void {
    const persisted = this.deps.store.load();
    for (const name of Object.keys(persisted)) if (!this.config.services.has(name) && !this.deps.cgroups.populated(name)) this.deps.store.delete(name);
    for (const svc of this.config.services.values()) this.addUnit(svc, true);
    for (const name of this.deps.cgroups.listServices()) {
      if (this.units.has(name) || !this.deps.cgroups.populated(name)) continue;
      // No definition, still running: stop it, as the removal of its file asks (removal.ts says when).
      const saved = this.deps.store.get(name);
      if (shouldFinishRemoval(saved, this.config)) void finishRemoval(name, saved, this.deps, this.log);
      else this.log.warn(`cgroup of '${name}' has processes but no service file defines it; leaving it alone while a service file is broken (it may define it); pids ${this.deps.cgroups.pids(name).join(" ")}`);
    }
  }

  private addUnit(svc: ServiceConfig, booting: boolean): Unit {
    const saved = this.deps.store.get(svc.name);
    const state = restoredState(saved);
    const unit: Unit = {
      name: svc.name, config: svc, state, timer: null, proc: null, tracking: false, schedule: null,
      listeners: new Set(), oomKillsAtStart: null, limits: null, writtenLimits: null, log: logger(svc.name),
    };
    this.units.set(svc.name, unit);
    this.applyLimits(unit);
    this.armSchedule(unit);
    const populated = this.deps.cgroups.populated(svc.name);
    if (!booting && !populated && !svc.enabled) return unit;
    const main = findSavedMain(saved, populated ? this.deps.cgroups.pids(svc.name) : [], this.deps.watcher);
    // Held until what it depends on is up; by then an operator may have started or stopped it.
    const go = () => { if (unit.state.phase === "stopped" && this.units.get(unit.name) === unit) this.dispatch(unit, { type: "boot", populated: false, main }); };
    if (!populated && this.deps.holdStart?.(unit, go)) return unit;
    this.dispatch(unit, { type: "boot", populated, main });
    // An adopted run: OOM kills from now on are this run's (earlier ones we cannot attribute);
    // its CPU time is counted from the start the last daemon saved.
    if (populated) {
      unit.oomKillsAtStart = this.deps.cgroups.oomKills(svc.name);
      this.deps.cgroups.adoptCpuAtStart(svc.name, saved?.cpuAtStartUsec);
      this.track(unit);
      watchMain(unit, unit.state.mainPid, this.runEnd);
    }
    return unit;
  }

  private armSchedule(unit: Unit) {
    armUnitSchedule(unit, this.deps.clock, this.runEnd.dispatch);
  }

  /** Writes `resources:` into the service cgroup (unit-limits.ts). */
  applyLimits(unit: Unit): void {
    applyUnitLimits(unit, this.deps.cgroups);
  }

  dispatch(unit: Unit, event: UnitEvent): void {
    this.queue.push({ unit, event });
    if (this.draining) return;
    this.draining = true;
    try {
      for (let item = this.queue.shift(); item; item = this.queue.shift()) this.step(item.unit, item.event);
    } finally {
      this.draining = false;
    }
  }

  private step(unit: Unit, event: UnitEvent) {
    if (this.units.get(unit.name) !== unit) return; // forgotten by update
    const ctx = {
      enabled: unit.config.enabled,
      scheduled: unit.config.process.schedule !== undefined,
      stopGraceMs: unit.config.process.stopGraceMs,
      restartPolicy: unit.config.restartPolicy,
      nowWallMs: this.deps.clock.wallMs(),
      exitType: unit.config.process.exitType,
      stopSignal: unit.config.process.stopSignal,
    };
    const before = unit.state.phase;
    const { state, effects } = transition(unit.state, event, ctx);
    const previous = unit.state;
    unit.state = state;
    if (state.phase !== before) unit.log.debug(`${before} -> ${state.phase} on ${event.type}`);
    this.deps.observer?.(unit, previous, event);
    // The spawn first: the transition's log line and state entry (a write(2) and a change in
    // memory; the file is written in a later turn anyway) need not sit between a crash and the
    // restart (issue 15). Lines keep their order: a spawn failure is logged after them.
    const spawning = effects.some((e) => e.type === "spawn");
    const failure = spawning ? this.spawn(unit) : null;
    for (const effect of effects) if (effect.type !== "spawn") this.run(unit, effect);
    if (failure !== null) this.spawnFailed(unit, failure);
    for (const fn of [...unit.listeners]) fn();
  }

  private run(unit: Unit, effect: Effect) {
    switch (effect.type) {
      case "spawn": return; // step() runs it first
      case "sendStop": return this.sendStop(unit);
      case "kill":
        try { this.deps.cgroups.kill(unit.name); } catch (e) { unit.log.error(errorMessage(e)); }
        return;
      case "armTimer":
        if (unit.timer) clearTimeout(unit.timer);
        unit.timer = setTimeout(() => { unit.timer = null; this.dispatch(unit, { type: "timer" }); }, effect.ms);
        return;
      case "cancelTimer":
        if (unit.timer) clearTimeout(unit.timer);
        unit.timer = null;
        return;
      case "persist": return this.persist(unit);
      case "log": return unit.log[effect.level](printable(effect.message, 1000)); // reasons may hold a service's bytes
    }
  }

  private persist(unit: Unit) {
    this.deps.store.set(unit.name, {
      ...persistedState(unit.state),
      stop: { stopSignal: unit.config.process.stopSignal, stopGraceMs: unit.config.process.stopGraceMs },
      removing: this.removing.has(unit.name) || undefined,
      cpuAtStartUsec: this.deps.cgroups.cpuAtStart(unit.name),
    });
  }

  /** Starts a run; returns why it could not start (for spawnFailed), or null. */
  private spawn(unit: Unit): string | null {
    let run: StartedRun;
    try {
      run = startRun(unit, this.deps.cgroups);
    } catch (e) {
      return errorMessage(e);
    }
    unit.proc = run.proc;
    this.dispatch(unit, { type: "spawned", pid: run.proc.pid, startTime: run.startTime });
    this.track(unit);
    watchMain(unit, run.proc.pid, this.runEnd); // the `spawned` event may still wait in the queue
    return null;
  }

  private spawnFailed(unit: Unit, message: string) {
    unit.log.error(printable(message, 1000)); // may hold a service's bytes (file names, env-file errors)
    this.dispatch(unit, { type: "spawnFailed", message });
  }

  private sendStop(unit: Unit) {
    // Write-ahead: the intent behind this stop (operator stop, restart) is on disk before any
    // process sees a signal. A daemon killed in between would adopt the dying service as
    // running, see it exit, and keep it down as if it had crashed.
    this.persist(unit);
    if (this.writeAhead) { this.writeAhead.push(() => sendStop(unit, this.deps.cgroups)); return; } // one flush for the batch
    this.deps.store.flush();
    sendStop(unit, this.deps.cgroups);
  }

  /**
   * Stops (or restarts) requested together share one write-ahead flush: all intents are
   * persisted, written once, then every service is signalled. A flush per service (a
   * JSON.stringify of every unit, an fsync and a rename each) made `stop all` of 100 services
   * spend 250 ms before the last signal (issue 6, stop 100).
   */
  private writeAhead: (() => void)[] | null = null;
  private batchedWriteAhead(dispatchAll: () => void): void {
    if (this.writeAhead) return dispatchAll();
    const signals: (() => void)[] = (this.writeAhead = []);
    try { dispatchAll(); } finally {
      this.writeAhead = null;
      if (signals.length > 0) { this.deps.store.flush(); for (const signal of signals) signal(); }
    }
  }

  /** Waits until the unit's cgroup is empty, then reports how the run ended (run-end.ts). */
  private track(unit: Unit) {
    trackRun(unit, this.runEnd);
  }

  // ---- requests -------------------------------------------------------------------------

  /** Resolves the names of a request; `all` (or none) means every service. */
  resolve(names: string[] | undefined): Unit[] {
    if (!names || names.length === 0 || names.includes("all")) return [...this.units.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return names.map((n) => {
      const unit = this.units.get(n);
      if (!unit) throw new PmError("UNKNOWN_SERVICE", `unknown service '${n}' (known: ${[...this.units.keys()].join(", ") || "none"})`);
      return unit;
    });
  }

  /** Resolves once `done(unit)` holds, checked after every transition of the unit. */
  waitFor(unit: Unit, done: (u: Unit) => boolean): Promise<void> {
    if (done(unit)) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => { if (done(unit) || this.units.get(unit.name) !== unit) { unit.listeners.delete(check); resolve(); } };
      unit.listeners.add(check);
    });
  }

  async start(units: Unit[]): Promise<void> {
    this.refuseRemoving(units, "start");
    for (const u of units) this.dispatch(u, { type: "start" });
    await Promise.all(units.map((u) => this.waitFor(u, settledAfterStart)));
  }

  async restart(units: Unit[]): Promise<void> {
    this.dispatchRestart(units);
    await Promise.all(units.map((u) => this.waitFor(u, settledAfterStart)));
  }

  /** Asks for the restarts (one write-ahead flush for all their stops); throws, dispatching none, when update is removing one. */
  dispatchRestart(units: Unit[]): void {
    this.refuseRemoving(units, "restart");
    this.batchedWriteAhead(() => { for (const u of units) this.dispatch(u, { type: "restart" }); });
  }

  /** A service `update` is stopping to forget must not be started again: it would run on unmanaged. */
  refuseRemoving(units: Unit[], what: string) {
    const removing = units.filter((u) => this.removing.has(u.name)).map((u) => u.name);
    if (removing.length > 0) throw new PmError("UNKNOWN_SERVICE", `cannot ${what} ${removing.join(", ")}: its service file is gone and update is removing it`);
  }

  /**
   * Stops all of them in parallel; resolves when each stop is over (its cgroup emptied). A
   * start that came in meanwhile runs the service again right after: waiting for it to be
   * inactive would then wait for ever.
   */
  async stop(units: Unit[]): Promise<void> {
    this.batchedWriteAhead(() => { for (const u of units) this.dispatch(u, { type: "stop" }); });
    await Promise.all(units.map((u) => this.waitFor(u, stopOver)));
  }

  /**
   * Applies a new config: start added services, stop and forget removed ones, restart changed
   * ones, re-apply limits of resource-only changes, leave the rest alone. A config with any bad
   * service file is rejected whole before anything changes.
   */
  async update(next: Config): Promise<UpdateReport> {
    if (next.serviceErrors.length > 0) {
      const { formatProblem } = await import("../config/types.ts");
      // The first problem shares the first line (what pmctl shows first); any more follow, one a line.
      throw new PmError("CONFIG_INVALID", `update rejected, nothing changed: ${next.serviceErrors.map(formatProblem).join("\n")}`);
    }
    const diff = diffConfigs(this.config, next);
    this.config = { ...next, master: this.config.master };
    const work: Promise<unknown>[] = [];
    for (const name of diff.removed) {
      const unit = this.units.get(name)!;
      // On disk before the stop begins: a daemon killed mid-removal leaves it to the next one.
      this.removing.add(name);
      this.persist(unit);
      this.deps.store.flush();
      work.push(this.stop([unit]).then(() => this.forget(unit)));
    }
    for (const name of diff.resourcesOnly) {
      const unit = this.units.get(name)!;
      unit.config = next.services.get(name)!;
      this.applyLimits(unit);
    }
    for (const name of diff.changed) {
      const unit = this.units.get(name)!;
      unit.config = next.services.get(name)!;
      this.applyLimits(unit);
      this.armSchedule(unit);
      const phase = unit.state.phase;
      // A running service is restarted with the new definition; everything else (disabled,
      // enabled again, schedule added or removed, a stop in progress) is the state machine's call.
      if (unit.config.enabled && (phase === "running" || phase === "starting")) work.push(this.restart([unit]));
      else {
        this.dispatch(unit, { type: "configChanged", enabled: unit.config.enabled });
        work.push(this.waitFor(unit, settledAfterStart));
      }
    }
    for (const name of diff.added) {
      const unit = this.addUnit(next.services.get(name)!, false);
      work.push(this.waitFor(unit, settledAfterStart));
    }
    await Promise.all(work);
    return diff;
  }

  private forget(unit: Unit) {
    unit.schedule?.stop();
    if (unit.timer) clearTimeout(unit.timer);
    this.units.delete(unit.name);
    this.removing.delete(unit.name);
    this.deps.store.delete(unit.name);
    if (!this.deps.cgroups.removeService(unit.name)) unit.log.warn("cgroup could not be removed (not empty)");
    for (const fn of [...unit.listeners]) fn();
  }

  /**
   * Before the daemon exits as PID 1 (a container stopping): stop every service as `stop`
   * does, but keep each one's operator intent as it was, so the next start of the container
   * starts them again.
   */
  async stopAllForExit(stop: (units: Unit[]) => Promise<unknown> = (u) => this.stop(u)): Promise<void> {
    const units = [...this.units.values()];
    const intent = new Map(units.map((u) => [u, u.state.operatorStopped] as const));
    await stop(units); // the daemon passes dependency order (orchestrate.ts)
    for (const u of units) {
      u.state = { ...u.state, operatorStopped: intent.get(u)! };
      this.persist(u);
    }
  }

  /** Daemon exit: timers off, state written; services keep running. */
  shutdown(): void {
    for (const unit of this.units.values()) {
      unit.schedule?.stop();
      if (unit.timer) clearTimeout(unit.timer);
    }
    this.deps.store.flush();
  }
}

/** No stop in progress (a later start may have begun a new run). */
function stopOver(u: Unit): boolean {
  return u.state.phase !== "stopping" && u.state.phase !== "killing";
}

/** A start request is answered once the unit is no longer on its way up or down. */
function settledAfterStart(u: Unit): boolean {
  const p = u.state.phase;
  return p !== "starting" && p !== "stopping" && p !== "killing" && !(u.state.startAfterStop);
}
