/**
 * How a run ends, told to the supervisor's queue as events: the main process's exit while the
 * run goes on (`mainExited`; exit_type decides what it means), and the end of the run itself
 * (`exited`), which is when the unit's cgroup is empty (cgroup-exit.ts waits for that without
 * polling).
 */
import type { CgroupTree } from "../cgroup/index.ts";
import type { PidWatcher } from "../linux/pidwatch.ts";
import { errorMessage } from "../util/errors.ts";
import type { OnePerTurn } from "../util/turns.ts";
import { untilCgroupEmpty } from "./cgroup-exit.ts";
import { mainProcessExit, ownChildExit } from "./main-process.ts";
import { UNKNOWN_EXIT, type ExitInfo } from "./policy.ts";
import { removeRuntimeDirectory } from "./process-setup.ts";
import type { Unit } from "./supervisor.ts";
import type { UnitEvent } from "./unit.ts";

export interface RunEndDeps {
  cgroups: CgroupTree;
  watcher: PidWatcher;
  /**
   * Exits are handled one per event-loop turn: in a crash storm Bun reports many exits at once,
   * and each may restart its service (a spawn costs 1 to 5 ms); handled in one go, 20 of them
   * held the control socket back for 100 ms and more.
   */
  exitTurns: OnePerTurn;
  dispatch(unit: Unit, event: UnitEvent): void;
}

/** Reports the main process's exit while the run goes on. */
export function watchMain(unit: Unit, pid: number | null, deps: RunEndDeps): void {
  if (pid === null) return;
  void mainProcessExit(pid, unit.proc, deps.watcher).then((exit) => {
    if (unit.state.mainPid !== pid) return; // the run it belonged to is over
    const { cgroups } = deps; // an empty cgroup (the usual case) needs no PID list
    deps.dispatch(unit, { type: "mainExited", exit, othersRemain: cgroups.populated(unit.name) && cgroups.pids(unit.name).some((p) => p !== pid) });
  });
}

/** Waits until the unit's cgroup is empty (cgroup-exit.ts), then reports how the run ended. */
export function trackRun(unit: Unit, deps: RunEndDeps): void {
  if (unit.tracking) return;
  unit.tracking = true;
  const { cgroups, watcher } = deps;
  untilCgroupEmpty(unit.name, { cgroups, watcher, ownProcess: () => unit.proc, log: unit.log })
    .catch((e) => unit.log.error(`tracking failed: ${errorMessage(e)}`)).finally(async () => {
    const proc = unit.proc;
    const exit: ExitInfo = proc ? await ownChildExit(proc) : UNKNOWN_EXIT;
    await deps.exitTurns.next();
    unit.proc = null;
    unit.tracking = false;
    for (const dir of unit.config?.process.runtimeDirectories ?? []) await removeRuntimeDirectory(dir, unit.log); // (tests track bare units)
    const ooms = cgroups.oomKills(unit.name);
    const oomKilled = ooms !== null && unit.oomKillsAtStart !== null && ooms > unit.oomKillsAtStart;
    deps.dispatch(unit, { type: "exited", exit, oomKilled });
  });
}
