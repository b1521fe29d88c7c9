/**
 * Restart policy, backoff and tolerance math. Pure: no I/O, no timers, no clock reads —
 * every time comes in as an argument, so tests use plain numbers.
 *
 * Semantics (see README "Restart strategy"):
 * - `never`: never restarted automatically. `on-failure`: restarted only when the run failed
 *   (non-zero exit code, killed by a signal, or exit status unknown — an adopted process whose
 *   status we cannot learn counts as failed). `always`: restarted after every exit.
 * - Scheduled services (with `process.schedule`) are never restarted by the policy: the next
 *   run comes from the schedule.
 * - Tolerance: restart times are kept for `tolerance.duration`. An entry exactly `duration`
 *   old still counts; older ones are dropped. When `max_restarts` restarts are already inside
 *   the window, the next exit is suppressed (no restart until a manual `pmctl start`, which
 *   starts from `manualStartHistory()`). A service that exits at once with max 3 is restarted
 *   exactly 3 times and suppressed on its 4th exit.
 * - Backoff: constant `restart_backoff_ms`; with `restartBackoffMaxMs` set it is exponential:
 *   the first restart waits `restart_backoff_ms`, each following one twice as long as the last,
 *   capped at the maximum. A run that lasted longer than the tolerance window resets the
 *   backoff to `restart_backoff_ms` (its earlier restarts have aged out of the window anyway).
 * - Clock: the tolerance window uses the wall clock, so the history survives a daemon restart
 *   (it is stored in the state file). A backward step of the wall clock forgets entries that
 *   now lie in the future; a forward step ages entries out early. Both err towards restarting.
 */
import type { RestartPolicyConfig } from "../config/types.ts";
import { formatDurationMs } from "../util/units.ts";
import { plural } from "../util/plural.ts";

/** How a run ended. `known: false`: an adopted process (not our child), exit status unknown. */
export interface ExitInfo {
  code: number | null;
  signal: string | null;
  known: boolean;
}

/** An exit whose status nobody saw (an adopted process, a run that ended while no daemon watched, a lost status). */
export const UNKNOWN_EXIT: ExitInfo = { code: null, signal: null, known: false };

/**
 * What the policy remembers between runs. Plain data, safe to JSON-serialise into the state file.
 * - `restartsWallMs`: wall-clock ms of automatic restarts still inside the tolerance window.
 * - `backoffMs`: the delay used for the last restart (exponential backoff only), else null.
 */
export interface RestartHistory {
  restartsWallMs: number[];
  backoffMs: number | null;
}

export const emptyHistory = (): RestartHistory => ({ restartsWallMs: [], backoffMs: null });

/** A manual start (`pmctl start`) resets the tolerance window, suppression and backoff. */
export function manualStartHistory(): RestartHistory {
  return emptyHistory();
}

/** A failure: non-zero exit code, or killed by a signal, or exit status unknown. */
export function isFailure(exit: ExitInfo): boolean {
  if (!exit.known) return true;
  if (exit.signal !== null) return true;
  return exit.code !== 0;
}

export type RestartDecision =
  | { kind: "restart"; delayMs: number; history: RestartHistory; reason: string }
  | { kind: "suppress"; history: RestartHistory; reason: string }
  | { kind: "none"; reason: string };

/** "exited with code 1", "killed by SIGKILL", "exit status unknown". */
export function describeExit(exit: ExitInfo): string {
  if (!exit.known) return "exit status unknown";
  if (exit.signal !== null) return `killed by ${exit.signal}`;
  if (exit.code !== null) return `exited with code ${exit.code}`;
  return "exited";
}

/**
 * The restart times still inside the window ending at `nowWallMs`: entries older than
 * `nowWallMs - windowMs` are dropped, and so are entries in the future (the wall clock went back).
 */
export function pruneRestarts(restartsWallMs: readonly number[], nowWallMs: number, windowMs: number): number[] {
  const oldest = nowWallMs - windowMs;
  return restartsWallMs.filter((t) => t >= oldest && t <= nowWallMs);
}

/** Decide what to do after a run ended. Returns a new history; the one passed in is not changed. */
export function decideAfterExit(
  policy: RestartPolicyConfig,
  history: RestartHistory,
  exit: ExitInfo,
  opts: { nowWallMs: number; runDurationMs: number; scheduled: boolean },
): RestartDecision {
  const what = describeExit(exit);
  if (opts.scheduled) return { kind: "none", reason: `${what}; scheduled job; next run by schedule` };
  if (policy.policy === "never") return { kind: "none", reason: `${what}; restart policy is never` };
  if (policy.policy === "on-failure" && !isFailure(exit)) {
    return { kind: "none", reason: `${what}; restart policy is on-failure` };
  }

  const window = formatDurationMs(policy.toleranceWindowMs);
  const kept = pruneRestarts(history.restartsWallMs, opts.nowWallMs, policy.toleranceWindowMs);
  const longRun = opts.runDurationMs > policy.toleranceWindowMs;
  const prevBackoff = longRun ? null : history.backoffMs;

  if (kept.length >= policy.maxRestarts) {
    return {
      kind: "suppress",
      history: { restartsWallMs: kept, backoffMs: prevBackoff },
      reason: `${what}; ${plural(kept.length, "restart")} in ${window}`,
    };
  }

  const base = Math.max(0, policy.restartBackoffMs);
  let delayMs: number;
  let backoffMs: number | null;
  if (policy.restartBackoffMaxMs === undefined) {
    delayMs = base;
    backoffMs = null;
  } else {
    const cap = Math.max(0, policy.restartBackoffMaxMs);
    delayMs = Math.min(prevBackoff === null ? base : Math.max(prevBackoff * 2, base), cap);
    backoffMs = delayMs;
  }
  const n = kept.length + 1;
  return {
    kind: "restart",
    delayMs,
    history: { restartsWallMs: [...kept, opts.nowWallMs], backoffMs },
    reason: `${what}; restart ${n} of ${policy.maxRestarts} in ${window}, in ${formatDurationMs(delayMs)}`,
  };
}
