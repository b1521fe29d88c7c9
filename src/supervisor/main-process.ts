/**
 * The main process of a run: who it is (PID plus start time, so a reused PID is never taken for
 * it), finding it again after a daemon restart, and waiting for its exit.
 */
import type { Subprocess } from "bun";
import type { PidWatcher } from "../linux/pidwatch.ts";
import { readProcStat } from "../linux/proc-stat.ts";
import { UNKNOWN_EXIT, type ExitInfo } from "./policy.ts";
import type { MainProcess } from "./unit.ts";

/** Field 22 of /proc/PID/stat (start time in clock ticks since boot); null when the process is gone. */
const startTimeOf = (pid: number): string | null => readProcStat(pid)?.startTime ?? null;

/** Is `saved` still the same process, and in the service's cgroup? */
export function isSameProcess(saved: MainProcess, cgroupPids: readonly number[]): boolean {
  return saved.startTime !== null && cgroupPids.includes(saved.pid) && startTimeOf(saved.pid) === saved.startTime;
}

/**
 * The saved main process at adoption: the same process (checked again once its pidfd is open, so
 * the pidfd cannot belong to a process that took the PID in between), or null when it is gone;
 * undefined when none was saved.
 */
export function findSavedMain(saved: { mainPid?: number | null; mainStartTime?: string | null } | undefined, cgroupPids: readonly number[],
  watcher: PidWatcher): MainProcess | null | undefined {
  if (!saved || saved.mainPid == null) return undefined;
  const main: MainProcess = { pid: saved.mainPid, startTime: saved.mainStartTime ?? null };
  if (!isSameProcess(main, cgroupPids)) return null;
  try { void watcher.watch(main.pid); } catch { return null; }
  return startTimeOf(main.pid) === main.startTime ? main : null;
}


/** How our own child ended: its code, or the signal that killed it; unknown when the status is lost. */
export async function ownChildExit(proc: Subprocess): Promise<ExitInfo> {
  try {
    await proc.exited;
    return { code: proc.signalCode ? null : proc.exitCode, signal: proc.signalCode ? String(proc.signalCode) : null, known: true };
  } catch { return UNKNOWN_EXIT; }
}

/** Resolves with the main process's exit: the real status of our own child, unknown for an adopted one. */
export async function mainProcessExit(pid: number, own: Subprocess | null, watcher: PidWatcher): Promise<ExitInfo> {
  if (own && own.pid === pid) return ownChildExit(own);
  try { await watcher.watch(pid); } catch { /* cannot watch: the cgroup's exit still ends the run */ return new Promise(() => {}); }
  return UNKNOWN_EXIT;
}
