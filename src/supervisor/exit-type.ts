/**
 * `process.exit_type`: what the exit of the main process means while other processes of the
 * service are still in its cgroup. Pure.
 *  - `cgroup`: nothing; the service runs while its cgroup has processes (the seed's rule).
 *  - `main`: the service has ended: the rest is stopped and the main process's exit is the run's.
 *  - `auto` (default): a main process that exits 0 and leaves others behind is a daemon that
 *    forked and left (the cgroup rule); one that dies by a signal, with a non-zero code, or with
 *    an exit nobody saw (an adopted main process: not our child) means the service failed (`main`).
 * When no other process is left, the cgroup is empty anyway and the run ends the usual way.
 */
import type { ExitType } from "../config/types.ts";
import type { ExitInfo } from "./policy.ts";

export type MainExitVerdict =
  | "cgroup-ends-run" // nothing left: the cgroup's own exit report ends the run
  | "keep-running"    // a forking daemon's parent left, or exit_type cgroup: the cgroup rule
  | "end-service";    // stop what is left, report the main process's exit, apply the restart policy

export function mainExitVerdict(exitType: ExitType, exit: ExitInfo, othersRemain: boolean): MainExitVerdict {
  if (!othersRemain) return "cgroup-ends-run";
  switch (exitType) {
    case "cgroup": return "keep-running";
    case "main": return "end-service";
    case "auto": return exit.known && exit.code === 0 && exit.signal === null ? "keep-running" : "end-service";
  }
}
