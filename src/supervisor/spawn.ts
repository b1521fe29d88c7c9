/**
 * Starting a service's process into its cgroup, and running its stop command.
 * clone3(CLONE_INTO_CGROUP) through Bun.spawn's `cgroup` option: the child is in the cgroup
 * before it runs, so it cannot fork outside it.
 */
import { closeSync } from "node:fs";
import type { Subprocess } from "bun";
import type { ServiceConfig } from "../config/types.ts";
import { openLogFd, openLogFds, type LogOwner } from "../logs/index.ts";
import { execPlan } from "./exec.ts";
import { withNotifyEnv } from "./notify.ts";
import { buildServiceEnvironment } from "./service-env.ts";
import { withLimits } from "./rlimits.ts";
import { noteBunChild } from "../linux/reaper.ts";
import { PmError, errorMessage } from "../util/errors.ts";

/** The environment of a service (service-env.ts: clean by default), with NOTIFY_SOCKET for `readiness: notify`. */
export function serviceEnv(svc: ServiceConfig): Record<string, string> {
  return withNotifyEnv(buildServiceEnvironment(svc), svc);
}

/** Who a service's new log files are for: root owns them, the service's group may read them. */
const logOwner = (svc: ServiceConfig): LogOwner => ({ uid: svc.process.uid, gid: svc.process.gid });

/** Opens the log files once (stdout and stderr may be the same file; one walk to a shared folder). Caller closes. */
function openLogs(stdoutPath: string | undefined, stderrPath: string | undefined, owner: LogOwner): { out: number | "ignore"; err: number | "ignore"; close(): void } {
  let out: number | "ignore" = "ignore";
  let err: number | "ignore" = "ignore";
  if (stdoutPath && stderrPath && stderrPath !== stdoutPath) [out, err] = openLogFds([stdoutPath, stderrPath], owner) as [number, number];
  else {
    if (stdoutPath) out = openLogFd(stdoutPath, owner);
    if (stderrPath) err = stderrPath === stdoutPath ? out : openLogFd(stderrPath, owner);
  }
  return {
    out, err,
    close() {
      if (typeof out === "number") closeSync(out);
      if (typeof err === "number" && err !== out) closeSync(err);
    },
  };
}

export function spawnService(svc: ServiceConfig, cgroupPath: string): Subprocess {
  const env = serviceEnv(svc);
  const plan = withLimits(svc, execPlan(svc, svc.process.command, env)); // a PmError("SPAWN") that says why not
  let logs: ReturnType<typeof openLogs>;
  try { logs = openLogs(svc.logs.stdout, svc.logs.stderr, logOwner(svc)); }
  catch (e) { throw new PmError("SPAWN", `cannot open log file for ${svc.name}: ${errorMessage(e)}`, { cause: e }); }
  // `process.umask`: Bun.spawn forks synchronously, so the child inherits the umask set around
  // the call alone; the log files above were opened under the daemon's own.
  const daemonUmask = svc.process.umask === undefined ? null : process.umask(svc.process.umask);
  try {
    const proc = Bun.spawn({
      cmd: plan.cmd,
      argv0: plan.argv0,
      cwd: svc.process.workingDirectory,
      env: plan.env,
      cgroup: cgroupPath,
      detached: true,
      stdin: "ignore",
      stdout: logs.out,
      stderr: logs.err,
      ...(plan.uid !== undefined ? { uid: plan.uid } : {}),
      ...(plan.gid !== undefined ? { gid: plan.gid } : {}),
    });
    noteBunChild(proc); // Bun reaps it; the PID-1 orphan reaper must not
    return proc;
  } catch (e) {
    throw new PmError("SPAWN", `cannot start ${svc.name} (${svc.process.command[0]}): ${errorMessage(e)}`, { cause: e });
  } finally {
    if (daemonUmask !== null) process.umask(daemonUmask);
    logs.close();
  }
}

/**
 * Starts `stop_command` in `cgroupPath` (its own cgroup beside the service's, so it does not keep
 * the service's cgroup populated, and all it forks is killed with that cgroup when the stop is
 * over) with its output to the stop-command logs, in a process group of its own.
 * Throws PmError("SPAWN").
 */
export function runStopCommand(svc: ServiceConfig, cgroupPath: string): Subprocess {
  const cmd = svc.process.stopCommand!;
  let logs: ReturnType<typeof openLogs> | null = null;
  try {
    const env = serviceEnv(svc);
    const plan = execPlan(svc, cmd, env);
    logs = openLogs(svc.logs.stopCommandStdout, svc.logs.stopCommandStderr, logOwner(svc));
    const proc = Bun.spawn({
      cmd: plan.cmd,
      argv0: plan.argv0,
      cwd: svc.process.workingDirectory,
      env: plan.env,
      cgroup: cgroupPath,
      detached: true,
      stdin: "ignore",
      stdout: logs.out,
      stderr: logs.err,
      ...(plan.uid !== undefined ? { uid: plan.uid } : {}),
      ...(plan.gid !== undefined ? { gid: plan.gid } : {}),
    });
    noteBunChild(proc);
    return proc;
  } catch (e) {
    throw new PmError("SPAWN", `cannot run stop_command of ${svc.name}: ${errorMessage(e)}`, { cause: e });
  } finally {
    logs?.close();
  }
}
