/**
 * Signals to a service's processes: the stop (stop_command, or stop_signal to every process or,
 * with `stop_mode: main`, to the main one only) and `pmctl signal`. The main process is signalled
 * only while it is still the process we started or adopted: in the service's cgroup with the
 * start time we recorded, so a reused PID never gets it.
 */
import type { Subprocess } from "bun";
import type { CgroupTree } from "../cgroup/index.ts";
import { errorMessage } from "../util/errors.ts";
import { plural } from "../util/plural.ts";
import { isSameProcess } from "./main-process.ts";
import { runStopCommand } from "./spawn.ts";
import type { Unit } from "./supervisor.ts";

/**
 * Sends `signal` to the unit's live main process; its PID, or null when none is known. `wake`
 * (the stop): SIGCONT after it, so a stopped process sees it. Not for `pmctl signal` and reload,
 * which send exactly what was asked (SIGSTOP must stay stopped).
 */
export function signalMain(unit: Unit, cgroups: CgroupTree, signal: NodeJS.Signals, wake = false): number | null {
  const { mainPid: pid, mainStartTime: startTime } = unit.state;
  if (pid === null || !isSameProcess({ pid, startTime }, cgroups.pids(unit.name))) return null;
  try { process.kill(pid, signal); } catch { return null; }
  if (wake) { try { process.kill(pid, "SIGCONT"); } catch { /* exited */ } }
  return pid;
}

/** Sends `signal` to every process of the unit; how many got it. `wake`: as for signalMain. */
export function signalAll(unit: Unit, cgroups: CgroupTree, signal: NodeJS.Signals, wake = false): number {
  const n = cgroups.signal(unit.name, signal);
  if (wake) cgroups.signal(unit.name, "SIGCONT"); // a stopped process must wake to see it
  return n;
}

/** The stop: stop_command, or the stop signal by `stop_mode` (every process when the main one is gone). */
export function sendStop(unit: Unit, cgroups: CgroupTree): void {
  const { stopSignal, stopMode, stopCommand, stopGraceMs } = unit.config.process;
  const signal = stopSignal as NodeJS.Signals;
  const bySignal = () => {
    const main = stopMode === "main" ? signalMain(unit, cgroups, signal, true) : null;
    if (main !== null) { unit.log.info(`sent ${stopSignal} to the main process ${main} (stop_mode main)`); return; }
    unit.log.info(`sent ${stopSignal} to ${plural(signalAll(unit, cgroups, signal, true), "process", "processes")}`);
  };
  if (!stopCommand) return bySignal();
  unit.log.info(`running stop_command: ${stopCommand.join(" ")}`);
  let cmd: Subprocess;
  try { cmd = runStopCommand(unit.config, cgroups.freshHelperCgroup("stop", unit.name)); } catch (e) {
    unit.log.warn(`${errorMessage(e)}; sending ${stopSignal}`);
    return bySignal();
  }
  // The stop command gets the stop's grace too; one that hangs would otherwise run on after the
  // service is long gone. When it ends, whatever it forked (setsid, double fork) ends with its
  // cgroup: nothing it started outlives the stop.
  const deadline = setTimeout(() => {
    unit.log.warn(`stop_command still running after ${stopGraceMs}ms; killing it`);
    void cgroups.endHelperCgroup("stop", unit.name);
  }, stopGraceMs);
  cmd.exited.then(() => {
    clearTimeout(deadline);
    void cgroups.endHelperCgroup("stop", unit.name);
    const code = cmd.exitCode;
    if (code !== 0 && unit.state.phase === "stopping") { unit.log.warn(`stop_command exited with ${code ?? cmd.signalCode}; sending ${stopSignal}`); bySignal(); }
  }, () => clearTimeout(deadline));
}
