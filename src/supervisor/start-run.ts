/**
 * Starting one run of a service: its cgroup (the emptied one of the last run, or a fresh one:
 * CgroupTree.runCgroup), the limits, the OOM baseline, the process, and its start time.
 */
import type { Subprocess } from "bun";
import type { CgroupTree } from "../cgroup/index.ts";
import { killedBeforeExec, readProcStat } from "../linux/proc-stat.ts";
import { startServiceProcess } from "./process-setup.ts";
import { applyUnitLimits } from "./unit-limits.ts";
import type { Unit } from "./supervisor.ts";

export interface StartedRun {
  proc: Subprocess;
  /** /proc/PID/stat start time of the main process (null if it is already gone). */
  startTime: string | null;
}

/**
 * Throws what startServiceProcess throws. A kept cgroup that someone else sent cgroup.kill
 * kills the new child before it runs (kernel bug, see runCgroup): the child is seen dead with
 * our name and SIGKILL's status right after the spawn, and the run starts again once in a fresh
 * cgroup, so the service neither runs twice nor counts a restart it never had.
 */
export function startRun(unit: Unit, cgroups: CgroupTree): StartedRun {
  for (let attempt = 0; ; attempt++) {
    const { path, kept } = cgroups.runCgroup(unit.name);
    // A kept cgroup holds the limits written last (update writes changes into the live cgroup).
    if (!kept || unit.writtenLimits === null || (unit.limits?.notApplied.length ?? 0) > 0) applyUnitLimits(unit, cgroups, path);
    unit.oomKillsAtStart = cgroups.oomKills(unit.name);
    const proc = startServiceProcess(unit.config, path, unit.log);
    const stat = readProcStat(proc.pid);
    if (kept && attempt === 0 && killedBeforeExec(stat)) {
      cgroups.retire(unit.name, 1000);
      unit.log.warn(`the new process ${proc.pid} was killed before it ran (its cgroup had received cgroup.kill); starting it again in a fresh cgroup`);
      continue;
    }
    return { proc, startTime: stat?.startTime || null };
  }
}
