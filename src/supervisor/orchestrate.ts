/**
 * Requests that span services and wait for outcomes: start (with what each needs first, in
 * dependency order, parallel where the graph allows), restart, stop (dependents first, or a
 * warning), `wait`, and holding a service's first start at boot until its dependencies are up.
 * Starts, restarts and boot follow the graph itself: each service waits for its own
 * dependencies' conditions (deps.ts withDependencies, conditionStatus), not for a level of
 * unrelated services; stops go by deps.ts stopLevels. The outcome of a start comes from the
 * start gate (start-gate.ts).
 */
import { logger, printable } from "../util/log.ts";
import { describeExit, isFailure } from "./policy.ts";
import { conditionStatus, dependentsOf, stopLevels, withDependencies, type ConditionStatus, type DependencyGraph, type DependencyView } from "./deps.ts";
import type { GateRunner } from "./start-gate.ts";
import type { Supervisor, Unit } from "./supervisor.ts";
import { isActive } from "./unit.ts";
import { lastLines } from "./probes.ts";
import type { DependencyCondition } from "../config/types.ts";

export interface StartResult { name: string; ok: boolean; reason: string | null; stderr: string[] }

const STDERR_LINES = 5;
const NONE: ReadonlySet<string> = new Set();

export class Orchestrator {
  /** Units whose first start waits for their dependencies (boot, or added by update). */
  private readonly held = new Map<Unit, string[]>();
  private readonly log = logger("deps");
  /** Restarts waiting to be dispatched together at the end of this turn. */
  private restartTurn: { units: Unit[]; dispatched: Promise<void> } | null = null;

  constructor(private readonly sup: Supervisor, private readonly gates: GateRunner) {}

  graph(): DependencyGraph {
    return new Map([...this.sup.units.values()].map((u) => [u.name, u.config.dependsOn ?? {}]));
  }

  /** The `holdStart` hook of the supervisor. */
  holdStart(unit: Unit, go: () => void): boolean {
    const deps = Object.entries(unit.config.dependsOn ?? {});
    const s = unit.state;
    if (deps.length === 0 || s.operatorStopped || !unit.config.enabled || unit.config.process.schedule !== undefined || s.phase === "suppressed") return false;
    this.held.set(unit, deps.map(([d, c]) => `${d} (${c})`));
    // Its dependencies may be added to the supervisor after it (boot adds them one by one).
    setImmediate(async () => {
      const failure = await this.dependenciesUp(unit);
      this.held.delete(unit);
      if (failure) {
        unit.log.warn(`not started: ${printable(failure, 1000)}`);
        this.gates.view(unit).startFailure = `not started: ${failure}`; // status says why it is down
        for (const fn of [...unit.listeners]) fn();
        return;
      }
      go();
    });
    return true;
  }

  waitingFor(unit: Unit): string[] {
    return this.held.get(unit) ?? [];
  }

  /**
   * Resolves null once every dependency of `unit` meets its condition, else why not. With
   * `starting`, each dependency is first launched (started, or restarted when `restarting` names it).
   */
  private async dependenciesUp(unit: Unit, starting?: Map<Unit, Promise<StartResult>>, restarting: ReadonlySet<string> = NONE): Promise<string | null> {
    const results = await Promise.all(Object.entries(unit.config.dependsOn ?? {}).map(async ([name, cond]) => {
      const dep = this.sup.units.get(name);
      if (!dep) return `dependency '${name}' is not a service`;
      if (starting) await this.launch(dep, starting, restarting);
      const st = await this.until(dep, cond);
      return st.kind === "failed" ? `dependency '${name}' ${st.reason} (needed: ${cond})` : null;
    }));
    return results.find((r) => r !== null) ?? null;
  }

  private view(u: Unit): DependencyView {
    const g = this.gates.view(u).state;
    const last = u.state.lastExit;
    return {
      phase: u.state.phase, startAfterStop: u.state.startAfterStop, held: this.held.has(u),
      up: g?.outcome === "up", ready: g?.ready ?? false, readinessTimedOut: g?.readinessTimedOut ?? false,
      lastExitOk: last !== null && !isFailure(last),
    };
  }

  /** Waits until `cond` of `dep` is met or cannot be met any more. */
  private async until(dep: Unit, cond: DependencyCondition): Promise<ConditionStatus> {
    let st = conditionStatus(cond, this.view(dep));
    if (st.kind !== "pending") return st;
    await this.sup.waitFor(dep, (u) => (st = conditionStatus(cond, this.view(u))).kind !== "pending" || this.sup.units.get(u.name) !== u);
    return st.kind === "pending" ? { kind: "failed", reason: "was removed" } : st;
  }

  /**
   * Starts `units` and what they need, each once its dependencies meet their conditions (so in
   * dependency order, and in parallel where the graph allows: no service waits for one it does
   * not need); answers each start's outcome.
   */
  start(units: Unit[]): Promise<StartResult[]> {
    return this.launchAll(units, NONE);
  }

  /**
   * Restarts `units` the same way: each once what it needs meets its condition, after those of
   * `units` it needs were restarted; what they need outside `units` is started first if it is down.
   */
  restart(units: Unit[]): Promise<StartResult[]> {
    return this.launchAll(units, new Set(units.map((u) => u.name)));
  }

  private async launchAll(units: Unit[], restarting: ReadonlySet<string>): Promise<StartResult[]> {
    const closure = withDependencies(this.graph(), units.map((u) => u.name));
    const starting = new Map<Unit, Promise<StartResult>>();
    const all = [...closure].map((n) => this.sup.units.get(n)!).filter(Boolean);
    // Refused whole, before anything starts, when update is removing one of them (and not later,
    // in a restart batch shared with other requests, which one refusal would fail entirely).
    this.sup.refuseRemoving(all, restarting.size > 0 ? "restart" : "start");
    return Promise.all(all.map((u) => this.launch(u, starting, restarting)));
  }

  private launch(unit: Unit, starting: Map<Unit, Promise<StartResult>>, restarting: ReadonlySet<string>): Promise<StartResult> {
    let p = starting.get(unit);
    if (p) return p;
    const restart = restarting.has(unit.name);
    p = (async () => {
      const failure = await this.dependenciesUp(unit, starting, restarting);
      if (failure) return { name: unit.name, ok: false, reason: `not ${restart ? "restarted" : "started"}: ${failure}`, stderr: [] };
      const before = this.gates.view(unit).runs;
      await (restart ? this.restartInTurn(unit) : this.sup.start([unit]));
      return this.outcome(unit, before);
    })();
    // Register before awaiting: a dependency reached twice is started once.
    starting.set(unit, p);
    return p;
  }

  /**
   * Restarts `unit` together with the others whose restart is due in this turn (independent
   * services of a `restart all`): one state-file write for all their stops, not one each (a write
   * is an fsync and a rename; see state-store.ts). Resolves once the restart is dispatched; the
   * caller then waits for its own unit's outcome only, not for the others.
   */
  private restartInTurn(unit: Unit): Promise<void> {
    if (!this.restartTurn) {
      const units: Unit[] = [];
      const dispatched = new Promise<void>((resolve, reject) => setImmediate(() => {
        this.restartTurn = null;
        try { this.sup.dispatchRestart(units); resolve(); } catch (e) { reject(e); }
      }));
      this.restartTurn = { units, dispatched };
    }
    this.restartTurn.units.push(unit);
    return this.restartTurn.dispatched;
  }

  /**
   * Stops `units`, each after the services of the request that need it. Services outside the
   * request that need one of them are stopped first with `withDependents`, else named in a warning.
   */
  async stop(units: Unit[], withDependents: boolean): Promise<{ stopped: Unit[]; warnings: string[] }> {
    const g = this.graph();
    const names = new Set(units.map((u) => u.name));
    const dependents = [...dependentsOf(g, names)].map((n) => this.sup.units.get(n)!).filter((u) => u.state.phase !== "stopped" && u.state.phase !== "exited" && u.state.phase !== "failed");
    const warnings: string[] = [];
    if (withDependents) for (const u of dependents) names.add(u.name);
    else {
      for (const u of dependents) {
        const needs = Object.keys(u.config.dependsOn ?? {}).filter((d) => names.has(d));
        if (needs.length) warnings.push(`${u.name} (${u.state.phase}) depends on ${needs.join(", ")} and keeps running; stop it too with --with-dependents`);
        else warnings.push(`${u.name} (${u.state.phase}) depends on it indirectly and keeps running; stop it too with --with-dependents`);
      }
      for (const w of warnings) this.log.warn(w);
    }
    const stopped: Unit[] = [];
    for (const level of stopLevels(g, names)) {
      const us = level.map((n) => this.sup.units.get(n)!);
      await this.sup.stop(us);
      stopped.push(...us);
    }
    return { stopped, warnings };
  }

  /**
   * The outcome of the first start after `runsBefore` (what the request began), or of the run
   * already up when the request started nothing.
   */
  async outcome(unit: Unit, runsBefore: number): Promise<StartResult> {
    const first = () => this.gates.view(unit).outcomes.find((o) => o.run > runsBefore);
    await this.sup.waitFor(unit, (u) => first() !== undefined || this.decided(u, runsBefore));
    const failed = first();
    // A start failed while its run still runs (a readiness timeout, a main process whose exit
    // ends the service): the gate records the failure before the stop; answer once that run
    // has stopped, so the answer and a status right after it agree.
    if (failed && !failed.ok) await this.sup.waitFor(unit, (u) => this.gates.view(u).runs !== failed.run || (u.state.phase !== "stopping" && u.state.phase !== "killing"));
    const v = this.gates.view(unit);
    const s = unit.state;
    const o = first();
    if (o?.ok) return { name: unit.name, ok: true, reason: null, stderr: [] };
    if (o) return { name: unit.name, ok: false, reason: o.reason ?? "start failed", stderr: lastLines(unit.config.logs.stderr, STDERR_LINES) };
    // Up, or a one-shot that finished with code 0 (exited, or scheduled again).
    const endedWell = s.phase !== "running" && !isActive(s.phase) && s.lastExit !== null && !isFailure(s.lastExit);
    const ok = (v.state?.outcome ?? "up") === "up" && (s.phase === "running" || endedWell);
    if (ok) return { name: unit.name, ok: true, reason: null, stderr: [] };
    const last = s.lastExit;
    let reason = v.startFailure ?? (last ? `${s.phase}, last exit: ${last.cause === "exit" ? describeExit(last) : last.cause}` : s.phase);
    if (s.phase === "backoff" && s.nextAttemptWallMs) reason += `; next attempt at ${new Date(s.nextAttemptWallMs).toISOString()}`;
    if (s.phase === "suppressed" && s.suppressedReason) reason += `; not restarting: ${s.suppressedReason}`;
    if (this.sup.units.get(unit.name) !== unit) reason = "removed by update";
    return { name: unit.name, ok: false, reason, stderr: lastLines(unit.config.logs.stderr, STDERR_LINES) };
  }

  private decided(u: Unit, runsBefore: number): boolean {
    if (this.sup.units.get(u.name) !== u) return true;
    switch (u.state.phase) {
      case "starting": return false;
      case "stopping": case "killing": return !u.state.startAfterStop;
      case "running": {
        if (this.gates.view(u).runs > runsBefore) return false; // a start of ours: its outcome is recorded
        const g = this.gates.view(u).state;
        return g === null || g.outcome !== null; // no gate: nothing to wait for
      }
      default: return true;
    }
  }

  /**
   * `pmctl wait`: until each service's start succeeded (or, with `ready`, it is ready). A
   * service that cannot get there (failed, stopped by the operator, …) ends the wait at once.
   */
  async wait(units: Unit[], ready: boolean, timeoutMs: number): Promise<{ name: string; ok: boolean; reason: string | null }[]> {
    const goal = (u: Unit): { done: boolean; ok: boolean; reason: string | null } => {
      const s = u.state;
      const g = this.gates.view(u).state;
      if (this.sup.units.get(u.name) !== u) return { done: true, ok: false, reason: "removed by update" };
      if (s.phase === "running" && g?.outcome === "up" && (!ready || g.ready)) return { done: true, ok: true, reason: null };
      if (this.held.has(u)) return { done: false, ok: false, reason: `waiting for ${this.held.get(u)!.join(", ")}` };
      const hopeless = s.phase === "failed" || s.phase === "suppressed" || s.phase === "exited" || ((s.phase === "stopped" || s.phase === "scheduled") && (s.operatorStopped || !u.config.enabled));
      if (hopeless) return { done: true, ok: false, reason: `${s.phase}${this.gates.view(u).startFailure ? `: ${this.gates.view(u).startFailure}` : ""}` };
      const why = s.phase === "running" ? (g?.readinessDetail ? `not ready: ${g.readinessDetail}` : ready && g?.outcome === "up" ? "not ready yet" : "starting") : s.phase;
      return { done: false, ok: false, reason: why };
    };
    return Promise.all(units.map(async (u) => {
      const r = await this.waitUntil(u, () => goal(u).done, timeoutMs);
      const g = goal(u);
      return { name: u.name, ok: g.ok, reason: r === "timeout" && !g.done ? `not ${ready ? "ready" : "up"} after ${timeoutMs}ms (${g.reason})` : g.reason };
    }));
  }

  /** Like Supervisor.waitFor, with a deadline after which the waiter is removed. */
  private waitUntil(unit: Unit, done: () => boolean, timeoutMs: number): Promise<"done" | "timeout"> {
    if (done()) return Promise.resolve("done");
    return new Promise((resolve) => {
      const check = () => { if (done()) { finish(); resolve("done"); } };
      const timer = setTimeout(() => { finish(); resolve("timeout"); }, timeoutMs);
      const finish = () => { clearTimeout(timer); unit.listeners.delete(check); };
      unit.listeners.add(check);
    });
  }
}
