/**
 * The per-service state machine. Pure: (state, event, context) → (state, effects). The runner
 * executes the effects (spawn, signal, timers, cgroup.kill, persist) and feeds back events.
 * Like systemd, each state arms at most one timer; entering a state cancels the previous one.
 *
 * Phases say what is running now; `lastExit` (the result of the last run) is separate and sticky.
 */
import type { ExitType, RestartPolicyConfig } from "../config/types.ts";
import { mainExitVerdict } from "./exit-type.ts";
import { decideAfterExit, describeExit, emptyHistory, isFailure, manualStartHistory, UNKNOWN_EXIT, type ExitInfo, type RestartHistory } from "./policy.ts";

export type Phase =
  | "stopped"    // not running, nothing due (operator stop, disabled, never started)
  | "starting"   // spawn requested, no PID yet
  | "running"    // cgroup populated
  | "stopping"   // stop signal/command sent, grace timer running
  | "killing"    // cgroup.kill written, waiting for the cgroup to empty
  | "backoff"    // waiting to restart
  | "exited"     // ended with success, no restart due
  | "failed"     // ended with failure (or could not start), no restart due
  | "suppressed" // restart tolerance exceeded; only a manual start clears it
  | "scheduled"; // waiting for its cron time

export const PHASES: Phase[] = ["stopped", "starting", "running", "stopping", "killing", "backoff", "exited", "failed", "suppressed", "scheduled"];

/** How the last run ended, as the operator sees it. */
export interface LastExit extends ExitInfo {
  /** `killed-after-grace` when stop had to use cgroup.kill; `oom-kill` when memory.events says so. */
  cause: "exit" | "killed-after-grace" | "oom-kill" | "spawn-failed";
  atWallMs: number;
}

export interface UnitState {
  phase: Phase;
  /** The main process: the PID we spawned, or one re-adopted by PID and start time (null when unknown). */
  mainPid: number | null;
  /** Its start time (/proc/PID/stat field 22), so a reused PID is never taken for it. */
  mainStartTime: string | null;
  /** Set when the main process's exit ended the service (exit_type): reported once the rest is stopped. */
  mainExit: ExitInfo | null;
  /** The operator said stop: stays stopped across daemon restarts until `start`. */
  operatorStopped: boolean;
  /** Start again once the current stop completes (restart, or start during stop). */
  startAfterStop: boolean;
  history: RestartHistory;
  /** Automatic restarts since the last manual start. */
  restarts: number;
  lastExit: LastExit | null;
  startedAtWallMs: number | null;
  /** When the backoff timer fires (for status). */
  nextAttemptWallMs: number | null;
  /** Why restarts stopped (`3 restarts in 1m`). */
  suppressedReason: string | null;
  /** Set once stop escalated to cgroup.kill, so the exit is reported as killed-after-grace. */
  escalated: boolean;
  /** The daemon is stopping this run because it failed (readiness timeout, liveness): why. Its exit goes to the restart policy. */
  failing?: string | null;
}

export type UnitEvent =
  // Daemon start: adopt or decide to start. `main`: the saved main process, found again by PID and
  // start time in the service's cgroup; null when one was saved but is gone; absent when none was saved.
  | { type: "boot"; populated: boolean; main?: MainProcess | null }
  | { type: "start" }                                // manual start
  | { type: "stop" }                                 // manual stop
  | { type: "restart" }                              // manual restart
  | { type: "spawned"; pid: number; startTime?: string | null }
  | { type: "mainExited"; exit: ExitInfo; othersRemain: boolean } // the main process ended (exit_type decides)
  | { type: "spawnFailed"; message: string }
  | { type: "exited"; exit: ExitInfo; oomKilled?: boolean } // the cgroup became empty
  | { type: "timer" }                                // the one armed timer fired
  | { type: "cronTick" }
  | { type: "configChanged"; enabled: boolean }      // update: enabled flag may have flipped
  | { type: "fail"; reason: string };                // readiness timed out or liveness failed: stop, then the restart policy

export interface MainProcess { pid: number; startTime: string | null }

export type Effect =
  | { type: "spawn" }
  | { type: "sendStop" }                             // stop_command, or stop_signal to every PID
  | { type: "kill" }                                 // cgroup.kill
  | { type: "armTimer"; ms: number }
  | { type: "cancelTimer" }
  | { type: "persist" }
  | { type: "log"; level: "info" | "warn"; message: string };

/** What the pure function needs to know about the service's config and the time. */
export interface UnitContext {
  enabled: boolean;
  scheduled: boolean;
  stopGraceMs: number;
  restartPolicy: RestartPolicyConfig;
  nowWallMs: number;
  /** `process.exit_type` (default auto). */
  exitType?: ExitType;
  /** For a failing run stopped by the daemon that exited 0 on its stop signal. */
  stopSignal?: string;
}

export interface Transition { state: UnitState; effects: Effect[] }

export function initialUnitState(): UnitState {
  return {
    phase: "stopped", mainPid: null, mainStartTime: null, mainExit: null, operatorStopped: false, startAfterStop: false,
    history: emptyHistory(), restarts: 0, lastExit: null, startedAtWallMs: null,
    nextAttemptWallMs: null, suppressedReason: null, escalated: false,
  };
}

/** Phases in which the service has (or is about to have) processes. */
export function isActive(phase: Phase): boolean {
  return phase === "starting" || phase === "running" || phase === "stopping" || phase === "killing";
}

/** The exit of a process that was not our child, or ended while no daemon watched. */

const log = (message: string, level: "info" | "warn" = "info"): Effect => ({ type: "log", level, message });

export function transition(s: UnitState, ev: UnitEvent, ctx: UnitContext): Transition {
  const next = (patch: Partial<UnitState>, ...effects: Effect[]): Transition => ({ state: { ...s, ...patch }, effects });
  const same = (...effects: Effect[]): Transition => ({ state: s, effects });
  /** Not running, nothing pending: where a service rests when no run is due. */
  const idlePhase = (): Phase => idlePhaseOf(s, ctx);
  const spawnNow = (patch: Partial<UnitState> = {}): Transition =>
    next({ phase: "starting", mainPid: null, mainStartTime: null, mainExit: null, startAfterStop: false, nextAttemptWallMs: null, suppressedReason: null, escalated: false, startedAtWallMs: null, failing: null, ...patch },
      { type: "cancelTimer" }, { type: "spawn" });
  const failing = s.failing ?? null;
  const beginStop = (patch: Partial<UnitState>): Transition =>
    next({ phase: "stopping", escalated: false, mainExit: null, ...patch },
      { type: "sendStop" }, { type: "armTimer", ms: ctx.stopGraceMs }, { type: "persist" });
  const manualReset = { operatorStopped: false, history: manualStartHistory(), restarts: 0 };

  switch (ev.type) {
    case "boot": {
      const main = { mainPid: ev.main?.pid ?? null, mainStartTime: ev.main?.startTime ?? null };
      if (ev.populated && s.operatorStopped) {
        // The previous daemon died while stopping it: finish the stop the operator asked for.
        return beginStop({ phase: "stopping", startAfterStop: false, ...main });
      }
      // The previous daemon died while restarting it (restart, or update of a changed service):
      // finish the restart, or it would be adopted, end with the old stop, and stay down.
      if (ev.populated && s.startAfterStop && ctx.enabled) return beginStop({ phase: "stopping", startAfterStop: true, ...main });
      // From here on a saved restart is not finished (disabled, or nothing left to stop): drop
      // it, or a request waiting for the unit to settle (update, start) would wait for ever.
      if (ev.populated) {
        const adopted = next({ phase: "running", ...main, mainExit: null, startAfterStop: false, startedAtWallMs: s.startedAtWallMs ?? ctx.nowWallMs },
          log(`adopted running service${ev.main ? `, main pid ${ev.main.pid}` : ""}`), { type: "persist" });
        // The saved main process is gone while others run: it ended while no daemon watched.
        if (ev.main === null) return transition(adopted.state, { type: "mainExited", exit: UNKNOWN_EXIT, othersRemain: true }, ctx);
        return adopted;
      }
      // It ran when the previous daemon stopped watching and is gone now: say so, not the old
      // last exit, and write that down. (`s` is rebound: the helpers above read it.) Only when it
      // was running: its main process was saved (`ev.main` null: saved, now gone), or a run had
      // begun whose main process had left (exit_type auto/cgroup). Not for an operator stop,
      // whose end is the stop the operator asked for.
      const endedUnseen = !s.operatorStopped && (ev.main === null || (ev.main === undefined && s.startedAtWallMs !== null));
      const noted: Effect[] = endedUnseen ? [{ type: "persist" }] : [];
      s = { ...s, mainPid: null, mainStartTime: null, startedAtWallMs: null };
      if (endedUnseen) s = { ...s, lastExit: { ...UNKNOWN_EXIT, cause: "exit", atWallMs: ctx.nowWallMs } };
      if (s.operatorStopped || !ctx.enabled) return next({ phase: "stopped", startAfterStop: false }, ...noted);
      if (ctx.scheduled) return next({ phase: "scheduled", startAfterStop: false }, ...noted);
      if (s.phase === "suppressed") return next({ startAfterStop: false }, ...noted); // tolerance exceeded before the daemon restart
      return spawnNow();
    }

    case "start":
      switch (s.phase) {
        case "starting": case "running": return same();
        case "stopping": case "killing": return next({ startAfterStop: true, ...manualReset }, { type: "persist" });
        default: return spawnNow(manualReset);
      }

    case "restart":
      switch (s.phase) {
        case "running": case "starting": return beginStop({ startAfterStop: true, ...manualReset });
        case "stopping": case "killing": return next({ startAfterStop: true, ...manualReset }, { type: "persist" });
        default: return spawnNow(manualReset);
      }

    case "stop":
      switch (s.phase) {
        case "starting": case "running": return beginStop({ startAfterStop: false, operatorStopped: true });
        case "stopping": case "killing": return next({ startAfterStop: false, operatorStopped: true }, { type: "persist" });
        case "backoff": case "scheduled": case "exited": case "failed": case "suppressed": case "stopped":
          return next({ phase: "stopped", operatorStopped: true, nextAttemptWallMs: null, startAfterStop: false }, { type: "cancelTimer" }, { type: "persist" });
      }
      break;

    case "spawned":
      if (s.phase !== "starting") return same(log(`unexpected spawn report in ${s.phase}`, "warn"));
      return next({ phase: "running", mainPid: ev.pid, mainStartTime: ev.startTime ?? null, mainExit: null, startedAtWallMs: ctx.nowWallMs }, log(`started, pid ${ev.pid}`), { type: "persist" });

    case "mainExited": {
      const gone = { mainPid: null, mainStartTime: null };
      if (s.phase !== "running") return next(gone, { type: "persist" }); // a stop is under way anyway
      const what = `main process ${s.mainPid ?? "(adopted)"} ${describeExit(ev.exit)}`;
      switch (mainExitVerdict(ctx.exitType ?? "auto", ev.exit, ev.othersRemain)) {
        case "cgroup-ends-run": return same(); // the cgroup's exit report follows
        case "keep-running": {
          // Not worded as an exit of the service: it is not one (a forking daemon's parent left).
          const how = ev.exit.known && ev.exit.signal === null ? `code ${ev.exit.code}` : describeExit(ev.exit);
          return next(gone, log(`main process ${s.mainPid ?? "(adopted)"} is gone (${how}); its other processes keep the service running (exit_type ${ctx.exitType ?? "auto"})`), { type: "persist" });
        }
        case "end-service": {
          const t = beginStop({ ...gone, mainExit: ev.exit, startAfterStop: false });
          return { state: t.state, effects: [log(`${what} while other processes remain; the service has ended, stopping them`, "warn"), ...t.effects] };
        }
      }
      break;
    }

    case "spawnFailed": {
      if (s.phase !== "starting") return same();
      const exit: ExitInfo = { code: 127, signal: null, known: true };
      return afterRun(next({ lastExit: { ...exit, cause: "spawn-failed", atWallMs: ctx.nowWallMs } }).state, exit, ctx, `could not start: ${ev.message}`);
    }

    case "exited": {
      const cause: LastExit["cause"] = ev.oomKilled ? "oom-kill" : s.escalated ? "killed-after-grace" : "exit";
      const lastExit: LastExit = { ...ev.exit, cause, atWallMs: ctx.nowWallMs };
      const ended = { ...s, lastExit, mainPid: null, mainStartTime: null, mainExit: null, escalated: false, failing: null };
      switch (s.phase) {
        case "stopping": case "killing":
          if (failing !== null && !s.startAfterStop && !s.operatorStopped) {
            // Stopped by the daemon for failing: the policy decides as for a crash, whatever the code.
            const asFailure: ExitInfo = isFailure(ev.exit) ? ev.exit : { code: null, signal: ctx.stopSignal ?? "SIGTERM", known: true };
            return afterRun(ended, asFailure, ctx, failing);
          }
          // The main process's exit ended the run (exit_type): that exit is the run's, and the policy decides.
          if (s.mainExit && !s.operatorStopped && !s.startAfterStop && ctx.enabled) {
            return afterRun({ ...ended, lastExit: { ...s.mainExit, cause: "exit", atWallMs: ctx.nowWallMs } }, s.mainExit, ctx, describeExit(s.mainExit));
          }
          if (s.startAfterStop) return { state: { ...ended, phase: "starting", startAfterStop: false, suppressedReason: null }, effects: [{ type: "cancelTimer" }, log(`stopped (${describeExit(ev.exit)}), starting again`), { type: "spawn" }] };
          return { state: { ...ended, startedAtWallMs: null, phase: s.operatorStopped ? "stopped" : idlePhaseOf(ended, ctx) }, effects: [{ type: "cancelTimer" }, log(`stopped (${cause === "killed-after-grace" ? "killed after grace" : describeExit(ev.exit)})`), { type: "persist" }] };
        case "running": case "starting":
          return afterRun(ended, ev.exit, ctx, cause === "oom-kill" ? "killed by the OOM killer" : describeExit(ev.exit));
        default:
          return same(); // an empty cgroup while not running: nothing to do
      }
    }

    case "timer":
      switch (s.phase) {
        case "stopping": return next({ phase: "killing", escalated: true }, log(`still running after ${ctx.stopGraceMs}ms grace, killing the cgroup`, "warn"), { type: "kill" });
        case "backoff": return spawnNow();
        default: return same(); // a timer from a state we already left
      }

    case "cronTick":
      if (!ctx.enabled || s.operatorStopped) return same();
      switch (s.phase) {
        case "scheduled": case "exited": case "failed": case "stopped": return spawnNow();
        case "starting": case "running": case "stopping": case "killing": return same(log("schedule fired while the previous run is still going; skipped"));
        case "backoff": case "suppressed": return same();
      }
      break;

    case "fail":
      if (s.phase !== "running" && s.phase !== "starting") return same();
      {
        const stop = beginStop({ startAfterStop: false, failing: ev.reason });
        return { state: stop.state, effects: [log(`${ev.reason}; stopping it`, "warn"), ...stop.effects] };
      }

    case "configChanged":
      // `update` changed the definition. A running service that stays enabled is restarted by
      // the supervisor (a `restart` event); here the enabled flag and the schedule take effect.
      if (!ctx.enabled) {
        switch (s.phase) {
          // Disabled is not an operator stop: enabling it again starts it.
          case "starting": case "running": return beginStop({ startAfterStop: false });
          case "stopping": case "killing": return next({ startAfterStop: false });
          case "backoff": case "scheduled":
            return next({ phase: "stopped", nextAttemptWallMs: null }, { type: "cancelTimer" }, { type: "persist" });
          case "stopped": case "exited": case "failed": case "suppressed": return same();
        }
      }
      switch (s.phase) {
        case "stopped": case "scheduled":
          // Enabled (again), or no longer scheduled: it should run now, unless an operator stopped it.
          if (s.operatorStopped || ctx.scheduled) return next({ phase: idlePhase() });
          return spawnNow();
        case "exited": case "failed":
          return ctx.scheduled && !s.operatorStopped ? next({ phase: "scheduled" }) : same(); // a schedule was added
        case "starting": case "running": case "stopping": case "killing": case "backoff": case "suppressed":
          return same(); // the next run uses the new definition
      }
      break;
  }
  return same();
}

function idlePhaseOf(s: UnitState, ctx: UnitContext): Phase {
  return ctx.scheduled && ctx.enabled && !s.operatorStopped ? "scheduled" : "stopped";
}

/** A run ended on its own: ask the restart policy. */
function afterRun(s: UnitState, exit: ExitInfo, ctx: UnitContext, what: string): Transition {
  const runDurationMs = s.startedAtWallMs === null ? 0 : Math.max(0, ctx.nowWallMs - s.startedAtWallMs);
  const decision = decideAfterExit(ctx.restartPolicy, s.history, exit, { nowWallMs: ctx.nowWallMs, runDurationMs, scheduled: ctx.scheduled });
  const base: UnitState = { ...s, mainPid: null, mainStartTime: null, mainExit: null, startedAtWallMs: null };
  // The policy's reason names the exit; say more when the caller knows more (OOM, spawn failure).
  const because = (reason: string) => (what === describeExit(exit) ? reason : `${what}; ${reason}`);
  switch (decision.kind) {
    case "restart":
      if (decision.delayMs === 0) {
        return { state: { ...base, phase: "starting", history: decision.history, restarts: s.restarts + 1, nextAttemptWallMs: null },
          effects: [{ type: "cancelTimer" }, log(because(decision.reason)), { type: "persist" }, { type: "spawn" }] };
      }
      return { state: { ...base, phase: "backoff", history: decision.history, restarts: s.restarts + 1, nextAttemptWallMs: ctx.nowWallMs + decision.delayMs },
        effects: [{ type: "armTimer", ms: decision.delayMs }, log(because(decision.reason)), { type: "persist" }] };
    case "suppress":
      return { state: { ...base, phase: "suppressed", history: decision.history, suppressedReason: decision.reason },
        effects: [{ type: "cancelTimer" }, log(`not restarting: ${because(decision.reason)}; run pmctl start to try again`, "warn"), { type: "persist" }] };
    case "none": {
      const failed = !exit.known ? false : exit.code !== 0 || exit.signal !== null;
      const phase: Phase = ctx.scheduled && ctx.enabled && !s.operatorStopped ? "scheduled" : failed ? "failed" : "exited";
      return { state: { ...base, phase }, effects: [{ type: "cancelTimer" }, log(because(decision.reason)), { type: "persist" }] };
    }
  }
}
