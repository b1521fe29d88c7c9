/** Which units a request acts on, and what a waiting stop tells the operator. Pure. */
import type { Phase } from "./unit.ts";
import { plural } from "../util/plural.ts";

/** Phases `restart all` acts on: the service is up, coming up, or about to come up again. */
export const RESTARTABLE_PHASES: ReadonlySet<string> = new Set(["running", "starting", "backoff"]);

/**
 * `restart all` (or no names) restarts only what is running, starting or in backoff: a stopped,
 * disabled, failed or scheduled service stays as it is. A service named explicitly is restarted
 * (started, when it is not running) whatever its state.
 */
export function restartTargets<U extends { state: { phase: Phase | string } }>(units: U[], names: string[]): U[] {
  const all = names.length === 0 || names.includes("all");
  return all ? units.filter((u) => RESTARTABLE_PHASES.has(u.state.phase)) : units;
}

/**
 * The progress line for a unit whose stop is waiting, or null when there is nothing to say (not
 * stopping, or its cgroup already empty and the exit on its way).
 */
export function stopProgressLine(name: string, phase: string, processes: number, waitedMs: number, graceMs: number): string | null {
  if (phase !== "stopping" && phase !== "killing") return null;
  if (processes === 0) return null;
  const waited = Math.round(waitedMs / 1000);
  const grace = Math.round(graceMs / 1000);
  return `${name}: waiting for ${plural(processes, "process", "processes")} to exit (${waited}s of ${grace}s grace${phase === "killing" ? ", killed" : ""})`;
}
