/**
 * Runs the start gate and health checks (readiness.ts) of every unit: one gate per run, begun
 * when the supervisor reports a spawn (or an adoption) and ended with the run. It watches the
 * supervisor's transitions through the observer hook, runs the probes (probes.ts) and the gate's
 * one timer, and tells the supervisor when a run has failed (a `fail` event: stop it, then the
 * restart policy decides).
 */
import type { ServiceConfig } from "../config/types.ts";
import type { CgroupTree } from "../cgroup/index.ts";
import type { Clock } from "../util/clock.ts";
import { errorMessage } from "../util/errors.ts";
import { describeExit, isFailure } from "./policy.ts";
import { beginGate, gateStep, type GateConfig, type GateEffect, type GateEvent, type GateState } from "./readiness.ts";
import { describeCheck, LogCursor, runProbe } from "./probes.ts";
import type { UnitEvent, UnitState } from "./unit.ts";
import type { Unit } from "./supervisor.ts";
import { startMsOf } from "../config/service.ts";

interface Run {
  cfg: GateConfig;
  state: GateState;
  timer: ReturnType<typeof setTimeout> | null;
  logs: LogCursor | null;
}

/** The start gate of a unit's current (or last) run, for requests and status. */
export interface GateView {
  state: GateState | null;
  /** Why the last start failed, including a spawn that failed. */
  startFailure: string | null;
  /** Counts starts (spawns and spawn failures). */
  runs: number;
  /**
   * The outcome of each recent start, by its number in `runs`: a start request answers with the
   * first start after it, even when the restart policy has begun another one since.
   */
  outcomes: { run: number; ok: boolean; reason: string | null }[];
  /** MAINPID= of the current run (checked to be in its cgroup). */
  notifyMainPid: number | null;
  /** The last time a run was found unhealthy (liveness), kept across runs: why and when (wall ms). */
  lastUnhealthy: { reason: string; atWallMs: number } | null;
}

export function gateConfigOf(svc: ServiceConfig): GateConfig {
  const r = svc.readiness;
  const l = svc.liveness;
  return {
    startMs: startMsOf(svc.process, r !== undefined),
    ...(r ? { readiness: { intervalMs: r.intervalMs, timeoutMs: r.timeoutMs, failOnTimeout: r.failOnTimeout, notify: r.check.kind === "notify", what: describeCheck(r.check) } } : {}),
    ...(l ? { liveness: { intervalMs: l.intervalMs, failureThreshold: l.failureThreshold, ...(l.watchdogMs !== undefined ? { watchdogMs: l.watchdogMs } : {}), notify: l.check.kind === "notify", what: describeCheck(l.check) } } : {}),
  };
}

export interface GateRunnerDeps {
  cgroups: CgroupTree;
  clock: Clock;
  /** Tell the supervisor that a run failed (readiness timeout, liveness). */
  fail(unit: Unit, reason: string): void;
  /** sd_notify sockets (notify.ts): opened before a notify service starts, read before a timer decides. */
  notify?: { ensure(unit: Unit): void; drain(unit: Unit): void; wake(): void };
}

export class GateRunner {
  private readonly runs = new WeakMap<Unit, Run>();
  private readonly views = new WeakMap<Unit, GateView>();
  /** Log sizes taken just before a spawn, for a log readiness check of the run to come. */
  private readonly pendingLogs = new WeakMap<Unit, LogCursor>();

  constructor(private readonly deps: GateRunnerDeps) {}

  view(unit: Unit): GateView {
    let v = this.views.get(unit);
    if (!v) { v = { state: null, startFailure: null, runs: 0, outcomes: [], lastUnhealthy: null, notifyMainPid: null }; this.views.set(unit, v); }
    return v;
  }

  /** The supervisor's observer: called after each transition, before its effects run. */
  observe(unit: Unit, before: UnitState, event: UnitEvent): void {
    const after = unit.state;
    if (after.phase === "starting" && (before.phase !== "starting" || event.type === "exited")) {
      this.deps.notify?.ensure(unit);
      const wantsLog = unit.config.readiness?.check.kind === "log";
      if (wantsLog) this.pendingLogs.set(unit, new LogCursor([unit.config.logs.stdout, unit.config.logs.stderr]));
    }
    switch (event.type) {
      case "spawned":
        if (after.phase === "running") this.begin(unit, false);
        return;
      case "boot":
        if (after.phase === "running" && before.phase !== "running") this.begin(unit, true);
        return;
      case "spawnFailed": {
        const v = this.view(unit);
        v.runs++;
        v.state = null;
        v.startFailure = `could not start: ${event.message}`;
        this.record(v, false, v.startFailure);
        return;
      }
      case "mainExited":
        // exit_type says the main process's exit ended the service: that exit is the run's end
        // for the gate (a pending start failed by it), though the rest of the cgroup is still stopping.
        if ((after.phase === "stopping" || after.phase === "killing") && before.phase === "running") {
          this.step(unit, { type: "ended", exitText: describeExit(event.exit), failure: isFailure(event.exit) }, false);
        }
        return;
      case "exited": {
        const exit = after.lastExit;
        this.step(unit, { type: "ended", exitText: exit ? describeExit(exit) : "exited", failure: exit ? isFailure(exit) : true }, false);
        this.end(unit);
        return;
      }
    }
    if ((after.phase === "stopping" || after.phase === "killing") && before.phase !== "stopping" && before.phase !== "killing") {
      this.step(unit, { type: "stopping" }, false);
    }
  }

  /** A message from the service over its notify socket (already checked to come from its cgroup). */
  notify(unit: Unit, msg: { ready?: boolean; status?: string; watchdog?: boolean; stopping?: boolean; mainPid?: number }): void {
    const { mainPid, ...rest } = msg;
    if (mainPid !== undefined && this.runs.has(unit)) {
      this.view(unit).notifyMainPid = mainPid;
      unit.log.info(`MAINPID=${mainPid}`);
    }
    this.step(unit, { type: "notify", ...rest }, true);
  }

  /** The unit is forgotten (update removed it) or the daemon exits. */
  end(unit: Unit): void {
    const run = this.runs.get(unit);
    if (run?.timer) clearTimeout(run.timer);
    this.runs.delete(unit);
  }

  private begin(unit: Unit, adopted: boolean) {
    this.end(unit);
    const cfg = gateConfigOf(unit.config);
    const logs = adopted ? (unit.config.readiness?.check.kind === "log" ? new LogCursor([]) : null) : this.pendingLogs.get(unit) ?? null;
    this.pendingLogs.delete(unit);
    const t = beginGate(cfg, this.deps.clock.monotonicMs(), adopted);
    if (adopted) this.deps.notify?.ensure(unit);
    const run: Run = { cfg, state: t.state, timer: null, logs };
    this.runs.set(unit, run);
    const v = this.view(unit);
    v.runs++;
    v.state = t.state;
    v.startFailure = null;
    v.notifyMainPid = null;
    this.recordOutcome(v, t.state);
    this.apply(unit, run, t.effects);
    this.deps.notify?.wake();
  }

  private step(unit: Unit, ev: GateEvent, notifyListeners: boolean) {
    const run = this.runs.get(unit);
    if (!run) return;
    const t = gateStep(run.state, ev, run.cfg, this.deps.clock.monotonicMs());
    run.state = t.state;
    const v = this.view(unit);
    v.state = t.state;
    if (t.state.outcome === "failed" && t.state.failure) v.startFailure ??= t.state.failure;
    this.recordOutcome(v, t.state);
    this.apply(unit, run, t.effects);
    if (notifyListeners) for (const fn of [...unit.listeners]) fn();
  }

  /** The current run's outcome, once it has one. */
  private recordOutcome(v: GateView, s: GateState) {
    if (s.outcome !== null && !v.outcomes.some((o) => o.run === v.runs)) this.record(v, s.outcome === "up", s.outcome === "up" ? null : s.failure);
  }

  private record(v: GateView, ok: boolean, reason: string | null) {
    v.outcomes.push({ run: v.runs, ok, reason });
    if (v.outcomes.length > 16) v.outcomes.shift();
  }

  private apply(unit: Unit, run: Run, effects: GateEffect[]) {
    for (const e of effects) {
      switch (e.type) {
        case "arm":
          if (run.timer) clearTimeout(run.timer);
          run.timer = setTimeout(() => {
            run.timer = null;
            this.deps.notify?.drain(unit); // a WATCHDOG=1 or READY=1 already sent counts before the timer decides
            if (this.runs.get(unit) === run && run.timer === null) this.step(unit, { type: "timer" }, true);
          },
            Math.max(0, e.atMs - this.deps.clock.monotonicMs()));
          break;
        case "disarm":
          if (run.timer) clearTimeout(run.timer);
          run.timer = null;
          break;
        case "probe": this.probe(unit, run, e.probe); break;
        case "startFailed":
          this.view(unit).startFailure = e.reason;
          if (e.stop) this.deps.fail(unit, `start failed: ${e.reason}`);
          break;
        case "unhealthy":
          this.view(unit).lastUnhealthy = { reason: e.reason, atWallMs: this.deps.clock.wallMs() };
          this.deps.fail(unit, e.reason);
          break;
        case "log": unit.log[e.level](e.message); break;
        case "up": case "ready": break; // seen by waiters through the unit's listeners
      }
    }
  }

  private probe(unit: Unit, run: Run, which: "readiness" | "liveness") {
    const probe = which === "readiness" ? unit.config.readiness : unit.config.liveness;
    if (!probe) { this.step(unit, { type: "probeResult", probe: which, ok: false, detail: "no check configured" }, true); return; }
    const ctx = { svc: unit.config, cgroupPath: this.deps.cgroups.servicePath(unit.name), timeoutMs: probe.probeTimeoutMs, logs: run.logs };
    runProbe(probe.check, ctx)
      .catch((e) => ({ ok: false, detail: errorMessage(e) }))
      .then((r) => { if (this.runs.get(unit) === run) this.step(unit, { type: "probeResult", probe: which, ok: r.ok, detail: r.detail }, true); });
  }
}
