/**
 * `pmctl reload` and `pmctl signal`. A reload sends `reload_signal` to the main process (to every
 * process when no main process is known), or runs `reload_command` with the service's identity
 * and environment plus MAINPID; a failing command is reported with its output and the service
 * keeps running. Both act only on a running service.
 */
import type { CgroupTree } from "../cgroup/index.ts";
import { noteBunChild } from "../linux/reaper.ts";
import { PmError, errorMessage } from "../util/errors.ts";
import { plural } from "../util/plural.ts";
import { execPlan } from "./exec.ts";
import { signalAll, signalMain } from "./signals.ts";
import { serviceEnv } from "./spawn.ts";
import type { Unit } from "./supervisor.ts";

export interface SignalReport { name: string; signal: string; pids: number[]; main: boolean }
export interface ReloadReport { name: string; ok: boolean; how: string; output?: string }

/** Output kept from a reload command for the report (its tail). */
const MAX_OUTPUT = 4096;

function requireRunning(unit: Unit, what: string) {
  if (unit.state.phase !== "running") throw new PmError("SPAWN", `cannot ${what} ${unit.name}: it is ${unit.state.phase}, not running`);
}

/** `pmctl signal`: to every process of the service, or (`mainOnly`) to its main process. */
export function signalService(unit: Unit, cgroups: CgroupTree, signal: NodeJS.Signals, mainOnly: boolean): SignalReport {
  requireRunning(unit, `signal`);
  if (mainOnly) {
    const pid = signalMain(unit, cgroups, signal);
    if (pid === null) throw new PmError("SPAWN", `cannot signal the main process of ${unit.name}: none is known (exit_type cgroup, or its main process left); leave out --main to signal every process`);
    return { name: unit.name, signal, pids: [pid], main: true };
  }
  const pids = cgroups.pids(unit.name);
  signalAll(unit, cgroups, signal);
  return { name: unit.name, signal, pids, main: false };
}

export async function reloadService(unit: Unit, cgroups: CgroupTree): Promise<ReloadReport> {
  requireRunning(unit, "reload");
  const { reloadSignal, reloadCommand } = unit.config.process;
  if (reloadSignal) {
    const sig = reloadSignal as NodeJS.Signals;
    const pid = signalMain(unit, cgroups, sig);
    if (pid !== null) return { name: unit.name, ok: true, how: `${reloadSignal} to the main process ${pid}` };
    return { name: unit.name, ok: true, how: `${reloadSignal} to ${plural(signalAll(unit, cgroups, sig), "process", "processes")} (no main process known)` };
  }
  if (!reloadCommand) throw new PmError("SPAWN", `cannot reload ${unit.name}: set process.reload_signal or process.reload_command in ${unit.config.file}`);
  return runReloadCommand(unit, cgroups, reloadCommand);
}

/**
 * The reload command runs in a cgroup of its own beside the service's (`_reload-NAME`): it must
 * not count as the service's process, and what it forks (a setsid child holding its output pipe
 * open would keep the request waiting forever) is killed with that cgroup when it ends. Only
 * the tail of its output is kept, however much it writes.
 */
async function runReloadCommand(unit: Unit, cgroups: CgroupTree, argv: string[]): Promise<ReloadReport> {
  const svc = unit.config;
  const how = `reload_command ${argv.join(" ")}`;
  let proc;
  try {
    const env = { ...serviceEnv(svc), ...(unit.state.mainPid !== null ? { MAINPID: String(unit.state.mainPid) } : {}) };
    const plan = execPlan(svc, argv, env);
    proc = Bun.spawn({
      cmd: plan.cmd, argv0: plan.argv0, cwd: svc.process.workingDirectory, env: plan.env, detached: true, cgroup: cgroups.freshHelperCgroup("reload", unit.name),
      stdin: "ignore", stdout: "pipe", stderr: "pipe",
      ...(plan.uid !== undefined ? { uid: plan.uid } : {}), ...(plan.gid !== undefined ? { gid: plan.gid } : {}),
    });
    noteBunChild(proc);
  } catch (e) {
    return { name: unit.name, ok: false, how, output: errorMessage(e) };
  }
  const graceMs = svc.process.stopGraceMs;
  let timedOut = false;
  const deadline = setTimeout(() => { timedOut = true; void cgroups.endHelperCgroup("reload", unit.name); }, graceMs);
  const texts = Promise.all([tailOf(proc.stdout), tailOf(proc.stderr)]);
  await proc.exited;
  clearTimeout(deadline);
  await cgroups.endHelperCgroup("reload", unit.name);
  const [out, err] = await texts;
  const output = (out + err).trim().slice(-MAX_OUTPUT);
  if (proc.exitCode === 0) return { name: unit.name, ok: true, how, ...(output ? { output } : {}) };
  const why = timedOut ? `still running after ${graceMs}ms (stop_grace_ms), killed` : proc.exitCode !== null ? `exited with code ${proc.exitCode}` : `killed by ${proc.signalCode}`;
  return { name: unit.name, ok: false, how: `${how}: ${why}`, output };
}

/** The last MAX_OUTPUT bytes of a stream, read to its end (older bytes are dropped as they come). */
async function tailOf(stream: ReadableStream<Uint8Array>): Promise<string> {
  let kept = Buffer.alloc(0);
  for await (const chunk of stream) {
    kept = Buffer.concat([kept, chunk]);
    if (kept.length > 2 * MAX_OUTPUT) kept = kept.subarray(kept.length - MAX_OUTPUT);
  }
  return kept.subarray(Math.max(0, kept.length - MAX_OUTPUT)).toString("utf8");
}
